import { rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { capabilityMissing, FerryError, type Capabilities } from '@ferry/core';
import type { BindMount, ConfigMount, ContainerInfo, NetworkIdentity, Runtime } from '../runtime/runtime.js';
import type { FakeContainer, FakeWorld } from './world.js';
import { CHECKPOINT_DIR } from '../checkpoint/on-disk.js';

/**
 * FAKE. The worker's `Runtime` over one host of a FakeWorld: containers change state at once, in
 * memory; no LXC, no root. It refuses what LXC would refuse (starting a container whose config
 * still names another host's paths, freezing a stopped one, destroying a running one) with the
 * stable code FAKE_RUNTIME_REFUSED, so a step that asks for the impossible fails loudly.
 *
 * Capabilities, declared honestly: freeze and setIdentity yes; checkpoint only where the world's
 * host was configured with it; exec and mounts no (their methods refuse with `capabilityMissing`).
 */
export class FakeRuntime implements Runtime {
  readonly name = 'fake';

  constructor(
    private readonly world: FakeWorld,
    readonly host: string,
    /** Where this host's containers live, as paths: a temp dir, never written by the runtime. */
    readonly lxcPath: string,
  ) {}

  async capabilities(): Promise<Capabilities> {
    const checkpoint = this.world.host(this.host).checkpoint;
    return {
      runtime: 'fake',
      freeze: true,
      checkpoint,
      ...(checkpoint ? {} : { checkpointReason: 'fake runtime: checkpoint not configured for this host' }),
      exec: false,
      execReason: 'fake runtime: no processes to run commands in',
      mounts: false,
      mountsReason: 'fake runtime: no mount namespaces',
      setIdentity: true,
    };
  }

  /** Containers with a config here (a dir holding only a copy's marker is not one). */
  async list(): Promise<ContainerInfo[]> {
    return [...this.world.host(this.host).containers.values()].filter((c) => c.config).map((c) => this.infoOf(c));
  }

  async info(name: string): Promise<ContainerInfo | null> {
    const c = this.world.container(this.host, name);
    return c?.config ? this.infoOf(c) : null;
  }

  containerDir(name: string): string {
    return join(this.lxcPath, name);
  }

  rootfsDir(name: string): string {
    return join(this.lxcPath, name, 'rootfs');
  }

  async network(name: string): Promise<NetworkIdentity> {
    const cfg = this.known(name).config!;
    return { ...(cfg.ip ? { ip: cfg.ip } : {}), ...(cfg.mac ? { mac: cfg.mac } : {}), link: 'fakebr0' };
  }

  async bindMounts(name: string): Promise<string[]> {
    return [...this.known(name).config!.bindMounts];
  }

  async adoptConfig(name: string, _from: { containerDir: string; rootfsDir: string }): Promise<{ dropped: string[] }> {
    this.known(name).config!.pathsOf = this.host;
    return { dropped: [] };
  }

  async start(name: string): Promise<void> {
    const c = this.known(name);
    if (c.state !== 'STOPPED') this.refuse(`start ${name}: it is ${c.state}`);
    if (c.config!.pathsOf !== this.host) this.refuse(`start ${name}: its config still names ${c.config!.pathsOf}'s paths (not adopted)`);
    this.world.setState(this.host, name, 'RUNNING');
  }

  async stop(name: string): Promise<void> {
    this.known(name);
    this.world.setState(this.host, name, 'STOPPED');
  }

  async freeze(name: string): Promise<number | void> {
    const c = this.known(name);
    if (c.state === 'STOPPED') this.refuse(`freeze ${name}: it is STOPPED`);
    this.world.setState(this.host, name, 'FROZEN');
  }

  async unfreeze(name: string): Promise<void> {
    const c = this.known(name);
    if (c.state === 'STOPPED') this.refuse(`thaw ${name}: it is STOPPED`);
    this.world.setState(this.host, name, 'RUNNING');
  }

  /** Dumps into `dir` (kept in the world under this host) and stops it. Only where configured. */
  async checkpoint(name: string, dir: string): Promise<void> {
    const caps = await this.capabilities();
    if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `checkpoint ${name}`, this.host);
    const c = this.known(name);
    // As LXC's: a dump already taken into `dir` is taken as is; stopped without one, the state is lost.
    if (c.state === 'STOPPED' && this.world.readRecord(this.host, DUMPS, dir)) return;
    if (c.state === 'STOPPED') throw new FerryError('CHECKPOINT_LOST', `container ${name} stopped without a finished dump in ${dir}: its process state is lost`, { retryable: false });
    this.world.writeRecord(this.host, DUMPS, dir, { files: [...c.files] });
    this.world.setState(this.host, name, 'STOPPED');
  }

  /**
   * Starts from the dump sent into the container's dir, or from its checkpoint on disk when `dir`
   * is the checkpoint dir (the step removes that after the start). Only where configured.
   */
  async restore(name: string, dir: string): Promise<void> {
    const caps = await this.capabilities();
    if (!caps.checkpoint) throw capabilityMissing(caps, 'checkpoint', `restore ${name}`, this.host);
    const c = this.known(name);
    if (basename(dir) === CHECKPOINT_DIR) {
      if (!c.checkpoint) this.refuse(`restore ${name}: no checkpoint in its dir`);
    } else {
      if (!c.dump) this.refuse(`restore ${name}: no dump in its dir`);
      delete c.dump;
    }
    await this.start(name);
  }

  async destroy(name: string): Promise<void> {
    const c = this.world.container(this.host, name);
    if (!c) return;
    if (c.state !== 'STOPPED') this.refuse(`destroy ${name}: it is ${c.state}`);
    this.world.remove(this.host, name);
    // What the fake steps wrote of it on disk (a checkpoint's manifest, for the heartbeat) goes too.
    rmSync(this.containerDir(name), { recursive: true, force: true });
  }

  async template(name: string): Promise<string | undefined> {
    return this.world.container(this.host, name)?.config?.template;
  }

  async setIdentity(name: string, id: { hostname: string; mac: string; ip?: string }): Promise<{ ipv4?: string; notes: string[] }> {
    const c = this.known(name);
    if (c.state !== 'STOPPED') this.refuse(`set the identity of ${name}: it is ${c.state}`);
    const cfg = c.config!;
    cfg.hostname = id.hostname;
    cfg.mac = id.mac;
    if (id.ip) cfg.ip = id.ip;
    else delete cfg.ip;
    return { ...(id.ip ? { ipv4: id.ip } : {}), notes: id.ip ? [] : ['no address given: static address removed'] };
  }

  async exec(name: string): Promise<{ exitCode: number }> {
    throw capabilityMissing(await this.capabilities(), 'exec', `exec in ${name}`, this.host);
  }

  async configMounts(name: string): Promise<ConfigMount[]> {
    throw capabilityMissing(await this.capabilities(), 'mounts', `mounts of ${name}`, this.host);
  }

  async addConfigMount(name: string, _m: BindMount): Promise<void> {
    throw capabilityMissing(await this.capabilities(), 'mounts', `mount into ${name}`, this.host);
  }

  async removeConfigMounts(name: string, _target: string): Promise<void> {
    throw capabilityMissing(await this.capabilities(), 'mounts', `unmount in ${name}`, this.host);
  }

  async liveMounts(_c: ContainerInfo): Promise<Set<string> | undefined> {
    return undefined;
  }

  async liveBindMount(c: ContainerInfo, _m: BindMount): Promise<void> {
    throw capabilityMissing(await this.capabilities(), 'mounts', `mount into ${c.name}`, this.host);
  }

  async liveUnmount(c: ContainerInfo, _target: string): Promise<void> {
    throw capabilityMissing(await this.capabilities(), 'mounts', `unmount in ${c.name}`, this.host);
  }

  private infoOf(c: FakeContainer): ContainerInfo {
    return {
      name: c.name,
      state: c.state,
      ...(c.pid !== undefined ? { pid: c.pid } : {}),
      ...(c.config?.ip ? { ip: c.config.ip } : {}),
      ...(c.config?.mac ? { mac: c.config.mac } : {}),
    };
  }

  /** The container with a config here, or LXC's "does not exist". */
  private known(name: string): FakeContainer {
    const c = this.world.container(this.host, name);
    if (!c?.config) this.refuse(`${name} does not exist on ${this.host}`);
    return c;
  }

  private refuse(what: string): never {
    throw new FerryError('FAKE_RUNTIME_REFUSED', `fake runtime on ${this.host}: ${what}`);
  }
}

/** The world's scratch key under which a host's checkpoint dumps are kept (by dump dir). */
export const DUMPS = '.dumps';
