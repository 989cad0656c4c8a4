import { createHash } from 'node:crypto';
import { readOperationLog, RoundStore } from '@ferry/infra';
import type { Client } from '../client.js';
import { auditRead } from '../commands/audit.js';
import { submitCheckpoint, submitRestore } from '../commands/checkpoint.js';
import { submitClone } from '../commands/clone.js';
import { control } from '../commands/control.js';
import { gcCommand } from '../commands/gc.js';
import { submitMigration } from '../commands/migrate.js';
import { mountCommand, showCommand, umountCommand } from '../commands/mount.js';
import { cordon, groupAdd, groupList, groupRemove, pin, policy, uncordon, unpin } from '../commands/placement.js';
import { auto, autoCopyTarget, autoTarget, drain, dryRun, history, startRound } from '../commands/rebalance.js';
import { tokenCreate, tokenList, tokenRevoke } from '../commands/tokens.js';
import { submitUnify } from '../commands/unify.js';
import type { Ferry, OperationView } from './ferry.js';
import { longPoll } from './long-poll.js';

const message = async (m: Promise<string>) => ({ message: await m });

/**
 * Ferry over Redis and the control-plane key: each call is the command's own function
 * (commands/*), so the CLI run as root where the scheduler runs and the API server (for every
 * client) do the same thing.
 */
export function localFerry(c: Client): Ferry {
  const view = async (id: string): Promise<OperationView | null> => {
    const record = await c.store.get(id);
    if (!record) return null;
    const progress = await c.store.progress(id);
    const stamp = `${record.version}.${createHash('sha256').update(JSON.stringify(progress)).digest('hex').slice(0, 16)}`;
    return { record, progress, stamp };
  };
  const rounds = new RoundStore(c.redis, c.store.prefix);
  return {
    operation: (i) => longPoll(() => view(i.id), (v) => v !== null && v.stamp !== i.changedFrom, i.waitMs),
    operations: (i) => c.store.list(i.limit),
    hosts: () => c.registry.list(),
    log: async (i) => {
      const page = await longPoll(() => readOperationLog(c.redis, c.store.prefix, i.id, i.after), (p) => p.lines.length > 0, i.waitMs);
      // The queued request first, then the record: the scheduler saves the record before it lets the
      // request go, so one of the two is always seen (the other order can miss both).
      const queued = Boolean(await c.queues.scheduler.getJob(`submit.${i.id}`));
      const submitted = queued && !(await c.store.get(i.id));
      return { ...page, submitted };
    },
    show: (i) => showCommand(c, i),
    rounds: (i) => history(c, i.limit),
    round: (i) => longPoll(() => rounds.get(i.id), (r) => r?.state === 'done', i.waitMs, 300),
    rebalancePlan: (i) => dryRun(c, i),
    autoState: () => auto(c, undefined, {}),
    policy: () => policy(c, []),
    groups: () => groupList(c),

    migrate: async (i) => {
      const to = i.to === 'auto' ? await autoTarget(c, i.container, i.from, i.mode ?? 'auto') : i.to;
      return { id: await submitMigration(c, { ...i, to }), to };
    },
    clone: async (i) => {
      const to = i.to === 'auto' ? await autoCopyTarget(c, i.container, i.name, i.from) : i.to;
      return { id: await submitClone(c, { ...i, ...(to !== undefined ? { to } : {}) }), ...(to !== undefined ? { to } : {}) };
    },
    checkpoint: async (i) => ({ id: await submitCheckpoint(c, i) }),
    restore: async (i) => ({ id: await submitRestore(c, i) }),
    control: async (i) => ({ version: await control(c, i.id, i.kind) }),
    startRound: async (i) => ({ id: await startRound(c, i) }),
    setAuto: (i) => auto(c, i.on ? 'on' : 'off', i),
    setPolicy: (i) => policy(c, i.settings),
    drain: (i) => drain(c, i.host, i),
    pin: (i) => message(pin(c, i.container, i.host)),
    unpin: (i) => message(unpin(c, i.container)),
    cordon: (i) => message(cordon(c, i.host)),
    uncordon: (i) => message(uncordon(c, i.host)),
    groupAdd: (i) => message(groupAdd(c, i.group, i.containers)),
    groupRemove: (i) => message(groupRemove(c, i.containers)),

    unify: async (i) => ({ id: await submitUnify(c, i) }),
    mount: (i) => mountCommand(c, i),
    umount: (i) => umountCommand(c, i),
    gc: (i) => gcCommand(c, i),
    tokenCreate: (i) => tokenCreate(c, i),
    tokenList: () => tokenList(c),
    tokenRevoke: (i) => tokenRevoke(c, i.token),
    audit: (i) => auditRead(c, i),
  };
}
