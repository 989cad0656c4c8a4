import { mkdtempSync } from 'node:fs';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepResultData } from '@ferry/core';
import {
  HostKeyDir,
  JobSigner,
  loadOrCreatePrivateKey,
  newSigningKey,
  publicKeyOf,
  readPublicKeyFile,
  ReplayGuard,
  signResult,
  trustPaths,
  verifyJob,
  verifyResult,
  type HostKeySource,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-signing-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'accepted';
};

describe('control-plane signatures on jobs (Ed25519)', () => {
  const key = newSigningKey();
  const pub = publicKeyOf(key);
  const now = 1_000_000;
  const signer = new JobSigner(key, () => now);
  const payload = { migrationId: 'm-aaaaaa01', step: 'cleanup', input: { container: 'web' }, fence: { container: 'web', epoch: 2 } };
  const data = signer.sign('host-h1', 'j1', 'cleanup', payload, 60_000);
  const job = { queue: 'host-h1', jobId: 'j1', name: 'cleanup', data };

  it('verifies as signed, also after a JSON round trip (Redis), and gives back the payload', () => {
    expect(verifyJob(pub, job, now).payload).toEqual(payload);
    expect(verifyJob(pub, { ...job, data: JSON.parse(JSON.stringify(data)) as unknown }, now).payload).toEqual(payload);
  });

  it('refuses the unsigned, the malformed, another key, another id, queue or name, a changed payload or fence, and the expired', () => {
    expect(code(() => verifyJob(pub, { ...job, data: payload }, now))).toBe('UNSIGNED_JOB');
    expect(code(() => verifyJob(pub, { ...job, data: { ...payload, auth: { v: 1, exp: now + 1, sig: 'x' } } }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(publicKeyOf(newSigningKey()), job, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, jobId: 'j2' }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, jobId: undefined }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, queue: 'host-h2' }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, name: 'restore' }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, data: { ...data, input: { container: 'db' } } }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, data: { ...data, fence: { container: 'web', epoch: 3 } } }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, { ...job, data: { ...data, auth: { ...data.auth, exp: now + 10 * 60_000 } } }, now))).toBe('BAD_JOB_SIGNATURE');
    expect(code(() => verifyJob(pub, job, now + 60_000))).toBe('JOB_EXPIRED');
  });
});

describe('host signatures on step results', () => {
  const h1 = newSigningKey();
  const keys: HostKeySource = { where: 'test', get: async (h) => (h === 'h1' ? publicKeyOf(h1) : h === 'h2' ? publicKeyOf(newSigningKey()) : null) };
  const result: StepResultData = { migrationId: 'm-aaaaaa01', phase: 'forward', index: 2, run: 0, ok: true, output: { bytes: 1 }, attempts: 1, endedAt: 5 };

  it("accepts a result signed by the step's planned host, without its signature fields", async () => {
    expect(await verifyResult(keys, 'h1', JSON.parse(JSON.stringify(signResult(h1, 'h1', result))))).toEqual(result);
  });

  it('refuses the unsigned, another host, a key not trusted for it, a changed result, a host with no key', async () => {
    const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { code?: string }) => e.code);
    expect(await refused(verifyResult(keys, 'h1', result))).toBe('UNSIGNED_RESULT');
    expect(await refused(verifyResult(keys, 'h1', signResult(h1, 'h2', result)))).toBe('RESULT_NOT_FROM_STEP_HOST');
    expect(await refused(verifyResult(keys, 'h1', signResult(newSigningKey(), 'h1', result)))).toBe('BAD_RESULT_SIGNATURE');
    expect(await refused(verifyResult(keys, 'h1', { ...signResult(h1, 'h1', result), ok: false }))).toBe('BAD_RESULT_SIGNATURE');
    expect(await refused(verifyResult(keys, 'h3', signResult(h1, 'h3', result)))).toBe('NO_HOST_KEY');
  });
});

