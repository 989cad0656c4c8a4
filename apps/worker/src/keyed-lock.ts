/**
 * One holder per key at a time; the others wait in order. Keys are forgotten once nobody holds or
 * waits for them, so a long-lived worker does not keep one entry per container it ever touched.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async use<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.tails.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys held or waited for now. */
  get size(): number {
    return this.tails.size;
  }
}
