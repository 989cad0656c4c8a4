import type { PrecopyLimits } from './request.js';
import type { TransferStats } from './steps/common.js';

export interface PrecopyDecision {
  again: boolean;
  reason: string;
}

/**
 * Whether to run another pre-copy pass while the container keeps running. Stop when the last
 * pass sent little (what remains fits the freeze window), when passes stop shrinking (the
 * container dirties data as fast as we copy it), or at the pass limit.
 */
export function precopyDecision(passes: readonly TransferStats[], limits: PrecopyLimits): PrecopyDecision {
  const last = passes.at(-1);
  if (!last) return { again: true, reason: 'no pass yet' };
  if (last.bytesSent < limits.stopBelowBytes) {
    return { again: false, reason: `converged: last pass sent ${last.bytesSent} B < ${limits.stopBelowBytes} B` };
  }
  if (passes.length >= limits.maxPasses) return { again: false, reason: `pass limit ${limits.maxPasses} reached` };
  const prev = passes.at(-2);
  if (prev && last.bytesSent >= prev.bytesSent * limits.minShrink) {
    return {
      again: false,
      reason: `not converging: pass ${passes.length} sent ${last.bytesSent} B, previous ${prev.bytesSent} B`,
    };
  }
  return { again: true, reason: `pass ${passes.length} sent ${last.bytesSent} B` };
}
