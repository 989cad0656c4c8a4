/**
 * bench:scale's simulated fleet: host and container names, which process simulates which hosts,
 * and where each container is, so the next migration can be chosen: a container no migration
 * holds, from a host to another of the same process (one world), neither of them in more than
 * `perHost` migrations at once. With perHost at most the worker's concurrency (4), no step waits
 * for a free slot on its host: what is left between enqueue and start is dispatch.
 */

export function hostNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `h${i}`);
}

/** Hosts dealt to `processes` groups in turn. */
export function groups(hosts: string[], processes: number): string[][] {
  const out: string[][] = Array.from({ length: Math.min(processes, hosts.length) }, () => []);
  hosts.forEach((h, i) => out[i % out.length]!.push(h));
  return out;
}

export function containerNames(host: string, n: number): string[] {
  return Array.from({ length: n }, (_, k) => `${host}-c${k}`);
}

/** A container's address, unique across the fleet (host `h<i>`, its `k`th container). */
export function containerAddress(host: string, k: number): { ip: string; mac: string } {
  const i = Number(host.slice(1));
  const hex = (x: number) => (x & 255).toString(16).padStart(2, '0');
  return { ip: `10.${(i >> 8) & 255}.${i & 255}.${k + 10}`, mac: `02:00:${hex(i >> 8)}:${hex(i)}:00:${hex(k)}` };
}

export interface Move {
  container: string;
  from: string;
  to: string;
}

export class Fleet {
  private readonly load = new Map<string, number>();
  private readonly idle = new Map<string, string[]>();
  private readonly groupOf = new Map<string, string[]>();
  private next = 0;
  private turn = 0;

  constructor(
    private readonly hosts: string[],
    groupsOfHosts: string[][],
    containersPerHost: number,
    private readonly perHost: number,
  ) {
    for (const g of groupsOfHosts) for (const h of g) this.groupOf.set(h, g);
    for (const h of hosts) {
      this.load.set(h, 0);
      this.idle.set(h, containerNames(h, containersPerHost));
    }
  }

  /** The next migration that fits, taken (its hosts and container held), or null for now. */
  take(): Move | null {
    for (let tries = 0; tries < this.hosts.length; tries++) {
      const from = this.hosts[this.next++ % this.hosts.length]!;
      const idle = this.idle.get(from)!;
      if (!idle.length || this.load.get(from)! >= this.perHost) continue;
      const group = this.groupOf.get(from)!;
      for (let k = 0; k < group.length; k++) {
        const to = group[(this.turn + k) % group.length]!;
        if (to === from || this.load.get(to)! >= this.perHost) continue;
        this.turn = (this.turn + k + 1) % group.length;
        const container = idle.shift()!;
        this.load.set(from, this.load.get(from)! + 1);
        this.load.set(to, this.load.get(to)! + 1);
        return { container, from, to };
      }
    }
    return null;
  }

  /** A migration ended: its hosts are free again, its container where it now is (`at`), or lost to the bench (null). */
  ended(m: Move, at: string | null): void {
    this.load.set(m.from, this.load.get(m.from)! - 1);
    this.load.set(m.to, this.load.get(m.to)! - 1);
    if (at) this.idle.get(at)!.push(m.container);
  }
}
