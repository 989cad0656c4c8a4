import { lstat, mkdir, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  parseCloneRequest,
  newRecord,
  workflows,
  rollbackPlan,
  stepInput,
  type HostInfo,
  type OperationRecord,
} from '@ferry/core';
import { run } from '@ferry/infra';
import type { HostConfig } from '../src/config.js';
import { diffManifests, manifest } from '../src/manifest/manifest.js';
import { setConfigValues, templateOf, withIdentity } from '../src/runtime/lxc-config.js';
import { splitHeadOutput } from '../src/steps/clone-copy.js';
import { replaceHostNames } from '../src/steps/clone-identity.js';
import {
  callStep,
  lxcState,
  makeContainer,
  peerOf,
  rand,
  rejection,
  stepContext,
  twoHosts,
  type BridgeFixture,
  type TestContext,
  type TwoHosts,
} from './helpers.js';

vi.setConfig({ testTimeout: 40_000, hookTimeout: 40_000 });

const TEMPLATE = '# Template used to create this container: /usr/share/lxc/templates/lxc-busybox';
const OTHER_TEMPLATE = '# Template used to create this container: /usr/share/lxc/templates/lxc-download';
const BUSY = 'i=0; while true; do i=$((i+1)); echo $i > /state; sleep 0.05; done\n';

describe('clone: pure parts', () => {
  it('setConfigValues replaces in place, removes, appends', () => {
    const t = 'a = 1\nlxc.x = 1\n# lxc.x = c\nlxc.x=2\nb = 2\n';
    expect(setConfigValues(t, 'lxc.x', ['9'])).toBe('a = 1\nlxc.x = 9\n# lxc.x = c\nb = 2\n');
    expect(setConfigValues(t, 'lxc.x', [])).toBe('a = 1\n# lxc.x = c\nb = 2\n');
    expect(setConfigValues('a = 1\n', 'lxc.y', ['3'])).toBe('a = 1\nlxc.y = 3\n');
    expect(setConfigValues(setConfigValues(t, 'lxc.x', ['9']), 'lxc.x', ['9'])).toBe(setConfigValues(t, 'lxc.x', ['9']));
  });

  it('withIdentity: name, MAC, address with the source prefix; none → removed; no network → refused', () => {
    const src = [
      TEMPLATE,
      'lxc.uts.name = web',
      'lxc.net.0.type = veth',
      'lxc.net.0.hwaddr = 02:00:00:00:00:01',
      'lxc.net.0.ipv4.address = 198.18.1.5/22',
      'lxc.net.0.ipv4.address = 198.18.1.6/22',
      'lxc.net.0.ipv6.address = fd00::5/64',
      'lxc.net.1.type = veth',
      'lxc.net.1.hwaddr = 02:00:00:00:00:02',
      '',
    ].join('\n');
    const e = withIdentity(src, { hostname: 'web2', mac: '02:aa:bb:cc:dd:ee', ip: '198.18.1.9' }, () => '02:11:11:11:11:11');
    expect(e.ipv4).toBe('198.18.1.9/22');
    expect(e.text).toContain('lxc.uts.name = web2\n');
    expect(e.text).toContain('lxc.net.0.hwaddr = 02:aa:bb:cc:dd:ee\n');
    expect(e.text.match(/ipv4\.address/g)).toHaveLength(1);
    expect(e.text).toContain('lxc.net.0.ipv4.address = 198.18.1.9/22\n');
    expect(e.text).not.toContain('ipv6.address');
    expect(e.text).toContain('lxc.net.1.hwaddr = 02:11:11:11:11:11\n');
    expect(e.text.startsWith(TEMPLATE)).toBe(true);
    const none = withIdentity(src, { hostname: 'web2', mac: '02:aa:bb:cc:dd:ee' }, () => '02:11:11:11:11:11');
    expect(none.text).not.toContain('ipv4.address');
    expect(none.ipv4).toBeUndefined();
    expect(() => withIdentity('lxc.net.0.type = empty\n', { hostname: 'x', mac: '02:aa:bb:cc:dd:ee', ip: '198.18.1.9' }, () => '')).toThrow(
      expect.objectContaining({ code: 'CLONE_NO_NETWORK' }),
    );
    expect(withIdentity('lxc.net.0.type = empty\n', { hostname: 'x', mac: '02:aa:bb:cc:dd:ee' }, () => '').text).toBe(
      'lxc.net.0.type = empty\nlxc.uts.name = x\n',
    );
  });

  it('replaceHostNames: whole names and first labels only', () => {
    const hosts = '127.0.0.1 localhost\n127.0.1.1 web.lan web\n10.0.0.2 web-db myweb x.web WEB\n';
    expect(replaceHostNames(hosts, ['web'], 'api')).toBe('127.0.0.1 localhost\n127.0.1.1 api.lan api\n10.0.0.2 web-db myweb x.web api\n');
  });

  it('templateOf, splitHeadOutput', () => {
    expect(templateOf(`${TEMPLATE}\nlxc.uts.name = x\n`)).toBe('/usr/share/lxc/templates/lxc-busybox');
    expect(templateOf('lxc.uts.name = x\n')).toBeUndefined();
    const m = splitHeadOutput('==> /a/config <==\nx = 1\n\n==> /b/config <==\ny = 2\n');
    expect(m.get('/a/config')).toContain('x = 1');
    expect(m.get('/b/config')).toContain('y = 2');
  });
});

