import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../src/keyed-lock.js';

/** Records when each holder starts and ends, so overlaps show in the order of events. */
function recorder() {
  const events: string[] = [];
  const hold = (name: string, ms: number, fail = false) => async () => {
    events.push(`${name}+`);
    await sleep(ms);
    events.push(`${name}-`);
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  return { events, hold };
}

describe('KeyedLock: steps on one container never overlap on one host', () => {
  it('runs holders of one key one after another, in arrival order', async () => {
    const lock = new KeyedLock();
    const { events, hold } = recorder();
    const r = await Promise.all([lock.use('ct', hold('checkpoint', 60)), lock.use('ct', hold('resume', 5)), lock.use('ct', hold('cleanup', 5))]);
    expect(r).toEqual(['checkpoint', 'resume', 'cleanup']);
    expect(events).toEqual(['checkpoint+', 'checkpoint-', 'resume+', 'resume-', 'cleanup+', 'cleanup-']);
    expect(lock.size).toBe(0);
  });

  it('lets holders of other keys run meanwhile', async () => {
    const lock = new KeyedLock();
    const { events, hold } = recorder();
    await Promise.all([lock.use('a', hold('a', 60)), lock.use('b', hold('b', 5))]);
    expect(events).toEqual(['a+', 'b+', 'b-', 'a-']);
  });

  it('a failing holder lets the next one in, and its error reaches its caller', async () => {
    const lock = new KeyedLock();
    const { events, hold } = recorder();
    const [first, second] = await Promise.allSettled([lock.use('ct', hold('x', 20, true)), lock.use('ct', hold('y', 5))]);
    expect(first).toMatchObject({ status: 'rejected', reason: { message: 'x failed' } });
    expect(second).toMatchObject({ status: 'fulfilled', value: 'y' });
    expect(events).toEqual(['x+', 'x-', 'y+', 'y-']);
    expect(lock.size).toBe(0);
  });
});
