import { Queue } from 'bullmq';
import {
  MountJob,
  newToolboxId,
  ShowJob,
  toolboxKeys,
  toolboxQueues,
  UmountJob,
  type ContainerDetails,
  type MountChange,
  type ToolboxJob,
  type ToolboxReply,
  JOB_TTL_MS,
} from '@ferry/core';
import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { targetHost } from './target-host.js';

/**
 * `ferry mount` / `ferry umount` / `ferry show`: one request to the worker of the host that has the
 * container (queue `toolbox-<host>`), answered on a reply list. The worker does every check and the
 * change (see apps/worker/src/mounts/mount-ops.ts); input that cannot be right is refused here first.
 */

const ANSWER_MS = 30_000;

async function request(c: Client, host: string, job: ToolboxJob): Promise<ContainerDetails | MountChange> {
  const prefix = c.queues.prefix;
  const queue = new Queue(toolboxQueues.admin(host), { connection: c.redis, prefix });
  const reader = c.redis.duplicate();
  const key = toolboxKeys(prefix).reply(job.requestId);
  try {
    await c.enqueue(queue, job.kind, job, { jobId: job.requestId, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } }, JOB_TTL_MS.toolbox);
    const got = await reader.blpop(key, ANSWER_MS / 1000);
    if (!got) {
      const removed = await queue.remove(job.requestId).catch(() => 0);
      throw new ExitError(
        EXIT.failed,
        removed
          ? `the worker of ${host} did not take the request within ${ANSWER_MS / 1000} s (is it running?); nothing was changed`
          : `the worker of ${host} did not answer within ${ANSWER_MS / 1000} s; see ferry show to find out what happened`,
      );
    }
    const reply = JSON.parse(got[1]) as ToolboxReply;
    if (!reply.ok) throw new ExitError(reply.exit, reply.error.message);
    return reply.result;
  } finally {
    reader.disconnect();
    await queue.close();
    await c.redis.del(key).catch(() => undefined);
  }
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } } }, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success) throw new ExitError(EXIT.badInput, r.error.issues.map((i) => i.message).join('; '));
  return r.data;
}

async function notMigrating(c: Client, container: string): Promise<void> {
  const holder = await c.store.lockHolder(container);
  if (holder) throw new ExitError(EXIT.badInput, `container ${container} is being migrated (${holder}); change its mounts once that is over (ferry status ${holder})`);
}

export async function mountCommand(c: Client, o: { container: string; hostDir: string; path: string; readOnly: boolean; host?: string }): Promise<MountChange> {
  const job = parse(MountJob, { kind: 'mount', requestId: newToolboxId('r'), container: o.container, hostDir: o.hostDir, path: o.path, readOnly: o.readOnly });
  const host = await targetHost(c, o.container, o.host, 'exists');
  await notMigrating(c, o.container);
  return (await request(c, host.name, job)) as MountChange;
}

export async function umountCommand(c: Client, o: { container: string; path: string; host?: string }): Promise<MountChange> {
  const job = parse(UmountJob, { kind: 'umount', requestId: newToolboxId('r'), container: o.container, path: o.path });
  const host = await targetHost(c, o.container, o.host, 'exists');
  await notMigrating(c, o.container);
  return (await request(c, host.name, job)) as MountChange;
}

export async function showCommand(c: Client, o: { container: string; host?: string }): Promise<ContainerDetails> {
  const host = await targetHost(c, o.container, o.host, 'exists');
  const job = parse(ShowJob, { kind: 'show', requestId: newToolboxId('r'), container: o.container });
  return (await request(c, host.name, job)) as ContainerDetails;
}

const mode = (ro: boolean | undefined) => (ro ? 'read-only' : 'read-write');

export function renderMountChange(kind: 'mount' | 'umount', m: MountChange): string {
  const where = `${m.container} on ${m.host}`;
  if (kind === 'mount') {
    const what = `${m.source} at ${m.target} (${mode(m.readOnly)})`;
    if (m.live === 'not-running') {
      return m.configChanged ? `${where} is not running: ${what} is mounted when it starts` : `${what} is already in the config of ${where}; it is mounted when it starts`;
    }
    if (m.live === 'unchanged') return `${what} is already mounted in ${where}`;
    return `mounted ${what} in ${where}: now and at every start`;
  }
  if (m.live === 'applied') return `unmounted ${m.target} in ${where} and removed it from its config`;
  if (m.live === 'unchanged') return `removed ${m.target} from the config of ${where} (it was not mounted)`;
  return `removed ${m.target} from the config of ${where} (not running)`;
}

export function renderDetails(d: ContainerDetails): string {
  const lines = [`${d.name}  ${d.state} on ${d.host}`];
  if (d.ip) lines.push(`  ip      ${d.ip}`);
  if (d.mac) lines.push(`  mac     ${d.mac}`);
  if (d.pid) lines.push(`  pid     ${d.pid}`);
  if (!d.mounts.length) lines.push('  mounts  none');
  else {
    lines.push('  mounts');
    for (const m of d.mounts) {
      const flags = [m.readOnly ? 'ro' : 'rw', ...(m.optional ? ['optional'] : []), ...(m.active === undefined ? [] : [m.active ? 'active' : 'NOT MOUNTED'])];
      lines.push(`    ${m.target}  <-  ${m.source}  ${flags.join(' ')}`);
    }
  }
  return lines.join('\n');
}
