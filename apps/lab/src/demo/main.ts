#!/usr/bin/env node
/**
 * The demo: a real live migration in a lab on this machine. Two hosts and a client (network
 * namespaces), a container with 256 MiB of data and a writer, a client probing its HTTP every
 * 20 ms; migrates it from h1 to h2 and prints the timeline, figures and the downtime the client
 * saw. `--mode live` brings the lab up with live migration (`ferry lab up --live`) and migrates
 * with checkpoint/restore; `--mode restart` forces restart mode (default: auto, what the hosts
 * allow). `--json` prints the same as one JSON object on the last line. Leaves nothing behind.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmtBytes, fmtMs, renderStatus } from '@ferry/cli';
import { stopEmbeddedRedis } from '@ferry/infra';
import { parseArgsOrExit, usageError } from '../args.js';
import { labContainerCreate, labDown, labInfo, labUp } from '../lab/index.js';
import { measureMigration } from './measure.js';

// Bad arguments end here, before anything is made (exit 2).
const USAGE = 'npm run demo -- [--mode auto|live|restart] [--size-mb N] [--json]';
const values = parseArgsOrExit('demo', USAGE, { json: { type: 'boolean' }, 'size-mb': { type: 'string' }, mode: { type: 'string' } });
const sizeMb = Number(values['size-mb'] ?? 256);
if (!Number.isInteger(sizeMb) || sizeMb < 0 || sizeMb > 65536) usageError('demo', USAGE, `--size-mb takes a whole number from 0 to 65536 (got '${values['size-mb']}')`);
const mode = (['auto', 'live', 'restart'] as const).find((m) => m === (values.mode ?? 'auto')) ?? usageError('demo', USAGE, `--mode is one of auto, live, restart (got '${values.mode}')`);

// A private state dir (lab, embedded Redis and its data), removed at the end: the demo leaves
// nothing behind. FERRY_STATE_DIR, when set, is used as it is and kept.
const ownState = !process.env.FERRY_STATE_DIR;
if (ownState) process.env.FERRY_STATE_DIR = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
const say = (s: string) => process.stderr.write(`${s}\n`);

async function demo(): Promise<Record<string, unknown>> {
  if (await labInfo()) throw new Error('a lab is already up; remove it first with: ferry lab down');
  say(`demo: bringing up a lab of two hosts and a client${mode === 'live' ? ' (workers offer live migration)' : ''}…`);
  const lab = await labUp({ hosts: 2, ...(mode === 'live' ? { live: true } : {}) });
  const [h1, h2] = lab.hosts;
  say(`demo: creating container "web" on ${h1!.name} with ${sizeMb} MiB of data and a writer…`);
  const ct = await labContainerCreate({ name: 'web', host: h1!.name, sizeMb, writer: true });
  say(`demo: migrating web ${h1!.name} → ${h2!.name} while the client probes http://${ct.ip}/ every 20 ms…`);
  const m = await measureMigration(lab, { container: 'web', ip: ct.ip, from: h1!.name, to: h2!.name, mode, onProgress: (l) => say(`  ${l}`) });
  say(`\n${renderStatus(m.record)}`);
  const { record: _record, ...figures } = m;
  return { ...figures, dataMiB: sizeMb };
}

let code = 0;
let result: Record<string, unknown> | undefined;
try {
  result = await demo();
  code = result.state === 'done' ? 0 : 1;
} catch (e) {
  say(`demo: ${(e as Error).message}`);
  code = 1;
} finally {
  say('demo: removing the lab…');
  await labDown().catch((e: unknown) => say(`demo: lab down failed: ${(e as Error).message}`));
  if (ownState) {
    await stopEmbeddedRedis({ purge: true }).catch(() => undefined);
    await rm(process.env.FERRY_STATE_DIR!, { recursive: true, force: true }).catch(() => undefined);
  }
}
if (result) {
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const steps = result.steps as { name: string; host: string; ms: number | null }[];
    const lines = [
      '',
      'step timeline:',
      ...steps.map((x) => `  ${x.name.padEnd(16)} ${x.host.padEnd(4)} ${fmtMs(x.ms ?? undefined).padStart(10)}`),
      '',
      `state:              ${result.state}`,
      `mode:               ${String(result.mode ?? mode)}`,
      `total time:         ${fmtMs(result.totalMs as number)}`,
      `bytes moved:        ${fmtBytes(result.bytesTransferred as number)} (${result.dataMiB} MiB of data)`,
      `pre-copy passes:    ${result.precopyPasses}`,
      `downtime (client):  ${fmtMs(result.downtimeMs as number)}  (longest gap between answers, probing every 20 ms)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
process.exit(code);
