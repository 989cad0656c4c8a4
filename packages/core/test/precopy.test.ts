import { describe, expect, it } from 'vitest';
import { precopyDecision, PrecopyLimits } from '../src/index.js';

const limits = PrecopyLimits.parse({ maxPasses: 4, stopBelowBytes: 1000, minShrink: 0.8 });
const pass = (bytesSent: number) => ({ bytesSent, literalBytes: bytesSent, filesChanged: 1, ms: 1 });

describe('pre-copy stop rule', () => {
  it('always makes a first pass', () => expect(precopyDecision([], limits).again).toBe(true));
  it('stops once a pass sends little', () => expect(precopyDecision([pass(10_000), pass(999)], limits)).toMatchObject({ again: false, reason: expect.stringMatching(/^converged/) }));
  it('goes on while passes shrink', () => expect(precopyDecision([pass(100_000), pass(10_000)], limits).again).toBe(true));
  it('stops when passes stop shrinking', () => expect(precopyDecision([pass(100_000), pass(90_000)], limits)).toMatchObject({ again: false, reason: expect.stringMatching(/^not converging/) }));
  it('stops at the pass limit', () =>
    expect(precopyDecision([pass(1e6), pass(1e5), pass(1e4), pass(5e3)], limits)).toMatchObject({ again: false, reason: 'pass limit 4 reached' }));
});
