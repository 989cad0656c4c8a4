import { AuditLog } from '@ferry/infra';
import { AUDIT, type AuditLine } from '@ferry/core';
import { EXIT, ExitError } from '../exit-error.js';
import type { Client } from '../client.js';
import type { In } from '../service/inputs.js';
import type { Ferry } from '../service/ferry.js';
import { longPoll } from '../service/long-poll.js';

/** The audit log's entries (oldest first): the newest `limit`, or those after `after`; waits for some with waitMs. */
export async function auditRead(c: Client, i: In<'audit'>): Promise<AuditLine[]> {
  const log = new AuditLog(c.redis, c.store.prefix);
  return longPoll(() => log.read({ limit: i.limit, ...(i.after !== undefined ? { after: i.after } : {}) }), (l) => l.length > 0, i.after !== undefined ? i.waitMs : undefined, 250);
}

export function renderAuditLine(l: AuditLine): string {
  const t = new Date(l.time).toISOString().replace('T', ' ').replace('Z', '');
  const who = `${l.who}${l.role ? ` (${l.role})` : ''}`;
  const ct = l.containers.length ? `  [${l.containers.join(',')}]` : '';
  return `${t}  ${who.padEnd(22)}  ${`${l.method} ${l.path}`.padEnd(40)}  ${String(l.status)} ${l.outcome}${ct}  ${l.via}${l.peer ? ` ${l.peer}` : ''}  ${l.requestId}${l.note ? `\n    ${l.note}` : ''}`;
}

/**
 * `ferry audit`: the newest `limit` entries, oldest first; with `follow`, then every new one as it
 * comes until interrupted (each wait a long poll).
 */
export async function audit(f: Pick<Ferry, 'audit'>, o: { limit: number; follow?: boolean; json?: boolean; out?: (s: string) => void; until?: () => boolean }): Promise<void> {
  const out = o.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const show = (l: AuditLine) => out(o.json ? JSON.stringify(l) : renderAuditLine(l));
  if (!Number.isInteger(o.limit) || o.limit < 1 || o.limit > AUDIT.maxLen) throw new ExitError(EXIT.badInput, `--limit: a whole number from 1 to ${AUDIT.maxLen}, not ${o.limit}`);
  let lines = await f.audit({ limit: o.limit });
  lines.forEach(show);
  if (!o.follow) return;
  let after = lines.at(-1)?.id ?? '0-0';
  while (!o.until?.()) {
    lines = await f.audit({ limit: 500, after, waitMs: 20_000 });
    lines.forEach(show);
    after = lines.at(-1)?.id ?? after;
  }
}
