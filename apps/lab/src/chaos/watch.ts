import { fields, isTerminal, type StoredRecord } from '@ferry/core';
import { connect, OperationStore, type ProgressEntry, type RedisClient } from '@ferry/infra';

/**
 * Follows one migration's record and progress straight from Redis, every ~100 ms, to time the
 * faults (the CLI takes a few hundred ms per call: too coarse to land a fault inside a step that
 * lasts half a second). Every read is bounded, so a Redis that is down (fault 4) only makes the
 * view stale. The outcome itself is read with the real `ferry status --json`.
 */

export interface View {
  rec: StoredRecord | null;
  progress: Record<string, ProgressEntry>;
  /** When this view was read. */
  at: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p.catch(() => undefined), sleep(ms).then(() => undefined)]);
}

/** "forward/rsync-transfer@h1:running" — where the migration is. */
export function stepNow(rec: StoredRecord | null): string {
  if (!rec) return 'no record';
  if (rec.state === 'rejected' || isTerminal(rec.state) || rec.state === 'paused' || rec.state === 'pending') return rec.state;
  const list = rec.phase === 'forward' ? rec.steps : rec.rollback;
  const s = list[rec.cursor];
  return s ? `${rec.phase}/${s.name}@${s.host}:${s.state}` : `${rec.phase}/#${rec.cursor}`;
}

export function ended(rec: StoredRecord | null | undefined): boolean {
  return !!rec && (isTerminal(rec.state) || rec.state === 'paused');
}

export class RecordWatcher {
  private readonly redis: RedisClient;
  private readonly store: OperationStore;
  view: View = { rec: null, progress: {}, at: 0 };
  /** Each change of where the migration is, with its time. */
  readonly timeline: { t: number; where: string }[] = [];
  private stopped = false;
  private loop?: Promise<void>;
  private id?: string;

  constructor(url: string, prefix: string) {
    this.redis = connect(url);
    this.redis.on('error', () => undefined); // a Redis restart is one of the faults
    this.store = new OperationStore(this.redis, prefix);
  }

  follow(id: string, everyMs = 100, maxMs = 900_000): this {
    this.id = id;
    const end = Date.now() + maxMs;
    this.loop = (async () => {
      while (!this.stopped && Date.now() < end) {
        const t = Date.now();
        const [rec, progress] = await Promise.all([bounded(this.store.get(id), 1000), bounded(this.store.progress(id), 1000)]);
        if (rec !== undefined) {
          this.view = { rec, progress: progress ?? this.view.progress, at: Date.now() };
          const where = stepNow(rec);
          if (this.timeline.at(-1)?.where !== where) this.timeline.push({ t, where });
        }
        const wait = everyMs - (Date.now() - t);
        if (wait > 0) await sleep(wait);
      }
    })();
    return this;
  }

  /** Waits until `pred` holds for the current view, the migration ended, time ran out, or abort. */
  async until(pred: (v: View) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && !signal?.aborted) {
      if (pred(this.view)) return true;
      if (ended(this.view.rec)) return false;
      await sleep(20);
    }
    return pred(this.view);
  }

  /** The forward step `name`'s state in the current view. */
  stepState(name: string): string | undefined {
    const rec = this.view.rec;
    return rec && rec.state !== 'rejected' ? rec.steps.find((s) => s.name === name)?.state : undefined;
  }

  /** Percent of the current rsync-transfer pass (0 when unknown). */
  transferPercent(): number {
    const rec = this.view.rec;
    if (!rec || rec.state === 'rejected') return 0;
    const i = rec.steps.findIndex((s) => s.name === 'rsync-transfer');
    const p = this.view.progress[fields.progress('forward', i)];
    return typeof p?.percent === 'number' ? p.percent : 0;
  }

  /** A direct read, bounded. */
  async read(): Promise<StoredRecord | null | undefined> {
    return this.id ? bounded(this.store.get(this.id), 2000) : undefined;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.redis.disconnect();
  }
}
