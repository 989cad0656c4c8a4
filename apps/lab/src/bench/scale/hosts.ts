#!/usr/bin/env node
/**
 * One process of bench:scale's simulated hosts: a real HostWorker per host (its own Redis
 * connection, host key, state dir and LXC path), all on one in-memory world (@ferry/worker/sim),
 * each step taking its time from the bench (step-times.ts). Migrations stay within one process's
 * hosts: a simulated rsync copies between hosts of the same world. Started by main.ts, which reads
 * this protocol on stdout:
 *   ready                 every worker has started
 *   end <migrationId>     a migration's last forward step (cleanup) returned
 * The workers' own log lines (info, as `ferry worker` writes them) go to --log. SIGTERM stops the
 * workers as `ferry worker` is stopped.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import type { RedisClient as Redis } from '@ferry/infra';
import { connect } from '@ferry/infra';
import { HostWorker, loadWorkerTrust, type HostConfig } from '@ferry/worker';
import { FakeMeter, FakeRuntime, FakeWorld, fakeSteps } from '@ferry/worker/sim';
import { parseArgsOrExit, usageError } from '../../args.js';
import { timedSteps, type StepTimes } from './step-times.js';
import { containerAddress, containerNames } from './fleet.js';

const NAME = 'bench:scale hosts';
const USAGE = 'hosts.js --redis URL --prefix P --hosts h0,h1,... --dir DIR --control-pub FILE --host-keys DIR --containers N --step-ms JSON --log FILE';
const v = parseArgsOrExit(NAME, USAGE, {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  hosts: { type: 'string' },
  dir: { type: 'string' },
  'control-pub': { type: 'string' },
  'host-keys': { type: 'string' },
  containers: { type: 'string', default: '2' },
  'step-ms': { type: 'string', default: '{}' },
  log: { type: 'string' },
});
const need = (k: keyof typeof v): string => (v[k] as string | undefined) ?? usageError(NAME, USAGE, `--${k} is required`);
const names = need('hosts').split(',');
const times = JSON.parse(v['step-ms']) as StepTimes;
const log = pino({ level: process.env.FERRY_LOG_LEVEL ?? 'info', base: { name: 'worker' } }, pino.destination({ dest: need('log'), sync: false }));

const world = new FakeWorld();
const steps = timedSteps(fakeSteps(world), times, (step, input) => {
  if (step === 'cleanup' && input.migrationId) process.stdout.write(`end ${input.migrationId}\n`);
});
const workers: { worker: HostWorker; redis: Redis }[] = [];

async function startHost(name: string): Promise<void> {
  world.addHost(name);
  for (const [k, c] of containerNames(name, Number(v.containers)).entries()) world.create(name, c, { state: 'RUNNING', ...containerAddress(name, k) });
  const root = join(need('dir'), name);
  const host: HostConfig = {
    name,
    address: '127.0.0.1',
    sshPort: 22,
    sshUser: 'root',
    lxcPath: join(root, 'lxc'),
    sshKey: join(root, 'no-ssh-key'),
    knownHosts: join(root, 'no-known-hosts'),
    stateDir: join(root, 'state'),
    controlKeyFile: need('control-pub'),
    hostKeysDir: need('host-keys'),
  };
  await mkdir(host.lxcPath, { recursive: true });
  const hostLog = log.child({ host: name });
  const trust = await loadWorkerTrust(host, hostLog);
  const redis = connect(need('redis'));
  const worker = new HostWorker({ redis, prefix: need('prefix'), host, runtime: new FakeRuntime(world, name, host.lxcPath), steps, meter: new FakeMeter(world), log: hostLog, trust });
  await worker.start();
  workers.push({ worker, redis });
}

// A few at a time: each start reads and writes its state dir and registers the host.
for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map(startHost));
process.stdout.write('ready\n');

await new Promise<void>((resolve) => {
  process.once('SIGTERM', resolve);
  process.once('SIGINT', resolve);
});
await Promise.all(
  workers.map(async ({ worker, redis }) => {
    await worker.stop(1000);
    await redis.quit().catch(() => redis.disconnect());
  }),
);
log.flush();
