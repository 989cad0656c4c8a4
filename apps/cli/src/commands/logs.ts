import { isTerminal, type StoredRecord } from '@ferry/core';
import type { OperationLogLine } from '@ferry/infra';
import type { Ferry } from '../service/ferry.js';
import { EXIT, ExitError } from '../exit-error.js';
import { exitCodeOf, planned } from './migrate.js';

export interface LogsOptions {
  follow?: boolean;
  json?: boolean;
  /** How long --follow waits for new lines before it looks at the operation's state again (ms). */
  pollMs?: number;
  /** Where lines go (default stdout) and notes (default stderr). */
  out?: (line: string) => void;
  note?: (line: string) => void;
}

/**
 * After the operation ended, --follow reads on this long: the last lines of its hosts and of the
 * scheduler ('migration finished') reach Redis a moment after the record says it ended.
 */
const SETTLE_MS = 500;

/** One line as text: time, host, step, level, message and detail (like `kubectl logs`, `journalctl`). */
export function renderLogLine(l: OperationLogLine): string {
  const d = new Date(l.time);
  const t = `${[d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  const step = l.step ? (l.phase === 'rollback' ? `${l.step} (rollback)` : l.step) : '-';
  return `${t}  ${l.host.padEnd(9)}  ${step.padEnd(16)}  ${l.level.padEnd(5)}  ${l.msg}${l.detail ? `  ${l.detail}` : ''}`;
}

/**
 * `ferry logs <id>`: the operation's log in order, from every host its steps ran on and from the
 * scheduler. With `follow`, prints new lines as they come until the operation has ended (done,
 * rolled back, rejected) and exits by its outcome (0 done, 1 otherwise); a pause is said once on
 * stderr and followed on (a retry or cancel goes on from there). Without, exits 0.
 */
export async function logs(f: Pick<Ferry, 'operation' | 'log'>, id: string, o: LogsOptions = {}): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const note = o.note ?? ((s: string) => process.stderr.write(`ferry: ${s}\n`));
  const show = (l: OperationLogLine) => out(o.json ? JSON.stringify(l) : renderLogLine(l));
  let page = await f.log({ id });
  let r = (await f.operation({ id }))?.record ?? null;
  // Just submitted (`ferry migrate` returns before the scheduler has planned it): --follow waits for it.
  if (!r && o.follow && page.submitted) r = await planned(f, id);
  if (!r && !page.lines.length) throw new ExitError(EXIT.badInput, `no operation with id ${id}`);
  page.lines.forEach(show);
  if (!o.follow) return EXIT.ok;
  if (!r) throw new ExitError(EXIT.failed, `operation ${id} has no record any more (removed by gc): nothing to follow`);
  let endedAt: number | undefined;
  let pausedAt = r.state === 'paused' ? r.version : -1;
  if (pausedAt >= 0) note(pauseNote(r));
  for (;;) {
    if (endedAt === undefined && isTerminal(r.state)) endedAt = Date.now();
    // New lines, or none after a while (long poll); once ended, until none came for SETTLE_MS.
    page = await f.log({ id, after: page.last, waitMs: endedAt !== undefined ? SETTLE_MS : (o.pollMs ?? 2000) });
    page.lines.forEach(show);
    if (endedAt !== undefined) {
      if (!page.lines.length) return exitCodeOf(r);
      continue;
    }
    r = (await f.operation({ id }))?.record ?? r;
    if (r.state === 'paused' && r.version !== pausedAt) {
      pausedAt = r.version;
      note(pauseNote(r));
    }
  }
}

function pauseNote(r: StoredRecord): string {
  return `${r.id} is paused (ferry retry ${r.id}, or ferry cancel ${r.id}); following on until it ends`;
}
