import { watch, type FSWatcher } from 'node:fs';
import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ContainerSummary, HostInfo } from '@ferry/core';
import type { HostRegistry } from '@ferry/infra';
import type { HostConfig } from './config.js';
import type { Runtime } from './runtime/runtime.js';
import type { LoadMeter } from './load/load-meter.js';
import { readCheckpoint } from './checkpoint/on-disk.js';

/**
 * What this host looks like now, for the registry (and the CLI's checks before it submits); with a
 * meter, also its capacity and each container's load (what rebalancing plans from).
 */
export async function describeHost(host: HostConfig, runtime: Runtime, meter?: LoadMeter, log?: Logger): Promise<HostInfo> {
  const [caps, list, fs] = await Promise.all([runtime.capabilities(), runtime.list(), statfs(host.lxcPath)]);
  // A meter that fails costs this beat its load figures, never the host's description: peers and
  // the CLI go by the rest.
  const measured = meter
    ? await meter.measure(list).catch((err: unknown) => {
        log?.warn({ err }, 'load not measured');
        return undefined;
      })
    : undefined;
  // Checkpointed: stopped with a complete checkpoint on disk (read from disk: true after a restart).
  const checkpoints = await Promise.all(list.map((c) => (c.state === 'STOPPED' ? readCheckpoint(runtime, c.name) : null)));
  const containers: ContainerSummary[] = list.map((c, k) => {
    const load = measured?.containers.get(c.name);
    const cp = checkpoints[k];
    return {
      name: c.name,
      state: c.state,
      ...(c.ip ? { ip: c.ip } : {}),
      ...(c.mac ? { mac: c.mac } : {}),
      ...(load ? { load } : {}),
      ...(cp ? { checkpoint: { at: cp.at } } : {}),
    };
  });
  return {
    name: host.name,
    address: host.address,
    sshPort: host.sshPort,
    sshUser: host.sshUser,
    lxcPath: host.lxcPath,
    capabilities: caps,
    containers,
    freeBytes: fs.bavail * fs.bsize,
    ...(measured ? { capacity: measured.capacity } : {}),
    lastSeen: Date.now(),
    workerPid: process.pid,
  };
}

/** Publishes the host every `everyMs` and on demand (after each step). */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private aliveTimer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private debounce?: NodeJS.Timeout;
  private pending?: Promise<void>;
  private again = false;

  constructor(
    private readonly host: HostConfig,
    private readonly runtime: Runtime,
    /** Where the host is published: the registry, with the host's signature on each entry (host-worker). */
    private readonly registry: Pick<HostRegistry, 'publish' | 'markAlive'>,
    private readonly log: Logger,
    /** Measures load with every beat (none: the host publishes no load). */
    private readonly meter?: LoadMeter,
    private readonly everyMs = Number(process.env.FERRY_HEARTBEAT_MS ?? 2000),
    // Liveness is cheap (one HSET) and peers of a frozen container judge by it within seconds.
    private readonly aliveEveryMs = Number(process.env.FERRY_ALIVE_MS ?? 400),
  ) {}

  async start(): Promise<void> {
    await this.alive();
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.everyMs);
    this.aliveTimer = setInterval(() => void this.alive(), this.aliveEveryMs);
    // A container created or removed here is published at once, not at the next beat: the CLI
    // checks the registry before it submits anything.
    try {
      this.watcher = watch(this.host.lxcPath, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.beat(), 100);
      });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.log.warn({ err }, 'cannot watch the LXC path; containers are published every beat only');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.aliveTimer) clearInterval(this.aliveTimer);
    clearTimeout(this.debounce);
    this.watcher?.close();
    this.meter?.stop();
  }

  /** Liveness apart from the description: peers watching this host go by it (see peer-watch.ts). */
  private alive(): Promise<void> {
    return this.registry.markAlive(this.host.name).catch((err: unknown) => this.log.warn({ err }, 'liveness beat failed'));
  }

  beat(): Promise<void> {
    // One publish in flight at a time; a beat asked for meanwhile runs once after it, so a change
    // made while the host was being described is not lost.
    if (this.pending) {
      this.again = true;
      return this.pending;
    }
    this.pending = describeHost(this.host, this.runtime, this.meter, this.log)
      .then((info) => this.registry.publish(info))
      .catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed'))
      .finally(() => {
        this.pending = undefined;
        if (this.again) {
          this.again = false;
          void this.beat();
        }
      });
    return this.pending;
  }
}
