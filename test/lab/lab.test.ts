import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, succeeds } from '@ferry/infra';
import {
  clientExec,
  hostExec,
  labContainerCreate,
  labDown,
  labInfo,
  labUp,
  linkDown,
  linkUp,
  type LabInfo,
} from '@ferry/lab';
import { createHostMountNs, prepareLabMounts } from '../../apps/lab/src/lab/hostenv.js';
import { createNamespace, createSwitch } from '../../apps/lab/src/lab/netns.js';
import { hostNames, layout } from '../../apps/lab/src/lab/paths.js';
import { writeState } from '../../apps/lab/src/lab/state.js';

// The real thing: network namespaces, bridges, sshd, LXC. Needs root and the lab's packages.
const canRun = process.getuid?.() === 0 && ['lxc-create', 'sshd', 'busybox', 'nsenter'].every((t) =>
  ['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(join(d, t))),
);

async function leftovers(stateDir: string): Promise<string[]> {
  const netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!);
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '');
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '');
  return [
    ...netns.filter((n) => /^ferry-(h\d|client)$/.test(n)),
    ...links.filter((l) => /^(fyh\d|fyclient|ferrysw0)$/.test(l)),
    ...mounts.filter((m) => m.startsWith(stateDir)),
    ...(existsSync(join(stateDir, 'lab')) ? ['lab dir'] : []),
  ];
}

const wget = (ip: string) => clientExec(['busybox', 'wget', '-q', '-O', '-', `http://${ip}/`], { timeoutMs: 3000 });

