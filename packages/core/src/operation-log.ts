/**
 * One log for one operation (`ferry logs <id>`): the log lines of its steps, from every host that
 * ran one, and the scheduler's own lines about it, as entries of one Redis stream per operation
 * (keys.ts: `operationLog(id)`). What the writers (worker, scheduler) and the reader (the CLI)
 * agree on: the entry, its wire form, and the bounds. No I/O.
 */

/** Bounds of an operation's log: a runaway step cannot grow Redis or the stream without limit. */
export const OPERATION_LOG = {
  /** Entries kept per operation (XADD MAXLEN ~: Redis trims whole nodes, so a few more may stay). */
  maxLen: 1000,
  /** Most bytes of one entry's message and detail together; longer ones are cut, marked with '…'. */
  lineBytes: 1024,
  /** Lines per second one process writes for one operation, sustained; beyond, lines are dropped (counted). */
  perSecond: 50,
  /** Lines one process may write for one operation at once before the rate applies. */
  burst: 200,
} as const;

export type OperationLogLevel = 'info' | 'warn' | 'error' | 'fatal';

/** One line of an operation's log. */
export interface OperationLogEntry {
  /** When it was logged (ms, the writer's clock). */
  time: number;
  /** The host whose worker logged it, or `scheduler`. */
  host: string;
  /** The step it is about (a catalogue name), if any. */
  step?: string;
  phase?: string;
  level: OperationLogLevel;
  msg: string;
  /** The line's other fields, as `key=value` pairs (errors as `CODE: message`). */
  detail?: string;
}

/** pino's numeric levels, info and above: the ones an operation's log keeps. */
const LEVELS: Record<number, OperationLogLevel> = { 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Fields that say who logged a line, and pino's own: not repeated in the detail. */
const IDENTITY = new Set(['migrationId', 'step', 'host', 'phase', 'index', 'run', 'kind', 'component', 'name', 'pid', 'hostname', 'time', 'level', 'msg']);

/**
 * The entry for one pino line (its parsed JSON), or null for a line about no operation or below
 * info. `source` is the logging process when it is not a host's worker (`scheduler`): then the
 * line's own `host` (the step's host) stays in the detail.
 */
export function operationLogEntry(line: Record<string, unknown>, source?: string): { id: string; entry: OperationLogEntry } | null {
  const id = line.migrationId;
  const level = LEVELS[Number(line.level)];
  if (typeof id !== 'string' || id === '' || !level) return null;
  const host = source ?? (typeof line.host === 'string' ? line.host : '?');
  const parts: string[] = [];
  for (const [k, v] of Object.entries(line)) {
    if (v === undefined || (IDENTITY.has(k) && !(k === 'host' && source))) continue;
    if (k === 'attempt' && v === 1) continue; // every step's first run: noise
    parts.push(`${k}=${detailValue(v)}`);
  }
  const msg = cut(typeof line.msg === 'string' ? line.msg : '', OPERATION_LOG.lineBytes / 2);
  const detail = cut(parts.join(' '), OPERATION_LOG.lineBytes - Buffer.byteLength(msg));
  return {
    id,
    entry: {
      time: typeof line.time === 'number' ? line.time : Date.now(),
      host,
      ...(typeof line.step === 'string' ? { step: line.step } : {}),
      ...(typeof line.phase === 'string' ? { phase: line.phase } : {}),
      level,
      msg,
      ...(detail ? { detail } : {}),
    },
  };
}

/** A detail value: errors (ferry's ErrorData, pino's serialized `err`) as their code and message. */
function detailValue(v: unknown): string {
  if (v && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') {
    const e = v as { code?: unknown; type?: unknown; message: string };
    const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : '';
    return JSON.stringify(code ? `${code}: ${e.message}` : e.message);
  }
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** `s` cut to at most `bytes` UTF-8 bytes, with '…' where it was cut. */
export function cut(s: string, bytes: number): string {
  if (Buffer.byteLength(s) <= bytes) return s;
  const keep = Math.max(0, bytes - 3); // '…' is 3 bytes
  // A cut inside a multi-byte character decodes to U+FFFD: drop it.
  return `${Buffer.from(s).subarray(0, keep).toString('utf8').replace(/\uFFFD+$/, '')}…`;
}

/** The entry's stream fields, in order: `time host level msg`, then what it has of `step phase detail`. */
export function encodeOperationLogEntry(e: OperationLogEntry): string[] {
  const out = ['time', String(e.time), 'host', e.host, 'level', e.level, 'msg', e.msg];
  for (const k of ['step', 'phase', 'detail'] as const) if (e[k] !== undefined) out.push(k, e[k]);
  return out;
}

/** An entry from its fields as Redis returns them; null for one this version cannot read. */
export function decodeOperationLogEntry(fields: readonly string[]): OperationLogEntry | null {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const time = Number(f.get('time'));
  const level = f.get('level') as OperationLogLevel | undefined;
  const host = f.get('host');
  if (!Number.isFinite(time) || !host || !level || !Object.values(LEVELS).includes(level)) return null;
  const opt = (k: 'step' | 'phase' | 'detail') => (f.has(k) ? { [k]: f.get(k)! } : {});
  return { time, host, level, msg: f.get('msg') ?? '', ...opt('step'), ...opt('phase'), ...opt('detail') };
}
