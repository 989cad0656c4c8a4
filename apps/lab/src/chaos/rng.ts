/** A small seedable PRNG (mulberry32): the same seed gives the same fault moments. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  /** Integer in [min, max]. */
  int(min: number, max: number): number;
  /** Picks by weight. */
  pick<T>(items: readonly (readonly [T, number])[]): T;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r: Rng = {
    next,
    between: (min, max) => min + (max - min) * next(),
    int: (min, max) => Math.floor(min + (max - min + 1) * next()),
    pick: (items) => {
      const total = items.reduce((s, [, w]) => s + w, 0);
      let x = next() * total;
      for (const [v, w] of items) {
        if ((x -= w) < 0) return v;
      }
      return items[items.length - 1]![0];
    },
  };
  return r;
}

/** A trial's own stream: independent of which other faults or trials run. */
export function trialRng(seed: number, fault: number, trial: number): Rng {
  return rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(fault + 1, 0x85ebca6b) ^ Math.imul(trial + 1, 0xc2b2ae35)) >>> 0);
}
