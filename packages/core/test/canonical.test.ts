import { describe, expect, it } from 'vitest';
import { canonicalJson, jobMessage, JobAuth, resultMessage, splitAuth, splitResultAuth } from '../src/index.js';

describe('canonicalJson: one byte string per value', () => {
  it('sorts keys at every depth, whatever order they were written in', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  it('encodes a value and its JSON round trip (as through Redis) alike', () => {
    const v = { keep: 1, gone: undefined, list: [1, undefined, 'x'], when: new Date(0), n: Number.NaN, nested: { u: undefined } };
    expect(canonicalJson(v)).toBe(canonicalJson(JSON.parse(JSON.stringify(v))));
    expect(canonicalJson(v)).toBe('{"keep":1,"list":[1,null,"x"],"n":null,"nested":{},"when":"1970-01-01T00:00:00.000Z"}');
  });

  it('keeps a __proto__ key as a key, and escapes strings as JSON does', () => {
    const v = JSON.parse('{"__proto__":{"x":1},"a":"\\"\\u0000é"}') as unknown;
    expect(canonicalJson(v)).toBe('{"__proto__":{"x":1},"a":"\\"\\u0000é"}');
  });
});

describe('what is signed', () => {
  const base = { queue: 'host-h1', jobId: 'm-1.forward.0.r0', name: 'cleanup', exp: 1000, payload: { fence: { container: 'web', epoch: 3 }, step: 'cleanup' } };

  it('a job message names its purpose, queue, id, name, fence, expiry and payload; each changes it', () => {
    const m = jobMessage(base);
    expect(JSON.parse(m)).toEqual({ purpose: 'ferry/job/v1', queue: 'host-h1', jobId: 'm-1.forward.0.r0', name: 'cleanup', fence: { container: 'web', epoch: 3 }, exp: 1000, payload: base.payload });
    for (const other of [{ queue: 'host-h2' }, { jobId: 'x' }, { name: 'restore' }, { exp: 1001 }, { payload: { ...base.payload, fence: { container: 'web', epoch: 4 } } }]) {
      expect(jobMessage({ ...base, ...other })).not.toBe(m);
    }
    expect(JSON.parse(jobMessage({ ...base, payload: { execId: 'x-1' } })).fence).toBeNull();
  });

  it('a result message is tagged apart from a job message and names its host', () => {
    const r = { migrationId: 'm-1', phase: 'forward' as const, index: 0, run: 0, ok: true, attempts: 1, endedAt: 5 };
    expect(JSON.parse(resultMessage('h1', r))).toEqual({ purpose: 'ferry/step-result/v1', by: 'h1', result: r });
    expect(resultMessage('h2', r)).not.toBe(resultMessage('h1', r));
  });

  it('the signature fields come off the data before it is checked', () => {
    expect(splitAuth({ a: 1, auth: { v: 1 } })).toEqual({ payload: { a: 1 }, auth: { v: 1 } });
    expect(splitAuth({ a: 1 })).toEqual({ payload: { a: 1 }, auth: undefined });
    expect(splitResultAuth({ ok: true, by: 'h1', sig: 's' })).toEqual({ result: { ok: true }, auth: { by: 'h1', sig: 's' } });
    expect(splitResultAuth({ ok: true })).toEqual({ result: { ok: true }, auth: undefined });
    expect(JobAuth.safeParse({ v: 1, exp: 1, sig: 'not base64', extra: 1 }).success).toBe(false);
  });
});
