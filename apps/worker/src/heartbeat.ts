import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ContainerSummary, HostInfo } from '@ferry/core';
import type { HostRegistry } from '@ferry/infra';
import type { HostConfig } from './config.js';
import type { Runtime } from './runtime/runtime.js';

/** What this host looks like now, for the registry (and the CLI's checks before it submits). */
export async function describeHost(host: HostConfig, runtime: Runtime): Promise<HostInfo> {
  const [caps, list, fs] = await Promise.all([runtime.capabilities(), runtime.list(), statfs(host.lxcPath)]);
  const containers: ContainerSummary[] = list.map((c) => ({
    name: c.name,
    state: c.state,
    ...(c.ip ? { ip: c.ip } : {}),
    ...(c.mac ? { mac: c.mac } : {}),
  }));
  return {
    name: host.name,
    address: host.address,
    sshPort: host.sshPort,
    sshUser: host.sshUser,
    lxcPath: host.lxcPath,
    capabilities: caps,
    containers,
    freeBytes: fs.bavail * fs.bsize,
    lastSeen: Date.now(),
    workerPid: process.pid,
  };
}

/** Publishes the host every `everyMs` and on demand (after each step). */
export class Heartbeat {
  private timer?: NodeJS.Timeout;
  private pending?: Promise<void>;

  constructor(
    private readonly host: HostConfig,
    private readonly runtime: Runtime,
    private readonly registry: HostRegistry,
    private readonly log: Logger,
    private readonly everyMs = 5000,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  beat(): Promise<void> {
    // Coalesce overlapping beats: one publish in flight at a time.
    this.pending ??= describeHost(this.host, this.runtime)
      .then((info) => this.registry.publish(info))
      .catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed'))
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}