describe.skipIf(!canRun)('lab (real namespaces, sshd, LXC)', () => {
  let stateDir: string;
  let lab: LabInfo;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'ferry-labtest-'));
    process.env.FERRY_STATE_DIR = stateDir;
    const before = await leftovers(stateDir);
    // Another lab (another state dir) owns the global names: refuse rather than tear it down.
    if (before.length) throw new Error(`a lab is already up on this machine (${before.join(', ')}); run \`ferry lab down\``);
  });

  afterAll(async () => {
    await labDown();
    expect(await leftovers(stateDir)).toEqual([]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('brings up hosts and a client, each host with its own sshd, keys pinned', async () => {
    const t0 = Date.now();
    lab = await labUp({ hosts: 2, startServices: false });
    console.log(`lab up (2 hosts, no services): ${Date.now() - t0} ms`);
    expect(lab.hosts.map((h) => [h.name, h.netns, h.address, h.uplink])).toEqual([
      ['h1', 'ferry-h1', '198.18.0.11', 'fyh1'],
      ['h2', 'ferry-h2', '198.18.0.12', 'fyh2'],
    ]);
    expect(lab.client).toEqual({ netns: 'ferry-client', address: '198.18.0.100' });
    expect(lab.switch).toEqual({ bridge: 'ferrysw0', address: '198.18.0.1' });
    expect(await labInfo()).toEqual(lab);

    const ssh = (from: string, to: string, knownHosts: string) =>
      hostExec(from, ['ssh', '-F', '/dev/null', '-i', lab.sshKey, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes', `root@${to}`, 'cat /proc/net/dev'], { timeoutMs: 15_000 });
    const r = await ssh('h1', '198.18.0.12', lab.knownHosts);
    expect(r.stdout).toContain('br0:'); // the far end is in h2's namespace
    // Host keys are checked: an empty known_hosts refuses.
    const empty = join(stateDir, 'empty_known_hosts');
    writeFileSync(empty, '');
    await expect(ssh('h1', '198.18.0.12', empty)).rejects.toThrow(/Host key verification failed/);
    // Namespaces reach only the lab network.
    const routes = (await hostExec('h1', ['ip', '-4', 'route'])).stdout;
    expect(routes).not.toMatch(/default/);
  });

  it('returns the lab that is up, and refuses another shape', async () => {
    expect(await labUp({ startServices: false })).toEqual(lab);
    await expect(labUp({ hosts: 3, startServices: false })).rejects.toMatchObject({ code: 'LAB_ALREADY_UP' });
  });

  it('creates a running container with data and a writer, reachable from the client, freezable', async () => {
    const t0 = Date.now();
    const ct = await labContainerCreate({ name: 'web1', host: 'h1', sizeMb: 8, writer: true });
    console.log(`container with 8 MiB and a writer: ${Date.now() - t0} ms`);
    expect(ct).toMatchObject({ name: 'web1', host: 'h1', ip: '198.18.0.200', mac: '02:fe:00:00:00:c8', lxcPath: lab.hosts[0]!.lxcPath });
    expect(ct.pid).toBeGreaterThan(1);
    expect((await wget(ct.ip)).stdout).toContain('web1');

    const bulk = join(ct.rootfs, 'data/bulk');
    expect(readdirSync(bulk).reduce((n, f) => n + statSync(join(bulk, f)).size, 0)).toBe(8 << 20);

    // IPv6 is off inside (its link-up packets would teach the switches by themselves).
    const v6 = await run('nsenter', ['-t', String(ct.pid), '-n', 'cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6']);
    expect(v6.stdout.trim()).toBe('1');

    // The writer counts; a freeze (cgroup freezer, so LXC must see the cgroups) stops it.
    const counter = () => Number(readFileSync(join(ct.rootfs, 'data/churn/counter'), 'utf8'));
    const lxc = (cmd: string) => hostExec('h1', [cmd, '-P', ct.lxcPath, '-n', 'web1'], { timeoutMs: 10_000 });
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // The writer ticks on its own schedule: wait (bounded) for it to move past `from`.
    const grows = async (from: number) => {
      for (let i = 0; i < 100 && counter() <= from; i++) await pause(100);
      expect(counter()).toBeGreaterThan(from);
    };
    await pause(400);
    const c1 = counter();
    await grows(c1);
    await lxc('lxc-freeze');
    expect((await hostExec('h1', ['lxc-info', '-P', ct.lxcPath, '-n', 'web1', '-sH'])).stdout.trim()).toBe('FROZEN');
    const frozen = counter();
    await pause(400);
    expect(counter()).toBe(frozen);
    await lxc('lxc-unfreeze');
    await grows(frozen);

    const second = await labContainerCreate({ name: 'web2', host: 'h2' });
    expect(second.ip).toBe('198.18.0.201');
    expect((await wget(second.ip)).stdout).toContain('web2');
  });

  it('rejects bad container requests with stable codes', async () => {
    await expect(labContainerCreate({ name: 'web1', host: 'h2' })).rejects.toMatchObject({ code: 'LAB_CONTAINER_EXISTS' });
    await expect(labContainerCreate({ name: 'x', host: 'h7' })).rejects.toMatchObject({ code: 'LAB_HOST_UNKNOWN' });
    await expect(labContainerCreate({ name: '../etc', host: 'h1' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('cuts a host off the switch and reconnects it', async () => {
    await linkDown('h1');
    expect(await succeeds('busybox', ['ping', '-c', '1', '-W', '1', '198.18.0.200'], { netns: lab.client.netns, timeoutMs: 5000 })).toBe(false);
    await linkUp('h1');
    expect(await succeeds('busybox', ['ping', '-c', '1', '-W', '2', '198.18.0.200'], { netns: lab.client.netns, timeoutMs: 5000 })).toBe(true);
  });

  it('down removes everything, and a second down is fine', async () => {
    await labDown();
    expect(await leftovers(stateDir)).toEqual([]);
    expect(await labInfo()).toBeNull();
    expect(await succeeds('pgrep', ['-f', `lxc monitor\\] ${stateDir}`])).toBe(false);
    await labDown();
  });

  it('down removes a half-made lab (as left by a crashed up), and up replaces one', async () => {
    // What an `up` killed midway leaves: lab.json saying `creating`, the switch, one host
    // namespace with its mount namespace, no sshd yet.
    const lx = layout();
    const h1 = hostNames(1);
    const half = { ...lab, hosts: [lab.hosts[0]!] };
    await writeState({ version: 1, phase: 'creating', info: half, containers: {} }, lx.stateFile);
    await createSwitch();
    await prepareLabMounts(lx);
    await createNamespace({ netns: h1.netns, uplink: h1.uplink, address: h1.address, bridgeMac: h1.bridgeMac });
    await createHostMountNs(lx, h1.name, h1.netns);
    expect((await leftovers(stateDir)).length).toBeGreaterThan(3);
    await labDown();
    expect(await leftovers(stateDir)).toEqual([]);

    await writeState({ version: 1, phase: 'creating', info: half, containers: {} }, lx.stateFile);
    await createSwitch();
    lab = await labUp({ hosts: 2, startServices: false });
    expect(lab.hosts).toHaveLength(2);
    expect((await hostExec('h2', ['ip', '-4', '-o', 'addr', 'show', 'br0'])).stdout).toContain('198.18.0.12/24');
  });
});
