import { beforeAll, describe, expect, it } from 'vitest';
import type { OperationSummary } from '@ferry/core';
import { hostExec, labContainerCreate, type LabInfo } from '@ferry/lab';
import { containerState, ferry, httpFrom, useLab } from '../support/lab.js';

// Real lab: the clone goes through the CLI, the scheduler and the workers of both hosts.
describe('clone in the lab', () => {
  const { lab: getLab, host: h } = useLab(2);
  let lab: LabInfo;
  const attach = async (host: string, name: string, argv: string[]) =>
    (await hostExec(host, ['lxc-attach', '-P', h(host).lxcPath, '-n', name, '--', ...argv], { timeoutMs: 10_000 })).stdout.trim();
  const clone = async (args: string[]) => {
    const r = await ferry(['clone', ...args, '--json']);
    return { ...r, summary: r.code !== 2 ? (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as OperationSummary) : undefined };
  };

  beforeAll(async () => {
    lab = getLab();
    await labContainerCreate({ name: 'src1', host: 'h1', sizeMb: 16 });
  });

  it('refuses a running source without --freeze before anything is copied', async () => {
    const r = await ferry(['clone', 'src1', 'cl0', '--ip', '198.18.0.240']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/src1' is RUNNING on h1.*pass --freeze/);
    expect(await containerState('h1', h('h1').lxcPath, 'cl0')).toBeNull();
  });

  it('a local clone runs beside its source with an identity of its own', async () => {
    const r = await clone(['src1', 'cl1', '--ip', '198.18.0.230', '--freeze']);
    expect(r.stderr).not.toMatch(/ferry: /);
    expect(r.summary?.state).toBe('done');
    expect(await containerState('h1', h('h1').lxcPath, 'src1')).toBe('RUNNING');
    expect(await containerState('h1', h('h1').lxcPath, 'cl1')).toBe('RUNNING');
    expect(await httpFrom(lab.client.netns, 'http://198.18.0.230/')).toBeTruthy();
    expect(await httpFrom(lab.client.netns, 'http://198.18.0.200/')).toBeTruthy();
    expect(await attach('h1', 'cl1', ['hostname'])).toBe('cl1');
    expect(await attach('h1', 'src1', ['hostname'])).toBe('src1');
    const id = (n: string) => attach('h1', n, ['cat', '/etc/machine-id']).catch(() => null);
    expect(await id('cl1')).toMatch(/^[0-9a-f]{32}$/);
    expect(await id('cl1')).not.toBe(await id('src1'));
    const mac = (n: string) => attach('h1', n, ['cat', '/sys/class/net/eth0/address']);
    expect(await mac('cl1')).not.toBe(await mac('src1'));
  });

  it('a clone to a host that has a container of the same template sends only the differences', async () => {
    const plain = await clone(['src1', 'cl2', '--to', 'h2', '--ip', '198.18.0.231', '--freeze']);
    expect(plain.summary?.state).toBe('done');
    const delta = await clone(['src1', 'cl3', '--to', 'h2', '--ip', '198.18.0.232', '--freeze']);
    expect(delta.summary?.state).toBe('done');
    expect(plain.summary!.bytesTransferred).toBeGreaterThan(16 * 1024 * 1024);
    expect(delta.summary!.bytesTransferred).toBeLessThan(plain.summary!.bytesTransferred * 0.2);
    expect(await httpFrom(lab.client.netns, 'http://198.18.0.232/')).toBeTruthy();
  });

  it('a name or an IP in use is refused before anything is copied', async () => {
    const name = await ferry(['clone', 'src1', 'cl1', '--to', 'h2', '--ip', '198.18.0.233', '--freeze']);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/name: 'cl1' is already a container on host h1/);
    const ip = await ferry(['clone', 'src1', 'cl4', '--ip', '198.18.0.230', '--freeze']);
    expect(ip.code).toBe(2);
    expect(ip.stderr).toMatch(/ip: 198.18.0.230 is already used by cl1 on h1/);
    expect(await containerState('h1', h('h1').lxcPath, 'cl4')).toBeNull();
  });
});
