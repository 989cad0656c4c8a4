import type {
  AuditLine,
  ContainerDetails,
  HostInfo,
  MountChange,
  RebalancePolicy,
  RebalanceRound,
  StoredRecord,
  TokenInfo,
} from '@ferry/core';
import type { GcReport, OperationLogLine, ProgressEntry } from '@ferry/infra';
import type { AutoState, DrainResult, DryRun } from '../commands/rebalance.js';
import type { In } from './inputs.js';

/** An operation as `ferry status` shows it; `stamp` changes whenever the record or its progress does. */
export interface OperationView {
  record: StoredRecord;
  progress: Record<string, ProgressEntry>;
  stamp: string;
}

/** Lines of an operation's log after a point; `submitted`: no record yet, but its request is queued. */
export interface LogPage {
  lines: OperationLogLine[];
  last: string;
  submitted: boolean;
}

/**
 * Everything the CLI asks of ferry, one call per thing it does, each taking one object (inputs.ts)
 * and answering with plain data. Two implementations: localFerry (Redis and the control key, as
 * root on the scheduler's host) and remoteFerry (ferry's API, which answers each call with
 * localFerry on its side). The commands print; these decide.
 *
 * A call that waits (`waitMs`) answers as soon as there is something new, at the latest after
 * waitMs: long polling, so that a client following an operation sends few requests.
 */
export interface Ferry {
  // viewer
  /** null: no such operation (yet: with waitMs, waits for it to appear). */
  operation(i: In<'operation'>): Promise<OperationView | null>;
  operations(i: In<'operations'>): Promise<StoredRecord[]>;
  hosts(i: In<'hosts'>): Promise<HostInfo[]>;
  log(i: In<'log'>): Promise<LogPage>;
  show(i: In<'show'>): Promise<ContainerDetails>;
  rounds(i: In<'rounds'>): Promise<RebalanceRound[]>;
  /** null: no such round (yet); with waitMs, waits until it has ended. */
  round(i: In<'round'>): Promise<RebalanceRound | null>;
  rebalancePlan(i: In<'rebalancePlan'>): Promise<DryRun>;
  autoState(i: In<'autoState'>): Promise<AutoState>;
  policy(i: In<'policy'>): Promise<RebalancePolicy>;
  groups(i: In<'groups'>): Promise<Record<string, string[]>>;
  // operator
  /** `to` may be `auto`: the answer says where it goes. */
  migrate(i: In<'migrate'>): Promise<{ id: string; to: string }>;
  clone(i: In<'clone'>): Promise<{ id: string; to?: string }>;
  checkpoint(i: In<'checkpoint'>): Promise<{ id: string }>;
  restore(i: In<'restore'>): Promise<{ id: string }>;
  /** retry or cancel; the record's version when it was asked. */
  control(i: In<'control'>): Promise<{ version: number }>;
  startRound(i: In<'startRound'>): Promise<{ id: string }>;
  setAuto(i: In<'setAuto'>): Promise<AutoState>;
  setPolicy(i: In<'setPolicy'>): Promise<RebalancePolicy>;
  drain(i: In<'drain'>): Promise<DrainResult>;
  pin(i: In<'pin'>): Promise<{ message: string }>;
  unpin(i: In<'unpin'>): Promise<{ message: string }>;
  cordon(i: In<'cordon'>): Promise<{ message: string }>;
  uncordon(i: In<'uncordon'>): Promise<{ message: string }>;
  groupAdd(i: In<'groupAdd'>): Promise<{ message: string }>;
  groupRemove(i: In<'groupRemove'>): Promise<{ message: string }>;
  // admin
  unify(i: In<'unify'>): Promise<{ id: string }>;
  mount(i: In<'mount'>): Promise<MountChange>;
  umount(i: In<'umount'>): Promise<MountChange>;
  gc(i: In<'gc'>): Promise<GcReport>;
  /** The token itself is in this answer only. */
  tokenCreate(i: In<'tokenCreate'>): Promise<{ token: string; info: TokenInfo }>;
  tokenList(i: In<'tokenList'>): Promise<(TokenInfo & { valid: boolean })[]>;
  tokenRevoke(i: In<'tokenRevoke'>): Promise<{ revoked: TokenInfo }>;
  audit(i: In<'audit'>): Promise<AuditLine[]>;
}
