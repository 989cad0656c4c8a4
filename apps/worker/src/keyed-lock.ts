/**
 * One holder per key at a time, without waiting: a caller that finds its key held does something
 * else (a step job goes back to the queue for a moment rather than occupy one of the worker's slots).
 */
export class KeyedLock {
  private readonly held = new Set<string>();

  /** Takes `key` and returns its release, or null if it is held. */
  tryAcquire(key: string): (() => void) | null {
    if (this.held.has(key)) return null;
    this.held.add(key);
    let released = false;
    return () => {
      if (!released) this.held.delete(key);
      released = true;
    };
  }

  /** Keys held now. */
  get size(): number {
    return this.held.size;
  }
}
