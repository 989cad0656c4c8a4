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
    expect(stepInput(r, 'forward', 3)).toMatchObject({ mode: 'restart', wasRunning: true, verify: 'full' });
  });

  it('restore may patch the index of its copy only when the checkpoint says the final pass ran once', () => {
    let r: OperationRecord = transition(record({ verify: 'changed' }), { type: 'start' }, 1).record;
    const outputs = [{ role: 'source', wasRunning: true }, {}, { passes: [] }, { indexed: true, ms: 1 }];
    for (const [index, output] of outputs.entries()) r = transition(r, { type: 'step-result', phase: 'forward', index, run: 0, ok: true, output, attempts: 1, endedAt: 2 }, 2).record;
    expect(r.steps[3]!.name).toBe('index-copy');
    const cp = { method: 'stop', finalPass: { bytesSent: 0, literalBytes: 0, filesChanged: 0, ms: 1 }, manifestDigest: 'd', verify: 'changed' };
    const at4 = (output: object) => stepInput(transition(r, { type: 'step-result', phase: 'forward', index: 4, run: 0, ok: true, output, attempts: 1, endedAt: 2 }, 2).record, 'forward', 5);
    expect(at4({ ...cp, metaPatch: true })).toMatchObject({ verify: 'changed', expectManifestDigest: 'd', metaPatch: true });
    expect(at4(cp)).not.toHaveProperty('metaPatch');
  });
});
