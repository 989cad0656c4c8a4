#!/usr/bin/env node
/**
 * Migration benchmark in the lab: containers of several sizes, each with a writer, migrated there
 * and back while a client probes every 20 ms. Prints total time, client downtime, frozen window,
 * bytes moved and pre-copy passes. `--json` prints the rows as one JSON array on the last line.
 */
import { parseArgs } from 'node:util';
import { labContainerCreate, labDown, labInfo, labUp } from '../lab/index.js';
import { measureMigration, type Measured } from '../demo/measure.js';
import { fmtBytes, fmtMs } from '../render.js';

const { values } = parseArgs({ options: { json: { type: 'boolean' }, sizes: { type: 'string', default: '16,64,256' } } });
const sizes = values.sizes!.split(',').map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 0 || n > 4096)) {
  process.stderr.write('bench: --sizes takes MiB values from 0 to 4096, comma-separated\n');
  process.exit(2);
}

interface Row {
  sizeMiB: number;
  route: string;
  state: string;
  totalMs: number;
  downtimeMs: number;
  frozenMs: number | null;
  bytes: number;
  passes: number;
}

const rows: Row[] = [];
let code = 0;
try {
  if (await labInfo()) throw new Error('a lab is already up; remove it first with: ferry lab down');
  const lab = await labUp({ hosts: 2 });
  for (const size of sizes) {
    const name = `bench${size}`;
    const ct = await labContainerCreate({ name, host: 'h1', sizeMb: size, writer: true });
    for (const [from, to] of [['h1', 'h2'], ['h2', 'h1']] as const) {
      const m: Measured = await measureMigration(lab, { container: name, ip: ct.ip, from, to });
      rows.push({
        sizeMiB: size,
        route: `${from}→${to}`,
        state: m.state,
        totalMs: m.totalMs,
        downtimeMs: m.downtimeMs,
        frozenMs: m.frozenMs ?? null,
        bytes: m.bytesTransferred,
        passes: m.precopyPasses,
      });
      if (m.state !== 'done') code = 1;
      process.stderr.write(`bench: ${size} MiB ${from}→${to}: ${m.state} in ${fmtMs(m.totalMs)}, downtime ${fmtMs(m.downtimeMs)}\n`);
    }
  }
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  code = 1;
} finally {
  await labDown().catch(() => undefined);
}
if (values.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
else {
  const head = ['size', 'route', 'state', 'total', 'downtime', 'frozen', 'moved', 'passes'];
  const body = rows.map((r) => [`${r.sizeMiB} MiB`, r.route, r.state, fmtMs(r.totalMs), fmtMs(r.downtimeMs), fmtMs(r.frozenMs ?? undefined), fmtBytes(r.bytes), String(r.passes)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  for (const line of [head, ...body]) process.stdout.write(`${line.map((c, i) => c.padEnd(w[i]!)).join('  ')}\n`);
}
process.exit(code);
