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

/**
 * The switch carries no IPv6. A container's interface comes up before LXC applies its
 * `disable_ipv6` sysctls, and on a busy machine its IPv6 link-up packets (MLD, DAD) could get out
 * in that window: the switch would learn the new port from them. Dropped before the bridge learns
 * (prerouting), only the ARP refresh can move a MAC. One table, replaced whole on each `lab up`.
 */
const SWITCH_FILTER = `add table bridge ${SWITCH.nftTable}
delete table bridge ${SWITCH.nftTable}
add table bridge ${SWITCH.nftTable}
add chain bridge ${SWITCH.nftTable} in { type filter hook prerouting priority -300; policy accept; }
add rule bridge ${SWITCH.nftTable} in iifname "${SWITCH.portPrefix}*" ether type ip6 drop
`;

export async function createSwitch(): Promise<void> {
  await run('nft', ['-f', '-'], { ...T, input: SWITCH_FILTER });
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

/** The switch's filter (see SWITCH_FILTER); gone already is fine. */
export async function deleteSwitchFilter(): Promise<void> {
  await run('nft', ['-f', '-'], { ...T, input: `add table bridge ${SWITCH.nftTable}\ndelete table bridge ${SWITCH.nftTable}\n` });
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