describe('clone on real containers: local, to a peer over ssh with a basis, frozen', () => {
  let fx: TwoHosts | undefined;
  let net: BridgeFixture;
  let base: string;
  let hostA: HostConfig;
  let hostB: HostConfig;
  let ctxA: TestContext;
  let ctxB: TestContext;
  /** What hostB publishes in the registry (names only matter here). */
  let published: string[] = [];

  const call = callStep;
  const err = rejection;
  const config = (lxcPath: string, n: string) => readFile(join(lxcPath, n, 'config'), 'utf8');

  const src = `test-${rand()}`;
  const srcIp = '198.18.222.20';
  const srcMac = '02:00:c6:12:de:14';
  const canary = () => join(base, 'canary');

  beforeAll(async () => {
    fx = await twoHosts(221, 222, 'ferry-clone-');
    ({ net, base, hostA, hostB, ctxA, ctxB } = fx);
    ctxA.peerInfo = async (n) =>
      n === 'hostB' ? ({ ...peerOf(hostB), containers: published.map((c) => ({ name: c, state: 'STOPPED' })) } as unknown as HostInfo) : null;
    await writeFile(canary(), 'host file: must not change\n');

    // The source: a stopped busybox container with an identity to lose.
    await makeContainer(hostA.lxcPath, src, { net: { link: net.bridge, ip: srcIp, prefix: 24, mac: srcMac }, extra: [TEMPLATE] });
    const r = join(hostA.lxcPath, src, 'rootfs');
    await mkdir(join(r, 'etc/ssh'), { recursive: true });
    await mkdir(join(r, 'etc/dropbear'), { recursive: true });
    await mkdir(join(r, 'var/lib/dbus'), { recursive: true });
    await mkdir(join(r, 'www'), { recursive: true });
    for (const k of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key']) await writeFile(join(r, 'etc/ssh', k), `fake ${k}\n`, { mode: 0o600 });
    await writeFile(join(r, 'etc/ssh/sshd_config'), 'Port 22\n');
    await writeFile(join(r, 'etc/dropbear/dropbear_ed25519_host_key'), 'fake\n');
    await writeFile(join(r, 'etc/hosts'), `127.0.0.1 localhost\n${srcIp} ${src}.lan ${src}\n`);
    await writeFile(join(r, 'etc/machine-id'), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n');
    await writeFile(join(r, 'var/lib/dbus/machine-id'), 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n');
    await writeFile(join(r, 'www/index.html'), `<h1>${src}</h1>\n`);
  });

  afterAll(async () => {
    await fx?.close();
  });

  it('preflight source: refuseRunning refuses a running source, a stopped one passes; a local peer needs no ssh', async () => {
    const running = `test-${rand()}`;
    await makeContainer(hostA.lxcPath, running);
    await run('lxc-start', ['-P', hostA.lxcPath, '-n', running, '-d']);
    await run('lxc-wait', ['-P', hostA.lxcPath, '-n', running, '-s', 'RUNNING', '-t', '10']);
    const common = { migrationId: `m-${rand()}`, epoch: 1, role: 'source' };
    const e = await err(call('preflight', ctxA, { ...common, container: running, peer: peerOf(hostB), refuseRunning: true }));
    expect(e).toMatchObject({ code: 'CONTAINER_RUNNING', retryable: false });
    expect(String(e?.message)).toMatch(/--freeze/);
    // Without refuseRunning (a migration) the running container is fine.
    expect(await call('preflight', ctxA, { ...common, container: running, peer: peerOf(hostB) })).toMatchObject({ wasRunning: true });
    // A local clone: the peer is this host, reached with a port where nothing listens: no ssh is tried.
    const ok = await call('preflight', ctxA, { ...common, container: src, peer: { ...peerOf(hostA), sshPort: 2299 }, refuseRunning: true });
    expect(ok).toMatchObject({ role: 'source', wasRunning: false, ip: srcIp, mac: srcMac });
    // clone-copy itself refuses a running source without freeze too.
    expect(await err(call('clone-copy', ctxA, { ...common, container: running, name: `test-${rand()}`, peer: peerOf(hostA), freeze: false }))).toMatchObject({
      code: 'CONTAINER_RUNNING',
    });
    await run('lxc-stop', ['-P', hostA.lxcPath, '-n', running, '-k']);
  });

  it('local clone of a stopped container: its own identity, source untouched', async () => {
    const clone = `test-${rand()}`;
    const mid = `m-${rand()}`;
    const ip = '198.18.222.21';
    const mac = '02:00:c6:12:de:99';
    const srcRootfs = join(hostA.lxcPath, src, 'rootfs');
    const before = await manifest(srcRootfs);
    const configBefore = await config(hostA.lxcPath, src);

    const tgt = await call('preflight', ctxA, { migrationId: mid, epoch: 1, container: clone, role: 'target', peer: peerOf(hostA), expect: { ip, mac, sizeBytes: 1 } });
    expect(tgt.role).toBe('target');
    // Name in use → refused (the target role reused as is).
    expect(await err(call('preflight', ctxA, { migrationId: mid, epoch: 1, container: src, role: 'target', peer: peerOf(hostA) }))).toMatchObject({
      code: 'CONTAINER_EXISTS_ON_TARGET',
    });
    // The clone's IP is the source's → refused.
    expect(
      await err(call('preflight', ctxA, { migrationId: mid, epoch: 1, container: clone, role: 'target', peer: peerOf(hostA), expect: { ip: srcIp, mac, sizeBytes: 1 } })),
    ).toMatchObject({ code: 'IP_IN_USE' });

    const copy = { migrationId: mid, epoch: 1, container: src, name: clone, peer: peerOf(hostA), freeze: false };
    const out = await call('clone-copy', ctxA, copy);
    expect(out).toMatchObject({ frozen: false });
    expect(out.basis).toBeUndefined();
    expect(out.bytesSent).toBeGreaterThan(1024 * 1024);
    expect((await readFile(join(hostA.lxcPath, clone, '.ferry-migration'), 'utf8')).trim()).toBe(mid);
    expect(await call('clone-copy', ctxA, copy)).toEqual(out); // re-delivery: the recorded result

    const idInput = { migrationId: mid, epoch: 1, container: src, name: clone, source: peerOf(hostA), hostname: 'clonehost', ip, mac, start: true };
    const id = await call('clone-identity', ctxA, idInput);
    expect(id).toMatchObject({ running: true, ip, mac });
    expect(id.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(id.removedHostKeys).toEqual([
      '/etc/dropbear/dropbear_ed25519_host_key',
      '/etc/ssh/ssh_host_ed25519_key',
      '/etc/ssh/ssh_host_ed25519_key.pub',
      '/etc/ssh/ssh_host_rsa_key',
    ]);
    expect(await lxcState(hostA.lxcPath, clone)).toBe('RUNNING');
    expect(await call('clone-identity', ctxA, idInput)).toEqual(id); // re-delivery

    const dir = join(hostA.lxcPath, clone);
    const r = join(dir, 'rootfs');
    const cfg = await config(hostA.lxcPath, clone);
    expect(cfg).toContain('lxc.uts.name = clonehost\n');
    expect(cfg).toContain(`lxc.net.0.hwaddr = ${mac}\n`);
    expect(cfg).toContain(`lxc.net.0.ipv4.address = ${ip}/24\n`);
    expect(cfg).toContain(`lxc.rootfs.path = dir:${r}\n`);
    expect(cfg).toContain(`lxc.log.file = ${dir}/lxc.log\n`);
    expect(cfg).not.toContain(join(hostA.lxcPath, src));
    expect(await readFile(join(r, 'etc/hostname'), 'utf8')).toBe('clonehost\n');
    expect(await readFile(join(r, 'etc/hosts'), 'utf8')).toBe(`127.0.0.1 localhost\n${srcIp} clonehost.lan clonehost\n`);
    expect(await readFile(join(r, 'etc/machine-id'), 'utf8')).toBe(`${id.machineId}\n`);
    expect(await readFile(join(r, 'var/lib/dbus/machine-id'), 'utf8')).toBe(`${id.machineId}\n`);
    expect((await readdir(join(r, 'etc/ssh'))).sort()).toEqual(['sshd_config']);
    expect(await readdir(join(r, 'etc/dropbear'))).toEqual([]);
    expect(await readFile(join(r, 'www/index.html'), 'utf8')).toBe(`<h1>${src}</h1>\n`); // content is data
    expect(await lstat(join(dir, '.ferry-migration')).catch(() => null)).toBeNull();
    // Inside the running clone: the kernel's hostname is the new one.
    expect((await run('lxc-attach', ['-P', hostA.lxcPath, '-n', clone, '--', '/bin/hostname'])).stdout.trim()).toBe('clonehost');

    // The source: same files, same config, still stopped.
    expect(diffManifests(before, await manifest(srcRootfs))).toEqual([]);
    expect(await config(hostA.lxcPath, src)).toBe(configBefore);
    expect(await lxcState(hostA.lxcPath, src)).toBe('STOPPED');
    await run('lxc-stop', ['-P', hostA.lxcPath, '-n', clone, '-k']);
  });

  it('clone to a peer over ssh: a container of the same template there is the basis, a fraction of the bytes', async () => {
    // On hostB: a container named like the source (never a basis), one of another template
    // (listed first), one of the source's template (the expected basis).
    const other = `test-${rand()}`;
    const same = `test-${rand()}`;
    await makeContainer(hostB.lxcPath, src, { extra: [TEMPLATE] });
    await makeContainer(hostB.lxcPath, other, { extra: [OTHER_TEMPLATE] });
    await makeContainer(hostB.lxcPath, same, { extra: [TEMPLATE] });
    const plainName = `test-${rand()}`;
    const basisName = `test-${rand()}`;
    const m1 = `m-${rand()}`;
    const m2 = `m-${rand()}`;

    published = [src, plainName];
    const plain = await call('clone-copy', ctxA, { migrationId: m1, epoch: 1, container: src, name: plainName, peer: peerOf(hostB), freeze: false });
    expect(plain.basis).toBeUndefined();

    published = [src, other, same, basisName];
    const withBasis = await call('clone-copy', ctxA, { migrationId: m2, epoch: 1, container: src, name: basisName, peer: peerOf(hostB), freeze: false });
    expect(withBasis.basis).toBe(same);
    const ratio = (withBasis.bytesSent as number) / (plain.bytesSent as number);
    console.log(`clone bytes sent: plain ${plain.bytesSent} (literal ${plain.literalBytes}), basis ${withBasis.bytesSent} (literal ${withBasis.literalBytes}), ratio ${ratio.toFixed(4)}`);
    expect(plain.bytesSent).toBeGreaterThan(1024 * 1024);
    expect(ratio).toBeLessThan(0.2);
    // The copy made with a basis is exactly the source.
    expect(diffManifests(await manifest(join(hostA.lxcPath, src, 'rootfs')), await manifest(join(hostB.lxcPath, basisName, 'rootfs')))).toEqual([]);
    expect((await readFile(join(hostB.lxcPath, basisName, '.ferry-migration'), 'utf8')).trim()).toBe(m2);
    // Another migration cannot copy over it.
    expect(
      await err(call('clone-copy', ctxA, { migrationId: `m-${rand()}`, epoch: 1, container: src, name: basisName, peer: peerOf(hostB), freeze: false })),
    ).toMatchObject({ code: 'CONTAINER_EXISTS_ON_TARGET' });

    // The copy's /etc/hostname and /etc/hosts made symlinks into the host: never written through.
    const r = join(hostB.lxcPath, basisName, 'rootfs');
    await run('rm', ['-f', join(r, 'etc/hostname'), join(r, 'etc/hosts')]);
    await symlink(canary(), join(r, 'etc/hostname'));
    await symlink(canary(), join(r, 'etc/hosts'));

    // Not ours: identity refused.
    expect(
      await err(call('clone-identity', ctxB, { migrationId: `m-${rand()}`, epoch: 1, container: src, name: basisName, source: peerOf(hostA), hostname: 'h', mac: '02:00:00:00:00:07', start: false })),
    ).toMatchObject({ code: 'CONTAINER_NOT_OURS' });
    // No IP given: the source's static address is removed; not started.
    const id = await call('clone-identity', ctxB, {
      migrationId: m2,
      epoch: 1,
      container: src,
      name: basisName,
      source: peerOf(hostA),
      hostname: 'remoteclone',
      mac: '02:00:c6:12:de:98',
      start: false,
    });
    expect(id).toMatchObject({ running: false, mac: '02:00:c6:12:de:98' });
    expect(id.ip).toBeUndefined();
    const cfg = await config(hostB.lxcPath, basisName);
    expect(cfg).not.toContain('ipv4.address');
    expect(cfg).toContain(`lxc.rootfs.path = dir:${r}\n`);
    expect(await readFile(canary(), 'utf8')).toBe('host file: must not change\n');
    expect((await lstat(join(r, 'etc/hostname'))).isFile()).toBe(true);
    expect(await readFile(join(r, 'etc/hostname'), 'utf8')).toBe('remoteclone\n');
    expect(await readlink(join(r, 'etc/hosts'))).toBe(canary()); // left alone
    expect(await lxcState(hostB.lxcPath, basisName)).toBe('STOPPED');

    // Rollback of the plain copy removes it (marker), and nothing else.
    expect(await call('discard-target', ctxB, { migrationId: m1, epoch: 1, container: plainName, keepCopy: false })).toEqual({ stopped: false, removed: true });
    expect(await lstat(join(hostB.lxcPath, plainName)).catch(() => null)).toBeNull();
    expect(await lstat(join(hostB.lxcPath, same, 'config'))).toBeTruthy();
  });

  it('freeze: a running source is copied frozen and thawed; thawed also when the copy fails', async () => {
    const busy = `test-${rand()}`;
    await makeContainer(hostA.lxcPath, busy, { init: BUSY });
    await run('lxc-start', ['-P', hostA.lxcPath, '-n', busy, '-d']);
    await run('lxc-wait', ['-P', hostA.lxcPath, '-n', busy, '-s', 'RUNNING', '-t', '10']);
    await sleep(200);
    const pre = await call('preflight', ctxA, { migrationId: `m-${rand()}`, epoch: 1, container: busy, role: 'source', peer: peerOf(hostA) });
    expect(pre.wasRunning).toBe(true);

    // Success: frozen for the final pass, running again after.
    const freeze = vi.spyOn(ctxA.runtime, 'freeze');
    const unfreeze = vi.spyOn(ctxA.runtime, 'unfreeze');
    const ok = await call('clone-copy', ctxA, { migrationId: `m-${rand()}`, epoch: 1, container: busy, name: `test-${rand()}`, peer: peerOf(hostA), freeze: true });
    expect(ok.frozen).toBe(true);
    expect(ctxA.progressLog.some((p) => p.stage === 'clone-copy-frozen')).toBe(true);
    expect(await lxcState(hostA.lxcPath, busy)).toBe('RUNNING');
    expect([freeze.mock.calls.length, unfreeze.mock.calls.length]).toEqual([1, 1]);

    // The copy fails while the source is frozen (the worker shuts down during the frozen pass).
    const ctx = stepContext(hostA, ctxA.runtime);
    const states: string[] = [];
    ctx.progress = (p) => {
      if (p.stage === 'clone-copy-frozen' && !ctx.abort.signal.aborted) {
        ctx.abort.abort();
        states.push('aborted');
      }
    };
    const failed = await err(call('clone-copy', ctx, { migrationId: `m-${rand()}`, epoch: 1, container: busy, name: `test-${rand()}`, peer: peerOf(hostA), freeze: true }));
    expect(failed).toMatchObject({ code: 'ABORTED', retryable: true });
    expect(states).toEqual(['aborted']);
    expect([freeze.mock.calls.length, unfreeze.mock.calls.length]).toEqual([2, 2]);
    expect(await lxcState(hostA.lxcPath, busy)).toBe('RUNNING');

    // A bad peer: refused before anything is frozen; the source keeps running.
    const bad = await err(
      call('clone-copy', ctxA, { migrationId: `m-${rand()}`, epoch: 1, container: busy, name: `test-${rand()}`, peer: { ...peerOf(hostB), sshPort: 2299 }, freeze: true }),
    );
    expect(bad).toMatchObject({ code: 'PEER_UNREACHABLE', retryable: true });
    expect(freeze.mock.calls.length).toBe(2);
    expect(await lxcState(hostA.lxcPath, busy)).toBe('RUNNING');
    freeze.mockRestore();
    unfreeze.mockRestore();
    await run('lxc-stop', ['-P', hostA.lxcPath, '-n', busy, '-k']);
  });
  it('end to end with the inputs core builds: a frozen running source cloned locally and started; a failure rolled back', async () => {
    const busy = `test-${rand()}`;
    await makeContainer(hostA.lxcPath, busy, { init: BUSY, net: { link: net.bridge, ip: '198.18.222.30', prefix: 24, mac: '02:00:c6:12:de:30' } });
    await run('lxc-start', ['-P', hostA.lxcPath, '-n', busy, '-d']);
    await run('lxc-wait', ['-P', hostA.lxcPath, '-n', busy, '-s', 'RUNNING', '-t', '10']);
    const record = (clone: string, extra: Record<string, unknown> = {}): OperationRecord => {
      const request = parseCloneRequest({ container: busy, name: clone, from: 'hostA', to: 'hostA', ip: '198.18.222.31', mac: '02:00:c6:12:de:31', freeze: true, ...extra });
      const plan = workflows.clone.plan(request, () => ({ runtime: 'lxc', freeze: true, checkpoint: false }));
      const r = newRecord({ id: `m-${rand()}`, kind: 'clone', request, hosts: { source: peerOf(hostA), target: peerOf(hostA) }, plan, epoch: 1, now: Date.now() });
      return { ...r, state: 'running', run: 1, steps: r.steps.map((st) => ({ ...st, run: 1 })), version: 1 };
    };
    const forward = async (r: OperationRecord, upTo: number) => {
      for (let k = 0; k < upTo; k++) {
        const st = r.steps[k]!;
        const out = await call(st.name, ctxA, stepInput(r, 'forward', k));
        Object.assign(st, { state: 'done', output: out });
      }
    };

    const clone = `test-${rand()}`;
    const r = record(clone);
    await forward(r, r.steps.length);
    const id = r.steps[3]!.output as Record<string, unknown>;
    expect(r.steps[2]!.output).toMatchObject({ frozen: true });
    expect(id).toMatchObject({ running: true, ip: '198.18.222.31', mac: '02:00:c6:12:de:31' });
    expect(await lxcState(hostA.lxcPath, busy)).toBe('RUNNING');
    expect(await lxcState(hostA.lxcPath, clone)).toBe('RUNNING');
    expect((await run('lxc-attach', ['-P', hostA.lxcPath, '-n', clone, '--', '/bin/hostname'])).stdout.trim()).toBe(clone);
    // The clone answers on its own address (the source keeps its own).
    await run('nsenter', [`--net=/run/netns/${net.clientNs}`, '/bin/busybox', 'ping', '-c', '1', '-W', '2', '198.18.222.31']);
    await run('lxc-stop', ['-P', hostA.lxcPath, '-n', clone, '-k']);

    // A failure after the copy (before the clone runs): the plan's compensations remove the
    // partial clone and leave the source running.
    const clone2 = `test-${rand()}`;
    const r2 = record(clone2, { ip: '198.18.222.32', mac: '02:00:c6:12:de:32' });
    await forward(r2, 3);
    expect((await readFile(join(hostA.lxcPath, clone2, '.ferry-migration'), 'utf8')).trim()).toBe(r2.id);
    const rb = rollbackPlan(r2.plan, 3, true);
    expect(rb.map((x) => x.name)).toEqual(['discard-target', 'resume-source']);
    r2.phase = 'rollback';
    r2.rollback = rb.map((st) => ({ ...st, state: 'pending', run: 1, attempts: 0 }));
    for (let k = 0; k < rb.length; k++) await call(rb[k]!.name, ctxA, stepInput(r2, 'rollback', k));
    expect(await lstat(join(hostA.lxcPath, clone2)).catch(() => null)).toBeNull();
    expect(await lstat(join(hostA.lxcPath, busy, 'rootfs/bin/busybox'))).toBeTruthy();
    expect(await lxcState(hostA.lxcPath, busy)).toBe('RUNNING');
    await run('lxc-stop', ['-P', hostA.lxcPath, '-n', busy, '-k']);
  });
});
