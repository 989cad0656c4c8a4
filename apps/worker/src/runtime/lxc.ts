import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { readFile, readdir, writeFile, rename, stat, rm, mkdtemp, access, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { CommandError, ContainerState, FerryError, PreconditionError, randomMac, type Capabilities } from '@ferry/core';
import { filesOpenForWrite, pidsInPidNamespaceOf, run, signal } from '@ferry/infra';
import type { BindMount, ConfigMount, ConfigSummary, ContainerExecOptions, ContainerInfo, NetworkIdentity, Runtime } from './runtime.js';
import { cgroupPids, freezeCgroup, freezerDirOf, probeFreezer, thawCgroup } from './freezer.js';
import {
  bindMountSources,
  configValue,
  parseConfig,
  rewritePaths,
  rootfsPathOf,
  templateOf,
  withIdentity,
  type ConfigLine,
} from './lxc-config.js';
import { mountLines, withBindEntry, withoutLines } from './lxc-mounts.js';
import { initIdentity, liveBindMount, liveMountPoints, liveMountUnsupported, liveUnmount, type InitIdentity } from './live-mount.js';
import { isUnder } from './paths.js';
import { screenConfig } from './config-policy.js';
import { execRunOptions } from './exec-run-options.js';
import type { BindPolicy } from './mount-roots.js';

export interface LxcRuntimeOptions {
  /** LXC path (`-P`) holding this host's containers. */
  lxcPath: string;
  /** Seconds to wait for RUNNING after `lxc-start` and for STOPPED after `lxc-stop`. */
  stateTimeoutSec?: number;
  /**
   * The criu to check and to checkpoint/restore with (default `criu` on PATH; the worker passes
   * `findCriu()`, see criu.ts). A path must name a file called `criu`: lxc-checkpoint runs the
   * `criu` first on its PATH, and its directory is put first there for lxc-checkpoint alone.
   */
  criu?: string;
  /**
   * Whether this runtime offers checkpoint/restore at all (default true: it reports what
   * `criu check` says). The worker sets it from FERRY_LIVE=1 only, so a working criu alone does
   * not send every `--mode auto` migration down the live path; off, `checkpoint` is false with
   * LIVE_OFF_REASON and criu is not asked.
   */
  live?: boolean;
  /** Perl for the live mount helper. */
  perl?: string;
  /**
   * Host directories bind mounts may come from (the worker's --mount-root; none by default): a
   * config adopted from a peer with a bind mount from anywhere else is refused (config-policy.ts).
   */
  mountRoots?: readonly string[];
  /** Directories never to share besides the LXC path (the worker's state dir). */
  protectedDirs?: readonly string[];
}

const CMD_TIMEOUT = 60_000;

/** PATH inside the container: the worker's environment never goes in (`--clear-env`). */
export const EXEC_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `lxc-attach` arguments: all namespaces of the container, a clean environment, argv after `--`. */
export function attachArgs(lxcPath: string, name: string, argv: readonly string[]): string[] {
  return ['-P', lxcPath, '-n', name, '--clear-env', '-v', `PATH=${EXEC_PATH}`, '-v', 'HOME=/root', '--', ...argv];
}

/** How long one CRIU dump or restore may take. */
const DUMP_TIMEOUT_MS = 10 * 60_000;

/** Why a worker without FERRY_LIVE=1 reports no checkpoint capability. */
export const LIVE_OFF_REASON = 'live mode not enabled on this worker (FERRY_LIVE=1)';

/** First meaningful `Error (...)` line of `criu check`, without the source location. */
export function criuReason(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines
    .map((l) => /^Error \([^)]*\):\s*(.*)$/.exec(l)?.[1])
    .filter((m): m is string => !!m && !/^exited, status=\d+$/.test(m));
  return errors[0] ?? lines.find((l) => !/^Looks good/.test(l)) ?? 'criu check failed';
}

