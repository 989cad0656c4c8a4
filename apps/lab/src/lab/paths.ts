import { join, resolve } from 'node:path';
import { stateDir } from '@ferry/infra';

/**
 * The lab's naming scheme. Every kernel object the lab makes has one of these exact names, so
 * `down` can sweep them even when lab.json is lost, and never touches anything else.
 * Addresses stay inside 198.18.0.0/15 (benchmarking range); the namespaces get no default route.
 */
export const MAX_HOSTS = 8;
export const PREFIX_LEN = 24;
/** The switch; every port of it (a host's or the client's uplink) is named `${portPrefix}...`. */
export const SWITCH = { bridge: 'ferrysw0', address: '198.18.0.1', mac: '02:fd:00:00:00:01', nftTable: 'ferry_lab', portPrefix: 'fy' } as const;
export const CLIENT = { name: 'client', netns: 'ferry-client', uplink: `${SWITCH.portPrefix}client`, address: '198.18.0.100' } as const;
/** Inside a host namespace: the bridge containers attach to (`lxc.net.0.link`). */
export const HOST_BRIDGE = 'br0';
/** Namespace end of every uplink veth. */
export const NS_UPLINK = 'eth0';
export const SSH_PORT = 22;
/** Lab containers get 198.18.0.200..254, and a MAC whose last byte is the last octet. */
export const CONTAINER_OCTETS = { first: 200, last: 254 } as const;

const hex = (n: number) => n.toString(16).padStart(2, '0');

export interface HostNames {
  index: number;
  name: string;
  netns: string;
  uplink: string;
  address: string;
  /** Fixed MAC for br0: a bridge otherwise takes its lowest port's MAC, which changes as containers come and go. */
  bridgeMac: string;
}

export function hostNames(index: number): HostNames {
  return {
    index,
    name: `h${index}`,
    netns: `ferry-h${index}`,
    uplink: `${SWITCH.portPrefix}h${index}`,
    address: `198.18.0.${10 + index}`,
    bridgeMac: `02:fd:00:00:00:${hex(10 + index)}`,
  };
}

export function allHostNames(): HostNames[] {
  return Array.from({ length: MAX_HOSTS }, (_, i) => hostNames(i + 1));
}

/** Every netns name the scheme can produce. */
export function schemeNetns(): string[] {
  return [...allHostNames().map((h) => h.netns), CLIENT.netns];
}

/** Every root-namespace link name the scheme can produce. */
export function schemeLinks(): string[] {
  return [...allHostNames().map((h) => h.uplink), CLIENT.uplink, SWITCH.bridge];
}

export function containerAddress(octet: number): { ip: string; mac: string } {
  return { ip: `198.18.0.${octet}`, mac: `02:fe:00:00:00:${hex(octet)}` };
}

/** `<ferry state dir>/lab`, absolute (it ends up in sshd and LXC configs). */
export function labRoot(): string {
  return resolve(stateDir(), 'lab');
}

/** Where each file of the lab lives. */
export function layout(root = labRoot()) {
  return {
    root,
    stateFile: join(root, 'lab.json'),
    /** Held while lab.json is read-modify-written; outside nothing else. */
    lockFile: join(root, '..', 'lab.lock'),
    sshKey: join(root, 'id_ed25519'),
    authorizedKeys: join(root, 'authorized_keys'),
    knownHosts: join(root, 'known_hosts'),
    logs: join(root, 'logs'),
    run: join(root, 'run'),
    /** Private mount holding the hosts' mount-namespace files (see hostenv.ts). */
    nsDir: join(root, 'ns'),
    /** The workers' mount root (FERRY_MOUNT_ROOTS): host directories shared with lab containers live here. */
    shared: join(root, 'shared'),
    host(name: string) {
      const dir = join(root, 'hosts', name);
      // The host's own file system (see disks.ts): its LXC path and worker state live on it.
      const disk = join(dir, 'disk');
      return {
        dir,
        disk,
        diskImage: join(dir, 'disk.img'),
        lxcPath: join(disk, 'lxc'),
        stateDir: join(disk, 'state'),
        sshdConfig: join(dir, 'sshd_config'),
        hostKey: join(dir, 'ssh_host_ed25519_key'),
        sshdPid: join(dir, 'sshd.pid'),
        sshdLog: join(root, 'logs', `sshd-${name}.log`),
        mountNs: join(root, 'ns', `mnt-${name}`),
        cgroupStash: join(root, 'ns', `cg-${name}`),
      };
    },
  };
}

export type Layout = ReturnType<typeof layout>;
