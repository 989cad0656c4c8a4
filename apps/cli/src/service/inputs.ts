import { z } from 'zod';
import { ApiRole, AUDIT, ContainerName, ContainerScope, HostName, Hostname, Ipv4, MigrationId, MigrationOptions, Mode, TokenName } from '@ferry/core';

/**
 * What each of ferry's calls takes (service/ferry.ts): the CLI builds these, the API server parses
 * them from a request (path parameters, query and JSON body together) and answers 400 listing every
 * problem. Objects are strict: a field the call does not know is a problem, not ignored. Numbers and
 * flags also come as query strings.
 */
const Count = (max: number) => z.coerce.number({ error: 'not a number' }).int('not a whole number').min(1, 'at least 1').max(max, `at most ${max}`);
/** How long a call may wait for something to change before it answers anyway (long polling). */
const WaitMs = z.coerce.number({ error: 'not a number' }).int('not a whole number').min(0, 'not negative').max(25_000, 'at most 25000 ms');
const Flag = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], { error: 'true or false' });
const StreamId = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'not a stream id (like 1700000000000-0)');
const RoundId = z.string().regex(/^r-[0-9a-z]{6,40}$/, 'not a round id');
const Duration = z.string().max(32, 'too long');
const Settings = z.array(z.string().max(200, 'too long')).max(32, 'at most 32 settings');

export const inputs = {
  // viewer
  operation: z.strictObject({ id: MigrationId, changedFrom: z.string().max(100).optional(), waitMs: WaitMs.optional() }),
  operations: z.strictObject({ limit: Count(1000).default(50) }),
  hosts: z.strictObject({}),
  log: z.strictObject({ id: MigrationId, after: StreamId.optional(), waitMs: WaitMs.optional() }),
  show: z.strictObject({ container: ContainerName, host: HostName.optional() }),
  rounds: z.strictObject({ limit: Count(500).default(10) }),
  round: z.strictObject({ id: RoundId, waitMs: WaitMs.optional() }),
  rebalancePlan: z.strictObject({ allowRestart: Flag.default(false) }),
  autoState: z.strictObject({}),
  policy: z.strictObject({}),
  groups: z.strictObject({}),
  // operator
  migrate: z.strictObject({
    container: ContainerName,
    from: HostName,
    /** A host, or `auto`: where it fits and leaves the least utilization. */
    to: HostName,
    mode: Mode.optional(),
    options: MigrationOptions.partial().optional(),
  }),
  clone: z.strictObject({
    container: ContainerName,
    name: ContainerName,
    from: HostName.optional(),
    to: HostName.optional(),
    ip: Ipv4.optional(),
    hostname: Hostname.optional(),
    freeze: Flag.default(false),
    bwlimitKBps: z.int().min(1).optional(),
  }),
  checkpoint: z.strictObject({ container: ContainerName, host: HostName.optional() }),
  restore: z.strictObject({ container: ContainerName, to: HostName.optional() }),
  control: z.strictObject({ id: MigrationId, kind: z.enum(['retry', 'cancel']) }),
  startRound: z.strictObject({ allowRestart: Flag.default(false) }),
  setAuto: z.strictObject({ on: Flag, every: Duration.optional(), threshold: Duration.optional() }),
  setPolicy: z.strictObject({ settings: Settings.min(1, 'name at least one setting') }),
  drain: z.strictObject({ host: HostName, allowRestart: Flag.default(false) }),
  pin: z.strictObject({ container: ContainerName, host: HostName.optional() }),
  unpin: z.strictObject({ container: ContainerName }),
  cordon: z.strictObject({ host: HostName }),
  uncordon: z.strictObject({ host: HostName }),
  groupAdd: z.strictObject({ group: ContainerName, containers: z.array(ContainerName).min(1, 'name at least one container').max(64) }),
  groupRemove: z.strictObject({ containers: z.array(ContainerName).min(1, 'name at least one container').max(64) }),
  // admin
  unify: z.strictObject({
    containers: z.array(ContainerName).min(1, 'name at least one container').max(64),
    host: HostName.optional(),
    mode: z.enum(['dedupe', 'hardlink']).default('dedupe'),
    dryRun: Flag.default(false),
    revert: Flag.default(false),
    excludes: z.array(z.string().max(4096)).max(256).default([]),
  }),
  mount: z.strictObject({ container: ContainerName, hostDir: z.string().max(4096), path: z.string().max(4096), readOnly: Flag.default(false), host: HostName.optional() }),
  umount: z.strictObject({ container: ContainerName, path: z.string().max(4096), host: HostName.optional() }),
  gc: z.strictObject({ dryRun: Flag.default(false), keep: z.string().max(20).optional(), maxAge: Duration.optional(), minAge: Duration.optional() }),
  tokenCreate: z.strictObject({ role: ApiRole, name: TokenName.optional(), containers: ContainerScope.optional() }),
  tokenList: z.strictObject({}),
  tokenRevoke: z.strictObject({ token: z.string().min(1).max(64) }),
  audit: z.strictObject({ limit: Count(AUDIT.maxLen).default(50), after: StreamId.optional(), waitMs: WaitMs.optional() }),
} as const;

export type Inputs = typeof inputs;
export type CallName = keyof Inputs;
/** A call's input once parsed (what the implementations receive). */
export type In<K extends CallName> = z.output<Inputs[K]>;
/** A call's input as given (defaults may be left out). */
export type Given<K extends CallName> = z.input<Inputs[K]>;
