import type { Logger } from 'pino';
import { diskUsage } from '../transfer/disk-usage.js';

/**
 * Root filesystem sizes (what a move copies), measured in the background with `du`: one container at
 * a time, each at most every `refreshMs`, so the cost stays bounded whatever the number of containers
 * or files. `get` never waits: it answers the last measurement (undefined before the first) and
 * schedules what is due.
 */
export class DiskSizes {
  private readonly sizes = new Map<string, { bytes?: number; at: number }>();
  private readonly wanted = new Map<string, string>();
  private busy = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly log: Logger,
    private readonly refreshMs = Number(process.env.FERRY_DISK_REFRESH_MS ?? 5 * 60_000),
    private readonly measure: (dir: string, signal: AbortSignal) => Promise<number> = diskUsage,
  ) {}

  /** The last size of each container's rootfs (`dirs`: name → rootfs dir); forgets the others. */
  get(dirs: ReadonlyMap<string, string>, now = Date.now()): Map<string, number> {
    for (const name of [...this.sizes.keys()]) if (!dirs.has(name)) this.sizes.delete(name);
    this.wanted.clear();
    for (const [name, dir] of dirs) {
      const s = this.sizes.get(name);
      if (!s || now - s.at >= this.refreshMs) this.wanted.set(name, dir);
    }
    void this.drain();
    const out = new Map<string, number>();
    for (const [n, s] of this.sizes) if (s.bytes !== undefined) out.set(n, s.bytes);
    return out;
  }

  /** Measures what is due, one at a time, the never-measured first. */
  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (!this.abort.signal.aborted) {
        const next = [...this.wanted].sort(([a], [b]) => Number(this.sizes.has(a)) - Number(this.sizes.has(b)))[0];
        if (!next) break;
        const [name, dir] = next;
        this.wanted.delete(name);
        try {
          const bytes = await this.measure(dir, this.abort.signal);
          this.sizes.set(name, { bytes, at: Date.now() });
        } catch (err) {
          // Gone meanwhile (moved, destroyed), or du failed: tried again at the next refresh.
          const last = this.sizes.get(name)?.bytes;
          this.sizes.set(name, { ...(last !== undefined ? { bytes: last } : {}), at: Date.now() });
          this.log.debug({ err, container: name }, 'rootfs size not measured');
        }
      }
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    this.abort.abort();
  }
}
