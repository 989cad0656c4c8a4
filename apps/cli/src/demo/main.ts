#!/usr/bin/env node
/**
 * The demo: a real live migration in a lab on this machine. Two hosts and a client (network
 * namespaces), a container with 256 MiB of data and a writer, a client probing its HTTP every
 * 20 ms; migrates it from h1 to h2 and prints the timeline, figures and the downtime the client
 * saw. `--json` prints the same as one JSON object on the last line. Leaves nothing behind.
 */
import { parseArgs } from 'node:util';
import { summarize, type MigrationSummary } from '@ferry/core';
import { labContainerCreate, labDown, labInfo, labUp } from '../lab/index.js';
import { openClient } from '../client.js';
import { submitMigration, waitFor } from '../commands/migrate.js';
import { fmtBytes, fmtMs, renderStatus } from '../render.js';
import { ClientProbe } from './client-probe.js';

const { values } = parseArgs({ options: { json: { type: 'boolean' }, 'size-mb': { type: 'string' } } });
const sizeMb = Number(values['size-mb'] ?? 256);
const say = (s: string) => process.stderr.write(`${s}\n`);

async function demo(): Promise<Record<string, unknown>> {
  if (await labInfo()) throw new Error('a lab is already up; remove it first with: ferry lab down');
  say('demo: bringing up a lab of two hosts and a client…');
  const lab = await labUp({ hosts: 2 });
  const [h1, h2] = lab.hosts;
  say(`demo: creating container "web" on ${h1!.name} with ${sizeMb} MiB of data and a writer…`);
  const ct = await labContainerCreate({ name: 'web', host: h1!.name, sizeMb, writer: true });
  const probe = new ClientProbe(lab.client.netns, `http://${ct.ip}/`, 20);
  if (!(await probe.waitForAnswer(10_000))) throw new Error(`the client gets no HTTP answer from ${ct.ip} before the migration`);
  const c = await openClient();
  try {
    say(`demo: migrating web ${h1!.name} → ${h2!.name} while the client probes http://${ct.ip}/ every 20 ms…`);
    const t0 = Date.now();
    const id = await submitMigration(c, { container: 'web', from: h1!.name, to: h2!.name });
    let lastState = '';
    const r = await waitFor(c, id, (rec) => {
      const line = rec.steps.map((s) => `${s.name}:${s.state}`).join(' ');
      if (line !== lastState) say(`  ${(lastState = line)}`);
    });
    const t1 = Date.now();
    // Keep probing a little after the end: the client must be answered from the target.
    const answered = await probe.waitForAnswer(5000);
    await new Promise((res) => setTimeout(res, 1000));
    await probe.stop();
    const s: MigrationSummary = summarize(r);
    say(`\n${renderStatus(r)}`);
    const downtimeMs = probe.longestGap(t0, Date.now());
    const result = {
      migrationId: id,
      state: s.state,
      totalMs: s.totalMs ?? t1 - t0,
      downtimeMs,
      bytesTransferred: s.bytesTransferred,
      precopyPasses: s.precopyPasses,
      dataMiB: sizeMb,
      mode: s.mode,
      frozenMs: s.frozenMs,
      answeredAfter: answered,
      probes: { ok: probe.samples.filter((x) => x.ok).length, failed: probe.samples.filter((x) => !x.ok).length },
      steps: s.steps.map((x) => ({ name: x.name, host: x.host, ms: x.ms ?? null, state: x.state })),
      ...(s.error ? { error: s.error } : {}),
    };
    return result;
  } finally {
    await probe.stop();
    await c.close();
  }
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
      `total time:         ${fmtMs(result.totalMs as number)}`,
      `bytes moved:        ${fmtBytes(result.bytesTransferred as number)} (${result.dataMiB} MiB of data)`,
      `pre-copy passes:    ${result.precopyPasses}`,
      `downtime (client):  ${fmtMs(result.downtimeMs as number)}  (longest gap between answers, probing every 20 ms)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}
process.exit(code);