/** Parses `lxc-info -s -p -H` output (labelled when more than one field is asked for). */
export function parseLxcInfo(text: string): { state?: ContainerState; pid?: number } {
  const out: { state?: ContainerState; pid?: number } = {};
  for (const line of text.split('\n')) {
    const s = /^State:\s*(\S+)/.exec(line.trim());
    if (s) {
      const parsed = ContainerState.safeParse(s[1]);
      if (parsed.success) out.state = parsed.data;
    }
    const p = /^PID:\s*(\d+)/.exec(line.trim());
    if (p) out.pid = Number(p[1]);
  }
  return out;
}

/**
 * PIDs of host processes whose root directory is `rootfs` (same device and inode), i.e. processes
 * running inside that container whatever lxc-info says. lxc-info reaches a container's monitor
 * through an abstract unix socket, which lives in a network namespace: asked from another one it
 * answers STOPPED for a running container (measured here).
 */
export async function processesInRootfs(rootfs: string): Promise<number[]> {
  let target: { dev: number; ino: number };
  try {
    const st = await stat(rootfs);
    target = { dev: st.dev, ino: st.ino };
  } catch {
    return [];
  }
  const pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      try {
        const st = await stat(`/proc/${pid}/root`);
        if (st.dev === target.dev && st.ino === target.ino) found.push(Number(pid));
      } catch {
        /* gone, or not ours to see */
      }
    }),
  );
  return found.sort((a, b) => a - b);
}

/** Where destroyed containers wait for deletion: in the LXC path (same file system), without a config. */
const TRASH_DIR = '.ferry-trash';

export class LxcRuntime implements Runtime {
  readonly name = 'lxc';
  readonly lxcPath: string;
  private readonly stateTimeoutSec: number;
  private readonly criu: string;
  private readonly liveMode: boolean;
  private readonly perl: string;
  /** Where bind-mount sources may come from on this host. */
  readonly bindPolicy: BindPolicy;
  private caps: Promise<Capabilities> | undefined;
  /**
   * Containers this runtime froze through their cgroup, LXC's monitor not told yet (see freeze):
   * the telling, and the init pid they had then (to list their open files without asking LXC).
   */
  private readonly frozen = new Map<string, { told: Promise<void>; init: number }>();

  constructor(opts: LxcRuntimeOptions) {
    this.lxcPath = opts.lxcPath.replace(/\/+$/, '') || '/';
    this.stateTimeoutSec = opts.stateTimeoutSec ?? 15;
    this.criu = opts.criu ?? 'criu';
    this.liveMode = opts.live ?? true;
    this.perl = opts.perl ?? 'perl';
    this.bindPolicy = { roots: opts.mountRoots ?? [], lxcPath: this.lxcPath, protectedDirs: opts.protectedDirs ?? [] };
  }

  private lxc(tool: string, args: readonly string[], timeoutMs = CMD_TIMEOUT) {
    return run(tool, ['-P', this.lxcPath, ...args], { timeoutMs, env: { ...process.env, LC_ALL: 'C' } });
  }

  capabilities(): Promise<Capabilities> {
    this.caps ??= (async () => {
      const freezer = await probeFreezer();
      let checkpoint = false;
      let checkpointReason: string | undefined;
      if (!this.liveMode) {
        checkpointReason = LIVE_OFF_REASON;
      } else {
        try {
          await run(this.criu, ['check'], { timeoutMs: 30_000 });
          checkpoint = true;
        } catch (e) {
          checkpointReason =
            e instanceof CommandError
              ? e.failure.exitCode === null && !e.failure.timedOut
                ? `criu not available: ${e.failure.stderrTail.trim().split('\n')[0] ?? ''}`
                : criuReason(e.failure.stderrTail)
              : String(e);
        }
      }
      return {
        runtime: 'lxc',
        freeze: freezer.usable,
        checkpoint,
        ...(checkpointReason ? { checkpointReason } : {}),
        exec: true,
        mounts: true,
        setIdentity: true,
      };
    })();
    return this.caps;
  }

  containerDir(name: string): string {
    return join(this.lxcPath, name);
  }

