import { newRecord, parseMigrationRequest, plan, type Capabilities, type MigrationRecord } from '../src/index.js';

export const noCheckpoint: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: false, checkpointReason: 'criu check failed' };
export const withCheckpoint: Capabilities = { runtime: 'lxc', freeze: true, checkpoint: true };

export const peer = (name: string) => ({ name, address: '198.18.0.11', sshPort: 22, sshUser: 'root', lxcPath: `/lab/${name}/lxc` });

export function record(opts: { arpRefresh?: boolean; caps?: Capabilities } = {}): MigrationRecord {
  const request = parseMigrationRequest({ container: 'web', from: 'h1', to: 'h2', options: { arpRefresh: opts.arpRefresh ?? true } });
  const caps = opts.caps ?? noCheckpoint;
  return newRecord({
    id: 'm-test000001',
    request,
    plan: plan(request, { source: caps, target: caps }),
    hosts: { source: peer('h1'), target: peer('h2') },
    epoch: 1,
    now: 1000,
  });
}
