/**
 * Observer for one move of a running container, cheap enough to run every 20 ms (the client-seen
 * downtime comes from ferry's own probe, ../../probe/client-probe.ts, for every tool):
 * - a cgroup watcher reading the v1 freezer state of every `lxc.payload.<name>[-N]` cgroup
 *   on the host, giving the frozen window of the source and the time both copies ran at once.
 *   (Both LXD daemons run on this host and name the payload cgroup after the instance; the
 *   second copy of the same name gets a `-1` suffix from liblxc.)
 */
import { readdir, readFile } from 'node:fs/promises';

export interface CgroupSummary {
  /** Whether a running copy's cgroup was found when the watch started (else the figures are empty). */
  sawSource: boolean;
  /** Total time the source copy's freezer was FROZEN or FREEZING (ms). */
  sourceFrozenMs: number;
  /** Freezer state of the source copy when the watch ended ('gone' when its cgroup is gone). */
  sourceFinalState: string;
  /** Total time at least two copies were THAWED with processes in them (ms). */
  bothRunningMs: number;
  /** Every payload cgroup seen, with its last state. */
  seen: Record<string, string>;
}

const FREEZER = '/sys/fs/cgroup/freezer';

async function payloadStates(name: string): Promise<Map<string, { state: string; procs: number }>> {
  const out = new Map<string, { state: string; procs: number }>();
  const entries = await readdir(FREEZER).catch(() => [] as string[]);
  for (const e of entries) {
    if (e !== `lxc.payload.${name}` && !new RegExp(`^lxc\\.payload\\.${name}-\\d+$`).test(e)) continue;
    const state = (await readFile(`${FREEZER}/${e}/freezer.state`, 'utf8').catch(() => 'gone')).trim();
    const procs = (await readFile(`${FREEZER}/${e}/cgroup.procs`, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
    out.set(e, { state, procs });
  }
  return out;
}

/** Polls the freezer state of the container's payload cgroups every `everyMs`. */
export class CgroupWatcher {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private source: string | null = null;
  private last = Date.now();
  private frozenMs = 0;
  private bothMs = 0;
  private seen: Record<string, string> = {};

  constructor(
    private readonly name: string,
    private readonly everyMs = 20,
  ) {}

  async start(): Promise<void> {
    const now = await payloadStates(this.name);
    // The source is the copy running before the move starts.
    for (const [cg, s] of now) if (s.procs > 0) this.source ??= cg;
    this.last = Date.now();
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const states = await payloadStates(this.name);
      const t = Date.now();
      const dt = t - this.last;
      this.last = t;
      const src = this.source ? states.get(this.source) : undefined;
      if (src && (src.state === 'FROZEN' || src.state === 'FREEZING')) this.frozenMs += dt;
      const running = [...states.values()].filter((s) => s.state === 'THAWED' && s.procs > 0).length;
      if (running >= 2) this.bothMs += dt;
      for (const [cg, s] of states) this.seen[cg] = `${s.state}/${s.procs} procs`;
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<CgroupSummary> {
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    const states = await payloadStates(this.name);
    const src = this.source ? states.get(this.source) : undefined;
    return {
      sawSource: this.source !== null,
      sourceFrozenMs: this.frozenMs,
      sourceFinalState: src ? `${src.state} (${src.procs} procs)` : 'gone',
      bothRunningMs: this.bothMs,
      seen: this.seen,
    };
  }
}
