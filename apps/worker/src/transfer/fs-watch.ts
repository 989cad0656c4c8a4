import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startHelper, type Helper } from '@ferry/infra';

/**
 * What changed below a container dir, from the kernel's fanotify events (see native/fswatch.c),
 * without walking the tree. A flush answers with what changed since the previous one:
 * `E` a directory whose entries changed, `F` an object whose content or metadata changed, `T` a
 * directory that appeared (its whole tree is new there). A `doubt` means: walk instead.
 */
export interface WatchChange {
  kind: 'E' | 'F' | 'T';
  /** Relative to the watched root (`.` for the root), a latin1 string of the name's bytes. */
  path: string;
}

export interface WatchFlush {
  changes: WatchChange[];
  /** Why this list is not to be trusted (overflow, the helper died, ...). */
  doubt?: string;
}

/** The helper binary: FERRY_FSWATCH, or the one the setup script built beside the worker. */
export function fswatchBinary(): string | null {
  const p = process.env.FERRY_FSWATCH ?? fileURLToPath(new URL('../../native/ferry-fswatch', import.meta.url));
  return existsSync(p) ? p : null;
}

/**
 * A watcher nobody asked for this long ends: a migration that rolled back before its final pass
 * never stops its own (the next pass of the same tree would walk instead: sound).
 */
const IDLE_MS = 15 * 60_000;

export class FsWatch {
  private buf: Buffer = Buffer.alloc(0);
  private idle: NodeJS.Timeout;
  private records: string[] = [];
  private waiting: Array<(f: WatchFlush) => void> = [];
  private ended: string | undefined;

  private constructor(
    private readonly helper: Helper,
    /** Seconds: changes from (about) this moment on are seen. */
    readonly startedAt: number,
  ) {
    helper.onStdout((chunk) => this.onData(chunk));
    this.idle = setTimeout(() => this.stop(), IDLE_MS).unref();
    void helper.exited.then((code) => {
      this.ended = `the change watcher exited (${code}): ${helper.stderrTail().trim().split('\n').at(-1) ?? ''}`;
      for (const w of this.waiting.splice(0)) w({ changes: [], doubt: this.ended });
    });
  }

  /** Starts watching `root`; null (with the reason) where fanotify or the helper is not available. */
  static async start(root: string): Promise<FsWatch | { unavailable: string }> {
    const bin = fswatchBinary();
    if (!bin) return { unavailable: 'no ferry-fswatch binary (the setup script builds it with a C compiler)' };
    const startedAt = Date.now() / 1000;
    const helper = startHelper(bin, [root]);
    const ready = await new Promise<boolean>((resolve) => {
      let text = '';
      helper.onStdout((c) => {
        text += c.toString('latin1');
        if (text.startsWith('ready\n')) resolve(true);
      });
      void helper.exited.then(() => resolve(false));
      setTimeout(() => resolve(false), 5000).unref();
    });
    if (!ready) {
      helper.stop();
      return { unavailable: `ferry-fswatch did not start: ${helper.stderrTail().trim() || 'no answer within 5 s'}` };
    }
    return new FsWatch(helper, startedAt);
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** Everything seen since the previous flush (the helper forgets it once sent). */
  flush(timeoutMs = 30_000): Promise<WatchFlush> {
    if (this.ended) return Promise.resolve({ changes: [], doubt: this.ended });
    this.idle.refresh();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stop();
        resolve({ changes: [], doubt: `the change watcher did not answer within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiting.push((f) => {
        clearTimeout(timer);
        resolve(f);
      });
      this.helper.write('flush\n');
    });
  }

  stop(): void {
    clearTimeout(this.idle);
    this.helper.stop();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const nul = this.buf.indexOf(0);
      if (nul < 0) return;
      const rec = this.buf.subarray(0, nul).toString('latin1');
      this.buf = this.buf.subarray(nul + 1);
      if (rec.startsWith('ready\n')) {
        // The start banner shares the stream; what follows it is records.
        const rest = rec.slice('ready\n'.length);
        if (rest) this.records.push(rest);
        continue;
      }
      if (rec !== '.') {
        this.records.push(rec);
        continue;
      }
      const records = this.records.splice(0);
      const doubt = records.find((r) => r.startsWith('!'));
      const changes = records.filter((r) => !r.startsWith('!')).map((r) => ({ kind: r[0] as WatchChange['kind'], path: r.slice(1) }));
      this.waiting.shift()?.({ changes, ...(doubt ? { doubt: doubt.slice(1) } : {}) });
    }
  }
}
