import { newRecord, parseMigrationRequest, workflows, type Capabilities, type MigrateRecord, type MigrationRequest, type Plan } from '../src/index.js';

export const noCheckpoint: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' };
export const withCheckpoint: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: true };

export const peer = (name: string) => ({ name, address: '198.18.0.11', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}/lxc` });

/** The migrate workflow's plan, with the source's and the target's capabilities. */
export function planMigration(request: MigrationRequest, caps: { source: Capabilities; target: Capabilities }): Plan {
  return workflows.migrate.plan(request, (host) => (host === request.from ? caps.source : caps.target));
}

/**
 * A migration record. Verification `full` unless asked: the state machine's tests count steps on
 * the plain path; the default (`changed`) adds index-copy after the pre-copy (plan.test.ts).
 */
export function record(opts: { arpRefresh?: boolean; caps?: Capabilities; verify?: 'off' | 'changed' | 'full' } = {}): MigrateRecord {
  const request = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2', options: { arpRefresh: opts.arpRefresh ?? true, verify: opts.verify ?? 'full' } });
  const caps = opts.caps ?? noCheckpoint;
  return newRecord({
    id: 'm-test000001',
    kind: 'migrate',
    request,
    plan: planMigration(request, { source: caps, target: caps }),
    hosts: { source: peer('h1'), target: peer('h2') },
    epoch: 1,
    now: 1000,
  });
}
