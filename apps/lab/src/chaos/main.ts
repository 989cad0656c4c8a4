#!/usr/bin/env node
/**
 * The chaos suite: `npm run chaos -- [--trials N] [--json] [--faults 1,2,..] [--seed S] [--mode live]`.
 * Brings up a lab (two hosts and a client), and per fault runs N migrations h1 → h2 with the
 * fault injected at a random (seeded) moment, checking that the container is never lost, never
 * runs twice, and keeps its data, and that each fault ends as expected. Removes the lab at the
 * end. Exit 0 when every invariant and expected outcome held, 1 otherwise.
 */
import { parseArgsOrExit } from '../args.js';
import { FAULTS, OPT_IN_FAULTS } from './faults.js';
import { renderTable } from './report.js';
import { runChaos } from './runner.js';

const USAGE = 'npm run chaos -- [--trials N] [--faults 1,2,..] [--seed S] [--mode restart|live] [--json] (--help for all options)';
const values = parseArgsOrExit('chaos', USAGE, {
  trials: { type: 'string', default: '1' },
  faults: { type: 'string', default: FAULTS.map((f) => f.id).join(',') },
  seed: { type: 'string' },
  json: { type: 'boolean', default: false },
  'size-mb': { type: 'string', default: '48' },
  bwlimit: { type: 'string', default: '12000' },
  'trial-timeout-s': { type: 'string', default: '240' },
  'post-recovery-s': { type: 'string', default: '60' },
  'lab-wait-s': { type: 'string', default: '1200' },
  'evidence-dir': { type: 'string' },
  verify: { type: 'boolean', default: false },
  mode: { type: 'string', default: 'restart' },
  'link-down-s': { type: 'string', default: '5-20' },
  help: { type: 'boolean', short: 'h', default: false },
});

if (values.help) {
  process.stdout.write(
    [
      'usage: npm run chaos -- [--trials N] [--faults 1,2,..] [--seed S] [--mode restart|live] [--json]',
      '         [--size-mb 48] [--bwlimit 12000] [--trial-timeout-s 240] [--post-recovery-s 60]',
      '         [--lab-wait-s 1200] [--evidence-dir DIR] [--verify] [--link-down-s 5-20]',
      'modes: restart (default) or live (CRIU dump and restore: workers run with --live, containers',
      '       run ferry-memsvc; needs a working CRIU, see scripts/setup.sh)',
      'faults:',
      ...FAULTS.map((f) => `  ${f.id}  ${f.name} (expected: ${f.expect})`),
      ...OPT_IN_FAULTS.map((f) => `  ${f.id}  ${f.name} (expected: ${f.expect}; not in the default set)`),
      '  0  no fault (control; not in the default set)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const int = (name: string, v: string, min: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`chaos: --${name} must be a whole number >= ${min}, not '${v}'\n`);
    process.exit(2);
  }
  return n;
};
const faults = values.faults
  .split(',')
  .filter(Boolean)
  .map((x) => int('faults', x.trim(), 0));
const linkDown = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(values['link-down-s']);
if (!linkDown || Number(linkDown[1]) > Number(linkDown[2])) {
  process.stderr.write(`chaos: --link-down-s must be MIN-MAX seconds, like 5-20, not '${values['link-down-s']}'\n`);
  process.exit(2);
}
if (values.mode !== 'restart' && values.mode !== 'live') {
  process.stderr.write(`chaos: --mode must be restart or live, not '${values.mode}'\n`);
  process.exit(2);
}
const seed = values.seed !== undefined ? int('seed', values.seed, 0) : Math.floor(Math.random() * 2 ** 31);

// First SIGINT/SIGTERM: stop after the trial in hand (cut short) and remove the lab; a second one exits at once.
const abort = new AbortController();
let signals = 0;
const onSignal = (sig: NodeJS.Signals) => {
  signals++;
  if (signals === 1) {
    process.stderr.write(`chaos: ${sig}: stopping, removing the lab (again to exit at once)\n`);
    abort.abort();
    setTimeout(() => process.exit(130), 180_000).unref();
  } else {
    process.exit(130);
  }
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

let code = 1;
try {
  const report = await runChaos({
    faults,
    trials: int('trials', values.trials, 1),
    seed,
    sizeMb: int('size-mb', values['size-mb'], 1),
    bwlimitKBps: int('bwlimit', values.bwlimit, 100),
    trialTimeoutMs: int('trial-timeout-s', values['trial-timeout-s'], 10) * 1000,
    postRecoveryMs: int('post-recovery-s', values['post-recovery-s'], 0) * 1000,
    labWaitMs: int('lab-wait-s', values['lab-wait-s'], 0) * 1000,
    ...(values['evidence-dir'] ? { evidenceDir: values['evidence-dir'] } : {}),
    verify: values.verify,
    mode: values.mode,
    linkDownMs: [Number(linkDown[1]) * 1000, Number(linkDown[2]) * 1000] as const,
    signal: abort.signal,
  });
  code = report.ok ? 0 : 1;
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${renderTable(report)}\n`);
} catch (e) {
  process.stderr.write(`chaos: ${(e as Error).stack ?? e}\n`);
  code = 1;
}
process.exit(code);
