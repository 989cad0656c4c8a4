import { run } from '@ferry/infra';
import { HOST_BRIDGE, NS_UPLINK, PREFIX_LEN, SWITCH } from './paths.js';

/**
 * The lab's network: a root-namespace bridge (the switch) and, per host or client, a network
 * namespace wired to it by a veth pair. IPv6 is off on every lab interface: its link-up chatter
 * would teach the switches MAC locations by itself and hide missing ARP refreshes.
 */

const T = { timeoutMs: 10_000 };

function ip(args: string[], netns?: string) {
  return run('ip', netns ? ['-n', netns, ...args] : args, T);
}

function sysctl(settings: string[], netns?: string) {
  return run('sysctl', ['-q', '-w', ...settings], { ...T, netns });
}

const noV6 = (dev: string) => `net.ipv6.conf.${dev}.disable_ipv6=1`;

export async function createSwitch(): Promise<void> {
  await ip(['link', 'add', SWITCH.bridge, 'address', SWITCH.mac, 'type', 'bridge']);
  await sysctl([noV6(SWITCH.bridge)]);
  await ip(['addr', 'add', `${SWITCH.address}/${PREFIX_LEN}`, 'dev', SWITCH.bridge]);
  await ip(['link', 'set', SWITCH.bridge, 'up']);
}

export interface NamespaceSpec {
  netns: string;
  uplink: string;
  address: string;
  /** Hosts put their address on a bridge (containers join it); the client uses eth0 directly. */
  bridgeMac?: string;
}

export async function createNamespace(spec: NamespaceSpec): Promise<void> {
  const { netns } = spec;
  await ip(['netns', 'add', netns]);
  // Before any interface exists, so `default` covers everything made in here later (containers' veths too).
  await sysctl([noV6('all'), noV6('default')], netns);
  // The peer is created directly inside the namespace: no window where it sits in the root one.
  await ip(['link', 'add', spec.uplink, 'type', 'veth', 'peer', 'name', NS_UPLINK, 'netns', netns]);
  await sysctl([noV6(spec.uplink)]);
  await ip(['link', 'set', spec.uplink, 'master', SWITCH.bridge, 'up']);
  let dev = NS_UPLINK;
  if (spec.bridgeMac) {
    dev = HOST_BRIDGE;
    await ip(['link', 'add', HOST_BRIDGE, 'address', spec.bridgeMac, 'type', 'bridge'], netns);
    await ip(['link', 'set', NS_UPLINK, 'master', HOST_BRIDGE], netns);
    await ip(['link', 'set', HOST_BRIDGE, 'up'], netns);
  }
  await ip(['addr', 'add', `${spec.address}/${PREFIX_LEN}`, 'dev', dev], netns);
  await ip(['link', 'set', NS_UPLINK, 'up'], netns);
  await ip(['link', 'set', 'lo', 'up'], netns);
}

export async function listNetns(): Promise<Set<string>> {
  const { stdout } = await ip(['netns', 'list']);
  // Lines look like `ferry-h1 (id: 3)` or just `ferry-h1`.
  return new Set(stdout.split('\n').map((l) => l.trim().split(' ')[0] ?? '').filter(Boolean));
}

export async function listLinks(): Promise<Set<string>> {
  const { stdout } = await ip(['-o', 'link', 'show']);
  // `12: fyh1@if11: <...>`: the name is the second field, up to an `@`.
  return new Set(stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean));
}

export async function netnsPids(netns: string): Promise<number[]> {
  const { stdout } = await ip(['netns', 'pids', netns]);
  return stdout.split(/\s+/).filter(Boolean).map(Number);
}

export async function deleteLink(name: string): Promise<void> {
  await ip(['link', 'del', name]);
}

export async function deleteNetns(name: string): Promise<void> {
  await ip(['netns', 'del', name]);
}

export async function setLink(name: string, state: 'up' | 'down'): Promise<void> {
  await ip(['link', 'set', name, state]);
}
