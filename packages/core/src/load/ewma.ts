/**
 * An exponentially weighted moving average over irregular samples: each sample weighs
 * 1 - e^(-dt/tau), so the average forgets at the same pace whether samples come every second or
 * every ten (a heartbeat also beats on demand, after each step). The first sample is taken as is.
 */
export function ewma(prev: number | undefined, sample: number, dtMs: number, tauMs: number): number {
  if (prev === undefined || !Number.isFinite(prev)) return sample;
  if (dtMs <= 0) return prev;
  const a = 1 - Math.exp(-dtMs / tauMs);
  return prev + a * (sample - prev);
}
