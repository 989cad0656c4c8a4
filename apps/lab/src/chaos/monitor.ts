import { clientExec, hostExec, type LabInfo } from '../lab/index.js';

/**
 * Where the container runs, seen from outside ferry: every ~150 ms `lxc-info -sH` on each host
 * (both hosts queried at once), and, independently, ARP from the client: two stations answering
 * for the container's address (it keeps its MAC, so "two MACs" alone would miss a duplicate;
 * more replies than requests does not).
 */

/** lxc-info's state, or ABSENT (no such container there) or ERROR (the query itself failed). */
export type Placement = string;

/** States in which the container's processes exist on a host (the brief's "running"). */
export const ACTIVE = new Set(['RUNNING', 'FROZEN']);
/** Transitional states that still mean processes exist; recorded as suspect overlaps, not counted. */
const TRANSITIONAL = new Set(['STARTING', 'STOPPING', 'FREEZING', 'THAWED', 'ABORTING']);

export async function placementOn(lab: LabInfo, host: string, name: string): Promise<Placement> {
  const h = lab.hosts.find((x) => x.name === host)!;
  try {
    const r = await hostExec(host, ['lxc-info', '-P', h.lxcPath, '-n', name, '-sH'], { timeoutMs: 5000, okExitCodes: [0, 1] });
    if (r.exitCode !== 0) return /doesn't exist|does not exist/i.test(r.stderr) ? 'ABSENT' : 'ERROR';
    return r.stdout.trim() || 'ERROR';
  } catch {
    return 'ERROR';
  }
}

export async function placements(lab: LabInfo, name: string): Promise<Record<string, Placement>> {
  const hosts = lab.hosts.map((h) => h.name);
  const states = await Promise.all(hosts.map((h) => placementOn(lab, h, name)));
  return Object.fromEntries(hosts.map((h, i) => [h, states[i]!]));
}

/** Runs `tick` about every `everyMs` (from each tick's start) until stopped, for at most `maxMs`. */
abstract class PollLoop {
  private stopped = false;
  private loop?: Promise<void>;

  constructor(
    private readonly everyMs: number,
    private readonly maxMs: number,
  ) {}

  protected abstract tick(t: number): Promise<void>;

  start(): this {
    const end = Date.now() + this.maxMs;
    this.loop = (async () => {
      while (!this.stopped && Date.now() < end) {
        const t = Date.now();
        await this.tick(t);
        const wait = this.everyMs - (Date.now() - t);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

export interface Poll {
  t: number;
  /** Milliseconds the poll took (both queries; they run at once). */
  ms: number;
  states: Record<string, Placement>;
}

export class PlacementMonitor extends PollLoop {
  readonly polls: Poll[] = [];
  /** Polls where the container was RUNNING/FROZEN on two hosts. */
  readonly both: Poll[] = [];
  /** Polls where two hosts had processes of it in some state, not both RUNNING/FROZEN. */
  readonly suspect: Poll[] = [];
  errors = 0;

  constructor(
    private readonly lab: LabInfo,
    private readonly name: string,
    everyMs = 150,
    maxMs = 900_000,
  ) {
    super(everyMs, maxMs);
  }

  protected async tick(t: number): Promise<void> {
    const states = await placements(this.lab, this.name);
    const p: Poll = { t, ms: Date.now() - t, states };
    this.polls.push(p);
    const vals = Object.values(states);
    if (vals.includes('ERROR')) this.errors++;
    const active = vals.filter((s) => ACTIVE.has(s)).length;
    const present = vals.filter((s) => ACTIVE.has(s) || TRANSITIONAL.has(s)).length;
    if (active >= 2) this.both.push(p);
    else if (present >= 2) this.suspect.push(p);
  }

  /** A compact timeline: each change of the per-host states, with its time. */
  timeline(t0: number): string[] {
    const out: string[] = [];
    let last = '';
    for (const p of this.polls) {
      const s = Object.entries(p.states)
        .map(([h, v]) => `${h}=${v}`)
        .join(' ');
      if (s !== last) out.push(`+${((p.t - t0) / 1000).toFixed(2)}s ${s}`);
      last = s;
    }
    return out;
  }
}

export interface ArpObservation {
  t: number;
  sent: number;
  received: number;
  macs: string[];
}

/** `arping -c 2 -w 1` from the client about once a second. */
export class ArpWatcher extends PollLoop {
  readonly runs: ArpObservation[] = [];
  readonly duplicates: ArpObservation[] = [];

  constructor(
    private readonly ip: string,
    everyMs = 1000,
    maxMs = 900_000,
  ) {
    super(everyMs, maxMs);
  }

  protected async tick(t: number): Promise<void> {
    try {
      const r = await clientExec(['arping', '-c', '2', '-w', '1', '-I', 'eth0', this.ip], { timeoutMs: 4000, okExitCodes: [0, 1] });
      const sent = Number(/Sent (\d+) probe/.exec(r.stdout)?.[1] ?? 0);
      const received = Number(/Received (\d+) response/.exec(r.stdout)?.[1] ?? 0);
      const macs = [...new Set([...r.stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]+)\]/g)].map((m) => m[1]!.toLowerCase()))];
      const o = { t, sent, received, macs };
      this.runs.push(o);
      if (macs.length > 1 || (sent > 0 && received > sent)) this.duplicates.push(o);
    } catch {
      /* a failed arping is no observation */
    }
  }
}
