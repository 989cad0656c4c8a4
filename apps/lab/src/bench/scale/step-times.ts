import { setTimeout as sleep } from 'node:timers/promises';
import { StepName } from '@ferry/core';
import type { StepContext } from '@ferry/worker';
import type { fakeSteps } from '@ferry/worker/sim';

/** Every catalogue step, as the simulated hosts run it. */
export type StepTable = ReturnType<typeof fakeSteps>;

/** How long each step takes on a simulated host, in ms (steps not named: 0). */
export type StepTimes = Partial<Record<StepName, number>>;

/**
 * The demo's step timeline (README, "What the demo does": one restart-mode migration of a 256 MiB
 * container between two lab hosts on this machine, both preflights averaged). bench:scale runs a
 * fraction of it (`--time-scale`, default 0.2: a container about a fifth of the demo's), so that
 * 10,000 migrations fit in minutes; `--step-ms` sets any step outright.
 */
export const DEMO_STEP_MS: StepTimes = {
  preflight: 250,
  'rsync-transfer': 4720,
  'index-copy': 114,
  checkpoint: 735,
  restore: 368,
  'arp-refresh': 670,
  cleanup: 380,
};

/** The profile scaled, then `name=ms,...` overrides applied; a bad entry throws naming it. */
export function stepTimes(scale: number, overrides: string): StepTimes {
  const out: StepTimes = {};
  for (const [name, ms] of Object.entries(DEMO_STEP_MS)) out[name as StepName] = Math.round(ms * scale);
  for (const part of overrides.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z-]+)=(\d+)$/.exec(part);
    const name = m ? StepName.safeParse(m[1]) : undefined;
    if (!m || !name?.success) throw new Error(`--step-ms: '${part}' is not <step>=<ms> with a catalogue step (${StepName.options.join(', ')})`);
    out[name.data] = Number(m[2]);
  }
  return out;
}

/**
 * The simulated steps, each taking its time first (cut short, as a real step is, when the worker
 * aborts it), then acting on the world; `ended` is told of every step that returned.
 */
export function timedSteps(table: StepTable, times: StepTimes, ended: (step: StepName, input: { migrationId?: string }) => void): StepTable {
  const out: Record<string, unknown> = {};
  for (const name of StepName.options) {
    const run = table[name] as (ctx: StepContext, input: unknown) => Promise<unknown>;
    const ms = times[name] ?? 0;
    out[name] = async (ctx: StepContext, input: { migrationId?: string }) => {
      if (ms > 0) await sleep(ms, undefined, { signal: ctx.signal });
      const output = await run(ctx, input);
      ended(name, input);
      return output;
    };
  }
  return out as StepTable;
}