describe('key files', () => {
  it('makes a private key 0600 on first use (its public half 0644 beside it) and reads the same one after', async () => {
    const path = join(dir, 'keys', 'control.key');
    const pubPath = join(dir, 'keys', 'control.pub');
    const first = await loadOrCreatePrivateKey(path, { publicPath: pubPath });
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(pubPath)).mode & 0o777).toBe(0o644);
    const again = await loadOrCreatePrivateKey(path, { publicPath: pubPath });
    expect(again.created).toBe(false);
    expect(publicKeyOf(again.key).export({ format: 'jwk' })).toEqual(publicKeyOf(first.key).export({ format: 'jwk' }));
    expect((await readPublicKeyFile(pubPath))!.export({ format: 'jwk' })).toEqual(publicKeyOf(first.key).export({ format: 'jwk' }));
  });

  it('several processes making the key at once end with one key', async () => {
    const path = join(dir, 'race', 'control.key');
    const made = await Promise.all(Array.from({ length: 8 }, () => loadOrCreatePrivateKey(path)));
    expect(made.filter((m) => m.created)).toHaveLength(1);
    const jwk = JSON.stringify(publicKeyOf(made[0]!.key).export({ format: 'jwk' }));
    expect(made.every((m) => JSON.stringify(publicKeyOf(m.key).export({ format: 'jwk' })) === jwk)).toBe(true);
  });

  it('refuses a private key others may read, and a file that is not a key', async () => {
    const path = join(dir, 'loose.key');
    await loadOrCreatePrivateKey(path);
    await chmod(path, 0o644);
    await expect(loadOrCreatePrivateKey(path)).rejects.toMatchObject({ code: 'KEY_FILE_INSECURE' });
    await writeFile(join(dir, 'junk.pub'), 'not a key');
    await expect(readPublicKeyFile(join(dir, 'junk.pub'))).rejects.toMatchObject({ code: 'KEY_FILE_INVALID' });
  });

  it('a host key directory: a worker publishes <host>.pub, the scheduler reads it (a bad host name is no key)', async () => {
    const hosts = new HostKeyDir(join(dir, 'hosts'));
    const k = newSigningKey();
    expect(await hosts.publish('h1', publicKeyOf(k))).toBe('written');
    expect(await hosts.publish('h1', publicKeyOf(k))).toBe('unchanged');
    expect((await hosts.get('h1'))!.export({ format: 'jwk' })).toEqual(publicKeyOf(k).export({ format: 'jwk' }));
    expect(await hosts.get('h2')).toBeNull();
    expect(await hosts.get('../keys/control')).toBeNull();
    expect(await hosts.publish('h1', publicKeyOf(newSigningKey()))).toBe('replaced');
    expect(await readFile(join(dir, 'hosts', 'h1.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
  });

  it('default paths: one keys dir under the state dir, each overridable', () => {
    expect(trustPaths({ FERRY_STATE_DIR: '/s' })).toEqual({ controlKey: '/s/keys/control.key', controlPub: '/s/keys/control.pub', hostKeys: '/s/keys/hosts' });
    expect(trustPaths({ FERRY_STATE_DIR: '/s', FERRY_CONTROL_KEY: '/etc/ferry/cp.key' }).controlPub).toBe('/etc/ferry/cp.pub');
    expect(trustPaths({ FERRY_STATE_DIR: '/s', FERRY_CONTROL_PUB: '/p.pub', FERRY_HOST_KEYS: '/h' })).toMatchObject({ controlPub: '/p.pub', hostKeys: '/h' });
  });
});

describe('ReplayGuard: a local record of finished jobs', () => {
  it('remembers a job until its expiry, across restarts of the process', async () => {
    let now = 1000;
    const file = join(dir, 'seen', 'seen-jobs');
    const g = await ReplayGuard.open(file, () => now);
    expect(await g.has('sig-a')).toBe(false);
    await g.record('sig-a', 5000);
    expect(await g.claim('sig-b', 2000)).toBe(true);
    expect(await g.claim('sig-b', 2000)).toBe(false);
    const again = await ReplayGuard.open(file, () => now);
    expect(await again.has('sig-a')).toBe(true);
    expect(await again.has('sig-b')).toBe(true);
    now = 3000; // sig-b expired: its job would be refused as expired anyway
    const later = await ReplayGuard.open(file, () => now);
    expect(await later.has('sig-b')).toBe(false);
    expect(later.size).toBe(1);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("keeps a job's outcome with it, across restarts and compaction, until the job's expiry", async () => {
    let now = 1000;
    const file = join(dir, 'outcomes', 'seen-jobs');
    const g = await ReplayGuard.open(file, () => now);
    await g.record('sig-a', 5000, { ok: true, output: { bytes: 1 } });
    await g.record('sig-b', 5000);
    expect(await g.outcome('sig-a')).toEqual({ ok: true, output: { bytes: 1 } });
    expect(await g.outcome('sig-b')).toBeUndefined();
    expect(await g.outcome('sig-c')).toBeUndefined();
    for (let i = 0; i < 1100; i++) await g.record(`old-${i}`, 1500);
    // Opened again once those expired: its next write compacts the file, keeping the outcomes.
    now = 2000;
    const reopened = await ReplayGuard.open(file, () => now);
    await reopened.record('sig-d', 5000);
    expect((await readFile(file, 'utf8')).trim().split('\n')).toHaveLength(3);
    const again = await ReplayGuard.open(file, () => now);
    expect(await again.outcome('sig-a')).toEqual({ ok: true, output: { bytes: 1 } });
    expect(await again.has('sig-b')).toBe(true);
    now = 6000;
    expect(await again.outcome('sig-a')).toBeUndefined();
  });
});
