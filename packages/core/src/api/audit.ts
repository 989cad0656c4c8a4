/**
 * The audit log of ferry's API (`ferry audit`): one entry per request, allowed or not, in a bounded
 * Redis stream (keys.ts `audit`). What the API server writes and `ferry audit` reads: the entry,
 * its wire form (stream fields) and the bounds. No I/O.
 */

export const AUDIT = {
  /** Entries kept (XADD MAXLEN ~: Redis trims whole nodes, so a few more may stay). */
  maxLen: 10_000,
  /** Most characters of an entry's note (why it was refused or failed). */
  noteChars: 300,
  /** Most containers named in one entry. */
  containers: 32,
} as const;

/** How a request ended: done; refused for who asked (401, 403); bad or unknown (4xx); failed (409, 5xx). */
export type AuditOutcome = 'ok' | 'denied' | 'invalid' | 'failed';

export interface AuditEntry {
  /** When the request came (ms). */
  time: number;
  /** The request's id (the `x-request-id` the API answered with). */
  requestId: string;
  /** The token's name, `local-root` on the Unix socket, `anonymous` without a usable token. */
  who: string;
  /** The token's role (admin for local-root); absent when no token was accepted. */
  role?: string;
  /** The token's id, when one was presented (even if refused). */
  tokenId?: string;
  /** `socket` or `tcp` (with the peer's address in `peer`). */
  via: 'socket' | 'tcp';
  peer?: string;
  method: string;
  /** The route's pattern (`/v1/operations/:id`), or the path asked for when no route matched. */
  route: string;
  /** The path asked for, without the query. */
  path: string;
  /** The containers the request touches, as far as they were known. */
  containers: string[];
  status: number;
  outcome: AuditOutcome;
  /** Why it was refused or failed (the error's code and message, cut). */
  note?: string;
  /** How long it took (ms). */
  ms: number;
}

/** An entry as read back, with its stream id (the order requests ended in). */
export type AuditLine = AuditEntry & { id: string };

export function auditOutcome(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  if (status === 401 || status === 403) return 'denied';
  if (status === 409 || status >= 500) return 'failed';
  return 'invalid';
}

/** Stream fields of an entry (strings; containers comma-separated, names have no commas). */
export function encodeAuditEntry(e: AuditEntry): string[] {
  const f: string[] = [
    'time', String(e.time),
    'req', e.requestId,
    'who', e.who,
    'via', e.via,
    'method', e.method,
    'route', e.route,
    'path', e.path,
    'status', String(e.status),
    'outcome', e.outcome,
    'ms', String(e.ms),
  ];
  if (e.role) f.push('role', e.role);
  if (e.tokenId) f.push('token', e.tokenId);
  if (e.peer) f.push('peer', e.peer);
  if (e.containers.length) f.push('containers', e.containers.slice(0, AUDIT.containers).join(','));
  if (e.note) f.push('note', e.note.length > AUDIT.noteChars ? `${e.note.slice(0, AUDIT.noteChars - 1)}…` : e.note);
  return f;
}

/** An entry from its stream fields, or null when it is not one this version can read. */
export function decodeAuditEntry(fields: readonly string[]): AuditEntry | null {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) m.set(fields[i]!, fields[i + 1]!);
  const time = Number(m.get('time'));
  const status = Number(m.get('status'));
  const via = m.get('via');
  const outcome = m.get('outcome');
  if (!Number.isFinite(time) || !Number.isInteger(status) || (via !== 'socket' && via !== 'tcp')) return null;
  if (outcome !== 'ok' && outcome !== 'denied' && outcome !== 'invalid' && outcome !== 'failed') return null;
  const opt = (k: string) => m.get(k) || undefined;
  const role = opt('role');
  const tokenId = opt('token');
  const peer = opt('peer');
  const note = opt('note');
  return {
    time,
    requestId: m.get('req') ?? '',
    who: m.get('who') ?? '?',
    ...(role ? { role } : {}),
    ...(tokenId ? { tokenId } : {}),
    via,
    ...(peer ? { peer } : {}),
    method: m.get('method') ?? '?',
    route: m.get('route') ?? '?',
    path: m.get('path') ?? '?',
    containers: m.get('containers')?.split(',').filter(Boolean) ?? [],
    status,
    outcome,
    ...(note ? { note } : {}),
    ms: Number(m.get('ms')) || 0,
  };
}
