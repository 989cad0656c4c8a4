import type { ExecEntry } from './toolbox.js';

/**
 * The exec output stream's wire form: each ExecEntry is one stream entry whose fields are
 * `type` and then the entry's own, in this order (`data` last: it is the bulk). The worker writes
 * with encodeExecEntry, the CLI (and tests) read with decodeExecEntry; nothing else spells fields.
 */
export function encodeExecEntry(e: ExecEntry): (string | Buffer)[] {
  switch (e.type) {
    case 'started':
      return ['type', 'started', 'pid', String(e.pid)];
    case 'stdout':
    case 'stderr':
      return ['type', e.type, 'data', e.data];
    case 'exit':
      return ['type', 'exit', 'code', String(e.code), ...(e.signal ? ['signal', e.signal] : [])];
    case 'error':
      return ['type', 'error', 'code', e.code, 'message', e.message, 'exit', String(e.exit)];
  }
}

/** One entry from its fields as Redis returns them; null for an entry this version does not know. */
export function decodeExecEntry(fields: readonly (Buffer | string)[]): ExecEntry | null {
  const f = new Map<string, Buffer | string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!.toString(), fields[i + 1]!);
  const text = (name: string) => f.get(name)?.toString();
  const num = (name: string) => {
    const n = Number(text(name));
    return Number.isInteger(n) ? n : undefined;
  };
  switch (text('type')) {
    case 'started': {
      const pid = num('pid');
      return pid === undefined ? null : { type: 'started', pid };
    }
    case 'stdout':
    case 'stderr': {
      const d = f.get('data');
      if (d === undefined) return null;
      return { type: text('type') as 'stdout' | 'stderr', data: typeof d === 'string' ? Buffer.from(d) : d };
    }
    case 'exit': {
      const code = num('code');
      const signal = text('signal');
      return code === undefined ? null : { type: 'exit', code, ...(signal ? { signal } : {}) };
    }
    case 'error': {
      const exit = num('exit');
      return { type: 'error', code: text('code') ?? 'UNKNOWN', message: text('message') ?? 'exec failed', exit: exit ?? 1 };
    }
    default:
      return null;
  }
}
