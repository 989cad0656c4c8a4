import { isTerminal } from '@ferry/core';
import { EXIT, ExitError } from '../exit-error.js';
import { renderStatus } from '../render.js';
import type { Ferry } from '../service/ferry.js';
import { exitCodeOf, planned } from './migrate.js';

/**
 * Live view of an operation (any kind) until it ends or pauses; redraws in place on a terminal.
 * Each redraw follows a change of the record or its progress (`operation` long-polls for one).
 */
export async function watch(f: Pick<Ferry, 'operation' | 'log'>, id: string, out: NodeJS.WriteStream = process.stdout, timeoutMs = 30 * 60_000): Promise<number> {
  let v = await f.operation({ id });
  if (!v) {
    // Just submitted (`ferry migrate` returns before the scheduler has planned it): wait for it.
    const page = await f.log({ id });
    if (page.submitted || page.lines.length) {
      if (await planned(f, id)) v = await f.operation({ id });
    } else v = await f.operation({ id }); // planned between the two reads
  }
  if (!v) throw new ExitError(EXIT.badInput, `no operation with id ${id}`);
  const deadline = Date.now() + timeoutMs;
  let lastLines = 0;
  let lastText = '';
  for (;;) {
    const text = renderStatus(v.record, v.progress);
    if (text !== lastText) {
      lastText = text;
      if (out.isTTY && lastLines) out.write(`\x1b[${lastLines}F\x1b[J`);
      else if (!out.isTTY && lastLines) out.write('\n');
      out.write(`${text}\n`);
      lastLines = text.split('\n').length;
    }
    if (isTerminal(v.record.state) || v.record.state === 'paused') return exitCodeOf(v.record);
    if (Date.now() > deadline) throw new ExitError(EXIT.failed, `operation ${id} did not finish within ${Math.round(timeoutMs / 1000)} s (it goes on; see ferry status ${id})`);
    v = (await f.operation({ id, changedFrom: v.stamp, waitMs: Math.min(20_000, Math.max(0, deadline - Date.now())) })) ?? v;
  }
}