  private configFile(name: string): string {
    return join(this.containerDir(name), 'config');
  }

  /** From `lxc.rootfs.path` when the config says so (read synchronously: it is small), else `<dir>/rootfs`. */
  rootfsDir(name: string): string {
    try {
      const lines = parseConfig(readFileSync(this.configFile(name), 'utf8'));
      return rootfsPathOf(configValue(lines, 'lxc.rootfs.path')) ?? join(this.containerDir(name), 'rootfs');
    } catch {
      return join(this.containerDir(name), 'rootfs');
    }
  }

  configPath(containerDir: string): string {
    return `${containerDir.replace(/\/+$/, '')}/config`;
  }

  /** `lxc.rootfs.path` (a dir backend's path; others count as the default) and the template comment. */
  describeConfig(text: string, containerDir: string): ConfigSummary {
    const root = rootfsPathOf(configValue(parseConfig(text), 'lxc.rootfs.path'));
    const template = templateOf(text);
    return {
      defaultRootfs: root === undefined || root.replace(/\/+$/, '') === `${containerDir.replace(/\/+$/, '')}/rootfs`,
      ...(template !== undefined ? { template } : {}),
    };
  }

  /** Replaces the config file at once (a temporary file renamed over it, its mode kept). */
  private async writeConfig(name: string, text: string): Promise<void> {
    const file = this.configFile(name);
    const st = await stat(file);
    const tmp = `${file}.ferry-tmp`;
    await writeFile(tmp, text, { mode: st.mode & 0o7777 });
    await rename(tmp, file);
  }

  private async config(name: string): Promise<ConfigLine[]> {
    return parseConfig(await readFile(this.configFile(name), 'utf8'));
  }

  private async hasConfig(name: string): Promise<boolean> {
    try {
      await access(this.configFile(name));
      return true;
    } catch {
      return false;
    }
  }

  async list(): Promise<ContainerInfo[]> {
    const r = await this.lxc('lxc-ls', ['-1']);
    const names = r.stdout
      .split(/\s+/)
      .map((s) => s.trim())
      .filter(Boolean);
    const out: ContainerInfo[] = [];
    for (const n of names) {
      const i = await this.info(n);
      if (i) out.push(i);
    }
    return out;
  }

