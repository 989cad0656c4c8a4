import { describe, expect, it } from 'vitest';
import { stepInput, transition, type OperationRecord } from '../src/index.js';
import { record } from './fixtures.js';

describe('step inputs', () => {
  it('are built from the request, the hosts and earlier outputs', () => {
    let r: OperationRecord = transition(record(), { type: 'start' }, 1).record;
    expect(stepInput(r, 'forward', 0)).toMatchObject({ role: 'source', container: 'web', epoch: 1, peer: { name: 'h2' } });
    const out = { role: 'source', wasRunning: true, ip: '198.18.0.200', mac: '02:fe:00:00:00:01', sizeBytes: 1234, bindMounts: [] };
    r = transition(r, { type: 'step-result', phase: 'forward', index: 0, run: 0, ok: true, output: out, attempts: 1, endedAt: 2 }, 2).record;
    expect(stepInput(r, 'forward', 1)).toMatchObject({ role: 'target', peer: { name: 'h1' }, expect: { ip: '198.18.0.200', sizeBytes: 1234 } });
    expect(stepInput(r, 'forward', 5)).toMatchObject({ ip: '198.18.0.200', count: 3 });
    expect(stepInput(r, 'forward', 3)).toMatchObject({ mode: 'restart', wasRunning: true, verify: 'changed' });
  });
});
