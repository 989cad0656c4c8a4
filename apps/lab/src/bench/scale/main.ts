#!/usr/bin/env node
/**
 * `npm run bench:scale`: ferry's control plane at fleet size. The real scheduler (`ferry
 * scheduler`, its own process) and real BullMQ queues on a redis-server this bench starts, with
 * simulated hosts: real HostWorkers, many per process, on the in-memory world of @ferry/worker/sim,
 * each step taking a configurable time (step-times.ts). Per fleet size (default 50, 200 and 500
 * hosts): a light phase (`--light` migrations, at most `--light-inflight` at once: the scheduler
 * not saturated), then `--migrations` (default 10,000) as many at once as the hosts take. Printed:
 * steps per second, dispatch latency (a step enqueued → started) and its parts, the scheduler's
 * CPU per step and RSS, Redis CPU per step and its memory (before, as the migrations end, after,
 * and after gc), and, in the same run on the same Redis, raw BullMQ's throughput (empty jobs) with
 * ferry's ratio to it. `--parts` splits dispatch and advance into their parts from the steps' jobs,
 * which the scheduler then keeps (and Redis holds). `--json` prints everything as one JSON object
 * on the last line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '@ferry/core';
import { connect, loadOrCreatePrivateKey, startEmbeddedRedis, stopEmbeddedRedis } from '@ferry/infra';
import { parseArgsOrExit, usageError } from '../../args.js';
import { rawBullmq, type RawFigures } from './raw.js';
import { runSize, type SizeResult } from './run-size.js';
import { stepTimes } from './step-times.js';
import { report } from './report.js';

const NAME = 'bench:scale';
const USAGE =
  'npm run bench:scale -- [--hosts 50,200,500] [--migrations 10000] [--light 100] [--light-inflight 10] [--per-host 4] [--processes 4] [--containers 2] [--time-scale 0.2] [--step-ms step=ms,...] [--raw-jobs 20000] [--gc-every 30s] [--scheduler-prof DIR] [--parts] [--keep] [--json]';
const usage = (m: string): never => usageError(NAME, USAGE, m);

const v = parseArgsOrExit(NAME, USAGE, {
  hosts: { type: 'string', default: '50,200,500' },
  migrations: { type: 'string', default: '10000' },
  light: { type: 'string', default: '100' },
  'light-inflight': { type: 'string', default: '10' },
  'per-host': { type: 'string', default: '4' },
  processes: { type: 'string', default: '4' },
  containers: { type: 'string', default: '2' },
  'time-scale': { type: 'string', default: '0.2' },
  'step-ms': { type: 'string', default: '' },
  'raw-jobs': { type: 'string', default: '20000' },
  'gc-every': { type: 'string', default: '30s' },
  'scheduler-prof': { type: 'string' },
  parts: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
});

function whole(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) usage(`--${flag} takes a whole number from ${min} to ${max} (got '${text}')`);
  return n;
}
const sizes = v.hosts.split(',').map((h) => whole('hosts', h, 2, 5000));
const migrations = whole('migrations', v.migrations, 1, 1_000_000);
const lightMigrations = whole('light', v.light, 1, 1_000_000);
const lightInflight = whole('light-inflight', v['light-inflight'], 1, 100_000);
const perHost = whole('per-host', v['per-host'], 1, 4);
const processes = whole('processes', v.processes, 1, 64);
const containers = whole('containers', v.containers, 1, 100);
const rawJobs = whole('raw-jobs', v['raw-jobs'], 100, 10_000_000);
const scale = Number(v['time-scale']);
if (!Number.isFinite(scale) || scale < 0 || scale > 100) usage(`--time-scale takes a number from 0 to 100 (got '${v['time-scale']}')`);
if (parseDuration(v['gc-every']) === undefined) usage(`--gc-every takes a duration such as 30s or 10m (got '${v['gc-every']}')`);
const times = ((): ReturnType<typeof stepTimes> => {
  try {
    return stepTimes(scale, v['step-ms']);
  } catch (e) {
    return usage((e as Error).message);
  }
})();

const progress = (line: string) => process.stderr.write(`${line}\n`);
const root = await mkdtemp(join(tmpdir(), 'ferry-bench-scale-'));
const redisDir = join(root, 'redis');
let code = 0;
try {
  const url = await startEmbeddedRedis({ dir: redisDir });
  const redis = connect(url);
  try {
    const controlKeyFile = join(root, 'keys', 'control.key');
    const controlPubFile = join(root, 'keys', 'control.pub');
    const { key: controlKey } = await loadOrCreatePrivateKey(controlKeyFile, { publicPath: controlPubFile });
    progress(`raw BullMQ: ${rawJobs} empty jobs…`);
    await redis.flushall();
    const raw: RawFigures = await rawBullmq(redis, url, 'raw', rawJobs);
    progress(`raw BullMQ: ${raw.jobsPerSec.toFixed(0)} jobs/s`);
    const rows: SizeResult[] = [];
    for (const hosts of sizes) {
      progress(`${hosts} hosts: ${migrations} migrations…`);
      rows.push(
        await runSize({
          redis,
          url,
          dir: join(root, `h${hosts}`),
          controlKey,
          controlKeyFile,
          controlPubFile,
          hostKeysDir: join(root, 'keys', 'hosts'),
          hosts,
          migrations,
          lightMigrations,
          lightInflight,
          processes,
          perHost,
          containersPerHost: containers,
          times,
          gcEvery: v['gc-every'],
          gcMinAge: v['gc-every'],
          ...(v['scheduler-prof'] ? { schedulerProf: v['scheduler-prof'] } : {}),
          parts: v.parts,
          progress,
        }),
      );
    }
    const settings = { migrations, lightMigrations, lightInflight, perHost, processes, containers, timeScale: scale, stepMs: times, gcEvery: v['gc-every'], parts: v.parts };
    if (v.json) process.stdout.write(`${JSON.stringify({ settings, raw, rows })}\n`);
    else process.stdout.write(report(settings, raw, rows));
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
} catch (e) {
  process.stderr.write(`bench:scale failed: ${(e as Error).stack ?? String(e)}\n`);
  code = 1;
} finally {
  await stopEmbeddedRedis({ dir: redisDir, purge: true });
  if (v.keep) progress(`kept: ${root} (logs of every process)`);
  else await rm(root, { recursive: true, force: true });
}
process.exit(code);
