import { describe, expect, it } from 'vitest';
import { AUDIT, auditOutcome, ContainerScope, decodeAuditEntry, encodeAuditEntry, outOfScope, roleAllows, scopeMatcher, tokenIdOf, tokenMessage, type AuditEntry } from '@ferry/core';

describe('API roles, scopes, tokens and audit entries (pure)', () => {
  it('each role may do what the ones before it may', () => {
    expect(roleAllows('viewer', 'viewer')).toBe(true);
    expect(roleAllows('viewer', 'operator')).toBe(false);
    expect(roleAllows('operator', 'viewer')).toBe(true);
    expect(roleAllows('operator', 'admin')).toBe(false);
    expect(roleAllows('admin', 'operator')).toBe(true);
  });

  it('a scope covers the containers one of its patterns matches whole; no scope covers all', () => {
    expect(outOfScope(['web-*'], ['web-1', 'db-1', 'web', 'xweb-1'])).toEqual(['db-1', 'web', 'xweb-1']);
    expect(outOfScope(['web-?', 'db-[12]'], ['web-1', 'web-10', 'db-2', 'db-3'])).toEqual(['web-10', 'db-3']);
    expect(outOfScope(undefined, ['anything'])).toEqual([]);
    expect(scopeMatcher(['*'])('x')).toBe(true);
    // Linear time whatever the pattern (glob.ts): a pathological one answers at once.
    const t0 = Date.now();
    expect(scopeMatcher(['*a*a*a*a*a*a*a*a*b'])('a'.repeat(64))).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
    const bad = ContainerScope.safeParse(['', 'a b', 'x'.repeat(65)]);
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['0', '1', '2']);
  });

  it('a token string names its id; anything else is no token', () => {
    expect(tokenIdOf(`ferry_abcdefgh12_${'A'.repeat(43)}`)).toBe('abcdefgh12');
    for (const t of ['', 'ferry_abc_x', `ferry_ABCDEFGH12_${'A'.repeat(43)}`, `ferry_abcdefgh12_${'A'.repeat(42)}`, `xferry_abcdefgh12_${'A'.repeat(43)}`]) expect(tokenIdOf(t), t).toBeNull();
  });

  it("a token record's signed message covers its role, scope and hash (a change to any makes another message)", () => {
    const r = { v: 1 as const, id: 'abcdefgh12', name: 'ci', role: 'operator' as const, containers: ['web-*'], createdAt: 1, hash: 'a'.repeat(64) };
    const m = tokenMessage(r);
    expect(tokenMessage({ ...r, role: 'admin' })).not.toBe(m);
    expect(tokenMessage({ ...r, containers: ['*'] })).not.toBe(m);
    const { containers: _, ...unscoped } = r;
    expect(tokenMessage(unscoped)).not.toBe(m);
    expect(tokenMessage({ ...r, hash: 'b'.repeat(64) })).not.toBe(m);
    expect(m).toContain('"purpose":"ferry/api-token/v1"');
  });

  it('an audit entry crosses the stream as fields and back; a long note is cut; outcomes by status', () => {
    const e: AuditEntry = { time: 5, requestId: 'q-1', who: 'ci', role: 'operator', tokenId: 'abcdefgh12', via: 'tcp', peer: '127.0.0.1', method: 'POST', route: '/v1/migrations', path: '/v1/migrations', containers: ['web-1'], status: 403, outcome: 'denied', note: 'x'.repeat(1000), ms: 3 };
    const back = decodeAuditEntry(encodeAuditEntry(e))!;
    expect({ ...back, note: undefined }).toEqual({ ...e, note: undefined });
    expect(back.note!.length).toBe(AUDIT.noteChars);
    expect(decodeAuditEntry(['time', 'x'])).toBeNull();
    expect([200, 400, 401, 403, 404, 409, 500].map(auditOutcome)).toEqual(['ok', 'invalid', 'denied', 'denied', 'invalid', 'failed', 'failed']);
  });
});