  async info(name: string): Promise<ContainerInfo | null> {
    if (!(await this.hasConfig(name))) return null;
    let text: string;
    try {
      text = (await this.lxc('lxc-info', ['-n', name, '-s', '-p', '-H'])).stdout;
    } catch (e) {
      if (e instanceof CommandError && /doesn't exist/.test(e.failure.stderrTail)) return null;
      throw e;
    }
    const { state, pid } = parseLxcInfo(text);
    if (!state) throw new Error(`lxc-info ${name}: no state in output: ${text.trim()}`);
    const net = await this.network(name).catch((): NetworkIdentity => ({}));
    return {
      name,
      state,
      ...(pid !== undefined && state !== 'STOPPED' ? { pid } : {}),
      ...(net.ip ? { ip: net.ip } : {}),
      ...(net.mac ? { mac: net.mac } : {}),
    };
  }

  async network(name: string): Promise<NetworkIdentity> {
    const lines = await this.config(name);
    const ifaces = [...new Set(lines.map((l) => /^lxc\.net\.(\d+)\./.exec(l.key)?.[1]).filter((x): x is string => !!x))];
    // lxc.net.0 when it has an address, else the first interface with one, else lxc.net.0.
    const pick = ['0', ...ifaces].find((i) => configValue(lines, `lxc.net.${i}.ipv4.address`)) ?? '0';
    const ip = configValue(lines, `lxc.net.${pick}.ipv4.address`)?.split('/')[0];
    const mac = configValue(lines, `lxc.net.${pick}.hwaddr`)?.toLowerCase();
    const link = configValue(lines, `lxc.net.${pick}.link`);
    return { ...(ip ? { ip } : {}), ...(mac ? { mac } : {}), ...(link ? { link } : {}) };
  }

  async bindMounts(name: string): Promise<string[]> {
    return bindMountSources(await this.config(name), this.containerDir(name));
  }

  /**
   * The source's paths become this container's, then the config is screened as one from a peer
   * (config-policy.ts): a refused line throws CONFIG_NOT_ALLOWED before anything is written;
   * dropped lines are commented out and returned for the log.
   */
  async adoptConfig(name: string, from: { containerDir: string; rootfsDir: string }): Promise<{ dropped: string[] }> {
    const file = this.configFile(name);
    const before = await readFile(file, 'utf8');
    let text = rewritePaths(before, from.containerDir, this.containerDir(name));
    const defaultRootfs = join(this.containerDir(name), 'rootfs');
    text = rewritePaths(text, from.rootfsDir, defaultRootfs);
    const screened = await screenConfig(text, { containerDir: this.containerDir(name), rootfs: defaultRootfs, policy: this.bindPolicy });
    text = screened.text;
    if (text === before) return { dropped: screened.dropped };
    const st = await stat(file);
    const tmp = `${file}.ferry-tmp`;
    await writeFile(tmp, text, { mode: st.mode & 0o7777 });
    await rename(tmp, file);
    return { dropped: screened.dropped };
  }

  private async stateOf(name: string): Promise<ContainerState | null> {
    return (await this.info(name))?.state ?? null;
  }

  private async requireState(name: string): Promise<ContainerState> {
    const s = await this.stateOf(name);
    if (!s) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist in ${this.lxcPath}`);
    return s;
  }

  private async waitState(name: string, state: 'RUNNING' | 'STOPPED' | 'FROZEN'): Promise<void> {
    await this.lxc('lxc-wait', ['-n', name, '-s', state, '-t', String(this.stateTimeoutSec)], (this.stateTimeoutSec + 10) * 1000);
    const now = await this.stateOf(name);
    if (now !== state) {
      throw new PreconditionError('CONTAINER_STATE', `container ${name} is ${now ?? 'gone'}, expected ${state}`);
    }
  }

  async start(name: string): Promise<void> {
    await this.settled(name);
    const s = await this.requireState(name);
    if (s === 'RUNNING') return;
    if (s === 'FROZEN') throw new PreconditionError('CONTAINER_FROZEN', `container ${name} is frozen; thaw it instead of starting it`);
    // lxc-start -d prints only "failed to start"; the reason is in the log. Use the container's
    // own log file when it has one (so its logging is left as configured), else a temporary one.
    const configured = configValue(await this.config(name), 'lxc.log.file');
    const dir = configured ? undefined : await mkdtemp(join(tmpdir(), 'ferry-lxc-start-'));
    const log = configured ?? join(dir!, 'start.log');
    const sizeBefore = configured ? await stat(configured).then((s) => s.size, () => 0) : 0;
    try {
      await this.lxc('lxc-start', ['-n', name, '-d', ...(configured ? [] : ['-o', log, '-l', 'ERROR'])]);
    } catch (e) {
      const detail = await readFile(log).then((b) => b.subarray(sizeBefore).toString('utf8'), () => '');
      if (e instanceof CommandError) {
        throw new CommandError(
          { ...e.failure, stderrTail: `${e.failure.stderrTail}\n${detail}`.trim().slice(-4000) },
          { code: 'CONTAINER_START_FAILED', retryable: false },
        );
      }
      throw e;
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
    await this.waitState(name, 'RUNNING');
  }

  /**
   * Kills the container at once. On a FROZEN container every task gets its SIGKILL while still
   * frozen, then `lxc-stop -k` thaws the cgroup: each task takes the kill before it returns to user
   * space, so nothing runs again. (`lxc-stop -k` alone signals only init: measured here, a writer
   * that was not init ran on for a moment after the thaw and wrote after the final sync.)
   */
  async stop(name: string): Promise<void> {
    // Frozen by this runtime and LXC told so (settled): FROZEN, with the init the freeze saw. The
    // container lock keeps anyone else from acting on it meanwhile; no lxc-info needed (twice).
    const frozenInit = await this.settled(name);
    const s = frozenInit !== undefined ? 'FROZEN' : await this.requireState(name);
    if (s === 'STOPPED') return;
    if (s === 'FROZEN') {
      const init = frozenInit ?? (await this.info(name))?.pid;
      if (init !== undefined) {
        // SIGKILL every task while frozen: on thaw each dies before running one more instruction.
        const probe = await probeFreezer();
        const dir = probe.kind !== 'none' ? await freezerDirOf(init, probe) : undefined;
        const pids = new Set([...(await pidsInPidNamespaceOf(init)), ...(dir ? await cgroupPids(dir) : [])]);
        for (const pid of pids) signal(pid, 'SIGKILL');
        if (dir) {
          // Thawing the cgroup ourselves lets them die at once; lxc-stop -k took 0.5-0.7 s for it
          // here, all of it inside the migration's downtime. The monitor then sees init exit.
          await thawCgroup(dir, probe.kind as 'v1' | 'v2');
          const deadline = Date.now() + 5000;
          while ((await cgroupPids(dir)).length > 0 && Date.now() < deadline) await sleep(5);
          if ((await cgroupPids(dir)).length === 0) {
            // lxc-wait's exit 0 is LXC's own word that it reached STOPPED (no lxc-info after it).
            const gone = await this.lxc('lxc-wait', ['-n', name, '-s', 'STOPPED', '-t', '5'], 15_000).then(() => true, () => false);
            if (gone) return;
          }
        }
      }
    }
    try {
      await this.lxc('lxc-stop', ['-n', name, '-k']);
    } catch (e) {
      // Already stopped by someone else meanwhile is fine; anything else is an error.
      if ((await this.stateOf(name)) !== 'STOPPED') throw e;
    }
    await this.waitState(name, 'STOPPED');
  }

  async openForWrite(name: string): Promise<string[]> {
    // Frozen by this runtime: its init is known and cannot have changed (no lxc-info in the window).
    const init = this.frozen.get(name)?.init ?? (await this.info(name))?.pid;
    if (init === undefined) return [];
    const rootfs = relative(this.containerDir(name), this.rootfsDir(name));
    const out = new Set<string>();
    const lists = await Promise.all((await pidsInPidNamespaceOf(init)).map((pid) => filesOpenForWrite(pid)));
    for (const l of lists) for (const p of l) out.add(join(rootfs, p));
    return [...out];
  }

  async freeze(name: string): Promise<number | void> {
    const i = await this.info(name);
    if (!i) throw new PreconditionError('CONTAINER_MISSING', `container ${name} does not exist in ${this.lxcPath}`);
    if (i.state === 'FROZEN') return;
    if (i.state !== 'RUNNING') throw new PreconditionError('CONTAINER_NOT_RUNNING', `cannot freeze ${name}: it is ${i.state}`);
    // lxc-freeze sleeps a whole second when its first look finds the cgroup still FREEZING, the
    // container down all along. Freeze its cgroup directly first (ms); lxc-freeze then finds it
    // FROZEN at once and tells the monitor, whose state lxc-info reports.
    const probe = await probeFreezer();
    const dir = i.pid !== undefined && probe.kind !== 'none' ? await freezerDirOf(i.pid, probe) : undefined;
    const at = Date.now(); // tasks stop at the freezer's first write
    if (!dir) {
      await this.lxc('lxc-freeze', ['-n', name]);
      await this.waitState(name, 'FROZEN');
      return undefined;
    }
    await freezeCgroup(dir, probe.kind as 'v1' | 'v2', this.stateTimeoutSec * 1000);
    // The tasks are stopped now. Telling LXC's monitor (lxc-freeze finds the cgroup FROZEN at
    // once; then lxc-wait and lxc-info) costs three tool runs inside the frozen window: it goes on
    // beside the final pass, and whatever acts on the container next waits for it (settled).
    const told = (async () => {
      await this.lxc('lxc-freeze', ['-n', name]);
      await this.waitState(name, 'FROZEN');
    })();
    told.catch(() => undefined); // awaited by settled()
    this.frozen.set(name, { told, init: i.pid! });
    return at;
  }

  /**
   * Waits until LXC's monitor knows of a freeze this runtime made (its failure is thrown here);
   * returns the init pid the freeze saw, or undefined when this runtime has no freeze of it pending.
   */
  private async settled(name: string): Promise<number | undefined> {
    const f = this.frozen.get(name);
    if (!f) return undefined;
    this.frozen.delete(name);
    await f.told;
    return f.init;
  }

  async unfreeze(name: string): Promise<void> {
    await this.settled(name);
    const s = await this.requireState(name);
    if (s === 'RUNNING') return this.thawRestored(name);
    if (s !== 'FROZEN') return;
    await this.lxc('lxc-unfreeze', ['-n', name]);
    await this.waitState(name, 'RUNNING');
  }

  /**
   * CRIU restores the freezer state it dumped, and ferry dumps a frozen container (nothing may
   * change after the final pass): a restored copy comes back FROZEN while LXC reports RUNNING, and
   * lxc-unfreeze, believing that, does nothing. Thaws its cgroup directly; a no-op otherwise.
   */
  private async thawRestored(name: string): Promise<void> {
    const i = await this.info(name);
    const probe = await probeFreezer();
    const cgroup = i?.pid !== undefined && probe.kind !== 'none' ? await freezerDirOf(i.pid, probe) : undefined;
    if (cgroup) await thawCgroup(cgroup, probe.kind as 'v1' | 'v2');
  }

  /**
   * Dumps the container into `dir` with CRIU (`lxc-checkpoint -s`): it is stopped once dumped.
   * The dump runs in its own process group under a lock beside `dir`, so it outlives a worker
   * killed meanwhile; a later call waits for that dump and takes it when CRIU finished it (its
   * `stats-dump` image is written only on success). A container found stopped with no finished
   * dump has lost its process state: CHECKPOINT_LOST, never a dump of nothing.
   */
  async checkpoint(name: string, dir: string): Promise<void> {
    await this.settled(name);
    const lock = `${dir.replace(/\/+$/, '')}.lock`;
    await mkdir(dir, { recursive: true });
    await run('flock', ['--exclusive', '--timeout', String(DUMP_TIMEOUT_MS / 1000 + 60), lock, 'true'], { timeoutMs: DUMP_TIMEOUT_MS + 90_000 });
    const finished = await access(join(dir, 'stats-dump')).then(() => true, () => false);
    if (finished) {
      await this.waitState(name, 'STOPPED');
      return;
    }
    if ((await this.stateOf(name)) === 'STOPPED') {
      throw new PreconditionError('CHECKPOINT_LOST', `container ${name} stopped without a finished dump in ${dir}: its process state is lost`, { container: name, dir });
    }
    // A dump wants an empty dir: whatever an unfinished one left goes.
    for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true });
    await this.lxcCheckpoint(name, dir, ['-s'], 'dump.log', lock);
  }

  /** Restores the container from the dump in `dir` (`lxc-checkpoint -r -d`) and waits for RUNNING. */
  async restore(name: string, dir: string): Promise<void> {
    await this.lxcCheckpoint(name, dir, ['-r', '-d'], 'restore.log');
    await this.waitState(name, 'RUNNING');
    await this.thawRestored(name);
  }

  /**
   * lxc-checkpoint with this runtime's criu first on its PATH. lxc-checkpoint says only that CRIU
   * failed: a failure carries CRIU's own last errors from its log in `dir`.
   */
  private async lxcCheckpoint(name: string, dir: string, args: readonly string[], log: string, lock?: string): Promise<void> {
    const path = process.env.PATH ?? EXEC_PATH;
    const env = { ...process.env, LC_ALL: 'C', PATH: this.criu.includes('/') ? `${dirname(this.criu)}:${path}` : path };
    // Output to a file, not pipes: the restore leaves daemons (lxc monitor, CRIU finishing) holding
    // it. Not in `dir`: a dump wants an empty one.
    const outDir = await mkdtemp(join(tmpdir(), 'ferry-lxc-checkpoint-'));
    try {
      // Its own process group: a kill on timeout reaches criu too, not only lxc-checkpoint.
      const argv = ['-P', this.lxcPath, '-n', name, '-D', dir, ...args];
      // Under `lock` (flock, not inherited by lxc-checkpoint: CRIU refuses fds it cannot map).
      const [cmd, cmdArgs] = lock ? ['flock', ['--exclusive', '--close', lock, 'lxc-checkpoint', ...argv]] : ['lxc-checkpoint', argv];
      await run(cmd, cmdArgs, { timeoutMs: DUMP_TIMEOUT_MS, env, outputFile: join(outDir, 'out'), processGroup: true });
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      const criuErrors = (await readFile(join(dir, log), 'utf8').catch(() => ''))
        .split('\n')
        // Root without CAP_SYS_RESOURCE: CRIU logs this as an error and carries on.
        .filter((l) => /\bError \(/.test(l) && !/RLIMIT_NOFILE/.test(l))
        .slice(-5);
      // A dump or restore that ran out of time is not tried again while the container is down:
      // the migration rolls back (the source resumes) instead.
      const retryable = e.retryable && !e.failure.timedOut;
      if (!criuErrors.length && retryable === e.retryable) throw e;
      throw new CommandError(
        { ...e.failure, stderrTail: `${e.failure.stderrTail.trim()}${criuErrors.length ? `\n${join(dir, log)}:\n${criuErrors.join('\n')}` : ''}`.slice(-4000) },
        { code: e.code, retryable },
      );
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  }

  async destroy(name: string): Promise<void> {
    await this.settled(name);
    const s = await this.stateOf(name);
    if (s === null) return;
    if (s !== 'STOPPED') {
      throw new PreconditionError('CONTAINER_NOT_STOPPED', `refusing to destroy ${name}: it is ${s}`);
    }
    const rootfs = this.rootfsDir(name);
    if (!isUnder(rootfs, this.containerDir(name))) {
      // lxc-destroy deletes whatever lxc.rootfs.path names: never let it reach outside the dir.
      throw new PreconditionError(
        'ROOTFS_OUTSIDE_CONTAINER_DIR',
        `refusing to destroy ${name}: its rootfs ${rootfs} lies outside ${this.containerDir(name)}`,
      );
    }
    const inside = await processesInRootfs(rootfs);
    if (inside.length) {
      throw new PreconditionError(
        'CONTAINER_IN_USE',
        `refusing to destroy ${name}: lxc-info says STOPPED but processes ${inside.slice(0, 5).join(', ')} run in its rootfs (started from another network namespace?)`,
        { pids: inside },
      );
    }
    // Something mounted inside (a host's bind or tmpfs) would move along and never be deleted:
    // refused, as lxc-destroy refused it, for a person to look at.
    const dir = this.containerDir(name);
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const mounted = mountinfo
      .split('\n')
      .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((m) => m.startsWith(`${dir}/`));
    if (mounted.length) {
      throw new PreconditionError('CONTAINER_DIR_BUSY', `refusing to destroy ${name}: ${mounted.slice(0, 3).join(', ')} mounted inside ${dir}`, { mounts: mounted });
    }
    // Out of LXC's sight at once (a rename within the LXC path), deleted in the background:
    // lxc-destroy took 28 s over 100,000 files here, all of it inside a migration's total time.
    const trash = join(this.lxcPath, TRASH_DIR, `${name}-${Date.now()}-${process.pid}`);
    await mkdir(join(this.lxcPath, TRASH_DIR), { recursive: true });
    await rename(this.containerDir(name), trash);
    void this.emptyTrash();
  }

  /** Deletes what `destroy` moved aside (also at worker start, for a worker that died meanwhile). */
  emptyTrash(): Promise<void> {
    const dir = join(this.lxcPath, TRASH_DIR);
    return readdir(dir)
      .then(async (entries) => {
        for (const e of entries) await run('rm', ['-rf', '--one-file-system', '--', join(dir, e)], { timeoutMs: 3_600_000 });
      })
      .catch(() => undefined);
  }

  async template(name: string): Promise<string | undefined> {
    return templateOf(await readFile(this.configFile(name), 'utf8'));
  }

  async setIdentity(name: string, id: { hostname: string; mac: string; ip?: string }): Promise<{ ipv4?: string; notes: string[] }> {
    const s = await this.requireState(name);
    if (s !== 'STOPPED') throw new PreconditionError('CONTAINER_STATE', `cannot change the identity of ${name}: it is ${s}`);
    const file = this.configFile(name);
    const before = await readFile(file, 'utf8');
    const edit = withIdentity(before, id, () => randomMac());
    if (edit.text !== before) {
      const st = await stat(file);
      const tmp = `${file}.ferry-tmp`;
      await writeFile(tmp, edit.text, { mode: st.mode & 0o7777 });
      await rename(tmp, file);
    }
    return { ...(edit.ipv4 ? { ipv4: edit.ipv4 } : {}), notes: edit.notes };
  }

  /** `lxc-attach` into every namespace of the container (the `vcontext --migrate` of LXC). */
  async exec(name: string, argv: readonly string[], opts: ContainerExecOptions = {}): Promise<{ exitCode: number }> {
    // Every exit code lxc-attach passes on is the command's.
    const r = await run('lxc-attach', attachArgs(this.lxcPath, name, argv), { cwd: '/', env: { PATH: process.env.PATH ?? EXEC_PATH, LC_ALL: 'C' }, ...execRunOptions(opts) });
    return { exitCode: r.exitCode };
  }

  /** The config's `lxc.mount.entry` lines. */
  async configMounts(name: string): Promise<ConfigMount[]> {
    return mountLines(await readFile(this.configFile(name), 'utf8'), this.rootfsDir(name));
  }

  /** Appends `lxc.mount.entry = <source> <target> none bind,create=dir[,ro] 0 0`. */
  async addConfigMount(name: string, m: BindMount): Promise<void> {
    const text = await readFile(this.configFile(name), 'utf8');
    await this.writeConfig(name, withBindEntry(text, m.source, m.target, m.readOnly));
  }

  async removeConfigMounts(name: string, target: string): Promise<void> {
    const text = await readFile(this.configFile(name), 'utf8');
    const lines = mountLines(text, this.rootfsDir(name))
      .filter((m) => m.target === target)
      .map((m) => m.line);
    if (lines.length) await this.writeConfig(name, withoutLines(text, lines));
  }

  liveMounts(c: ContainerInfo): Promise<Set<string> | undefined> {
    return liveMountPoints(c.pid);
  }

  /** In the mount namespace of the container's init (see live-mount.ts). */
  async liveBindMount(c: ContainerInfo, m: BindMount): Promise<void> {
    await this.live(c, (init) => liveBindMount(init, m.source, m.target, m.readOnly, this.perl));
  }

  async liveUnmount(c: ContainerInfo, target: string): Promise<void> {
    await this.live(c, (init) => liveUnmount(init, target, this.perl));
  }

  /** Runs a live (un)mount; an environment without the means to do it is said so plainly. */
  private async live(c: ContainerInfo, fn: (init: InitIdentity) => Promise<void>): Promise<void> {
    const why = liveMountUnsupported();
    if (why) throw new FerryError('LIVE_MOUNT_UNSUPPORTED', `${why}; stop the container, change the mount, start it again`);
    if (c.pid === undefined) throw new PreconditionError('CONTAINER_NOT_RUNNING', `container ${c.name} is ${c.state}, not running`);
    // The PID must still be this container's init (checked here and again by the helper).
    await fn(await initIdentity(c.pid, this.rootfsDir(c.name)));
  }
}
