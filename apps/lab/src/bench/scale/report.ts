import type { RawFigures } from './raw.js';
import type { Part, SizeResult } from './run-size.js';
import type { StepTimes } from './step-times.js';
import { table, type Dist } from './stats.js';

export interface Settings {
  migrations: number;
  lightMigrations: number;
  lightInflight: number;
  perHost: number;
  processes: number;
  containers: number;
  timeScale: number;
  stepMs: StepTimes;
  gcEvery: string;
  parts: boolean;
}

const ms = (x: number) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(1) : x.toFixed(0)) : '-');
const pp = (d: Dist) => `${ms(d.p50)} / ${ms(d.p99)}`;
const mb = (b: number) => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(1)}` : '-');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The bench's figures as text tables. */
export function report(s: Settings, raw: RawFigures, rows: SizeResult[]): string {
  const out: string[] = [];
  const profile = Object.entries(s.stepMs)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out.push(
    `per size: ${s.lightMigrations} migrations at most ${s.lightInflight} at once (light), then ${s.migrations} as many at once as the hosts take (full: at most ${s.perHost} per host); restart mode, 8 steps each; hosts in ${s.processes} processes, ${s.containers} containers each`,
    `step times (ms, the demo's timeline × ${s.timeScale}): ${profile}`,
    `raw BullMQ on the same Redis: ${raw.jobs} empty jobs, added (${raw.window} at once) → processed (one worker, concurrency ${raw.concurrency}): ${raw.jobsPerSec.toFixed(0)} jobs/s`,
    '',
  );
  out.push(
    table(
      ['hosts', 'load', 'done', 'wall s', 'steps/s', '× raw', 'dispatch ms light', 'dispatch ms full', 'advance ms full', 'migration s', 'sched CPU ms/step', 'sched cores', 'sched RSS MB', 'redis CPU ms/step', 'hosts CPU ms/step'],
      rows.map((r) => [
        String(r.hosts),
        mean(r.load).toFixed(1),
        `${r.full.states.done ?? 0}/${r.full.migrations}`,
        (r.full.wallMs / 1000).toFixed(0),
        r.full.stepsPerSec.toFixed(0),
        (r.full.stepsPerSec / raw.jobsPerSec).toFixed(2),
        pp(r.light.dist.dispatch),
        pp(r.full.dist.dispatch),
        pp(r.full.dist.advance),
        (r.full.dist.migration.p50 / 1000).toFixed(2),
        r.scheduler.cpuMsPerStep.toFixed(2),
        r.scheduler.cores.toFixed(2),
        mb(r.scheduler.rssPeak),
        r.redis.cpuMsPerStep.toFixed(2),
        r.hostsCpuMsPerStep.toFixed(2),
      ]),
    ),
    '(latencies p50 / p99; load: the machine\'s 1-minute load average during the full phase; sched RSS: its peak)',
    '',
  );
  const parts: [Part, string][] = [
    ['dispatch.schedule', 'scheduler: save, fence, sign, add'],
    ['dispatch.queue', 'queue: added → taken by the worker'],
    ['dispatch.admit', 'worker: signature, replay record, lock'],
    ['advance.report', 'worker: result signed, added'],
    ['advance.queue', 'queue: result added → taken by the scheduler'],
    ['advance.handle', 'scheduler: result checked, record read, transition'],
    ['first', 'submit → first step enqueued (planning)'],
  ];
  if (!s.parts) out.push('where the time goes: the parts of dispatch and advance need --parts (the steps\' jobs kept to read their times)', '');
  else out.push(
    'where the time goes, p50 / p99 ms per step (light | full):',
    table(
      ['part', ...rows.map((r) => `${r.hosts} hosts light`), ...rows.map((r) => `${r.hosts} hosts full`)],
      parts.map(([p, label]) => [label, ...rows.map((r) => pp(r.light.dist[p])), ...rows.map((r) => pp(r.full.dist[p]))]),
    ),
    '',
  );
  out.push(
    `Redis used_memory, MB: before the full phase, as its migrations end (records kept), after, after gc (newest 1,000 records; ${s.parts ? 'ended operations\' jobs kept for --parts: BullMQ keeps 1,000 finished jobs per queue' : 'ended operations\' jobs removed by the scheduler'}):`,
    table(
      ['hosts', 'before', ...['25 %', '50 %', '75 %', '100 %'], 'after', 'after gc', 'records', 'keys after → gc'],
      rows.map((r) => [
        String(r.hosts),
        mb(r.redis.before),
        ...[0, 1, 2, 3].map((i) => {
          const m = r.redis.samples[i];
          return m ? `${mb(m.bytes)} (${m.records})` : '-';
        }),
        mb(r.redis.after),
        mb(r.redis.afterGc),
        String(r.redis.recordsAfterGc),
        `${r.redis.keysAfter} → ${r.redis.keysAfterGc}`,
      ]),
    ),
    '',
    'at rest, before the first migration (cores): ' +
      rows.map((r) => `${r.hosts} hosts: scheduler ${r.atRest.scheduler.toFixed(2)}, simulated hosts ${r.atRest.hosts.toFixed(2)}, Redis ${r.atRest.redis.toFixed(2)}`).join('; '),
    "a step is two BullMQ jobs (its own and its result's) and an eighth of a submit: × raw 0.47 would be BullMQ's own ceiling",
    '',
  );
  for (const r of rows) {
    for (const [name, p] of [
      ['light', r.light],
      ['full', r.full],
    ] as const) {
      if ((p.states.done ?? 0) !== p.migrations) out.push(`${r.hosts} hosts, ${name}: not every migration ended done: ${JSON.stringify(p.states)}`);
    }
  }
  return `${out.join('\n')}\n`;
}
