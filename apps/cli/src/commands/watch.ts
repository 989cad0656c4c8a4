import type { Client } from '../client.js';
import { EXIT, ExitError } from '../exit-error.js';
import { renderStatus } from '../render.js';
import { exitCodeOf, waitFor } from './migrate.js';

/** Live view of an operation (any kind) until it ends or pauses; redraws in place on a terminal. */
export async function watch(c: Client, id: string, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  if (!(await c.store.get(id))) throw new ExitError(EXIT.badInput, `no operation with id ${id}`);
  let lastLines = 0;
  let lastText = '';
  const draw = async () => {
    const r = await c.store.get(id);
    if (!r) return;
    const text = renderStatus(r, await c.store.progress(id));
    if (text === lastText) return;
    lastText = text;
    if (out.isTTY && lastLines) out.write(`\x1b[${lastLines}F\x1b[J`);
    else if (!out.isTTY && lastLines) out.write('\n');
    out.write(`${text}\n`);
    lastLines = text.split('\n').length;
  };
  const timer = setInterval(() => void draw(), 200);
  try {
    const r = await waitFor(c, id);
    await draw();
    return exitCodeOf(r);
  } finally {
    clearInterval(timer);
  }
}
