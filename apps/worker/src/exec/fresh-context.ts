import type { Logger } from 'pino';
import { run } from '@ferry/infra';
import { EXEC_PATH } from '../runtime/lxc.js';
import { execRunOptions } from '../runtime/exec-run-options.js';
import type { ContainerExecOptions } from '../runtime/runtime.js';
import { ContextCgroups } from './context-cgroup.js';

/** Exit code of a context that could not be set up (the command did not run); `env`'s and `chroot`'s. */
export const SETUP_FAILED_EXIT = 125;

/**
 * The init of a fresh context (PID 1 of its PID namespace), a fixed `sh -c` script: the cgroup
 * directories and the command come as its positional parameters, never inside its text, so no
 * argument is ever read by a shell. In order: it joins the context's cgroups (`0` is the writer
 * itself) before it forks anything, so every process of the context is in them; makes the root
 * mount read-only (in this mount namespace only: the host's is untouched) and mounts a private tmpfs
 * on /tmp; brings `lo` up (the only interface of the new network namespace). Then it runs the
 * command as its child rather than exec'ing it: a PID 1 without a handler ignores SIGINT and
 * SIGTERM, so the command must not be PID 1 for Ctrl-C to reach it, and its exit status (128+N for
 * signal N) becomes the context's. When it exits, the kernel kills whatever is left in the namespace.
 */
export const CONTEXT_INIT = [
  `fail() { echo "ferry run: cannot set up the context: $*" >&2; exit ${SETUP_FAILED_EXIT}; }`,
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do echo 0 > "$1/cgroup.procs" || fail "cannot join cgroup $1"; shift; n=$((n - 1)); done',
  'mount -o bind,remount,ro / || fail "cannot make / read-only"',
  'mount -t tmpfs -o mode=1777,nosuid,nodev ferry-run-tmp /tmp || fail "cannot mount a private /tmp"',
  'ip link set lo up || fail "cannot bring lo up"',
  '"$@"',
  'exit $?',
].join('\n');

/**
 * `unshare` arguments for a fresh context: new PID (forked: the init is PID 1; `/proc` mounted anew so
 * it shows that namespace), mount (private propagation: nothing mounted in it reaches the host),
 * UTS, IPC and network namespaces. `--kill-child`: the init gets SIGKILL if unshare dies, and with it
 * every process of the namespace. The host's root and filesystem otherwise, as the host has them.
 */
export function contextArgs(cgroupDirs: readonly string[], argv: readonly string[]): string[] {
  return [
    '--pid',
    '--fork',
    '--kill-child',
    '--mount-proc',
    '--mount',
    '--propagation',
    'private',
    '--uts',
    '--ipc',
    '--net',
    '--',
    'sh',
    '-c',
    CONTEXT_INIT,
    'ferry-run',
    String(cgroupDirs.length),
    ...cgroupDirs,
    ...argv,
  ];
}

/**
 * `ferry run` on a worker: a command in a fresh throwaway context on this host (the seed's
 * `vcontext --create`), run and ended as the exec service runs `Runtime.exec` (same options: the
 * output's callbacks, the process group, abort and timeout). Nothing outlives it: its cgroup is
 * emptied (SIGKILL) and removed whatever way it ended, and its mounts go with its mount namespace.
 */
export class FreshContexts {
  private readonly cgroups: ContextCgroups;
  /** Leftovers of a worker that died are removed before any new context starts. */
  private readonly swept: Promise<void>;

  constructor(
    private readonly host: string,
    private readonly log: Logger,
    cgroups?: ContextCgroups,
  ) {
    this.cgroups = cgroups ?? new ContextCgroups(host);
    this.swept = this.cgroups.sweep().then(
      (left) => void (left.length && log.warn({ cgroups: left }, 'ferry run: contexts left by an earlier worker were killed and removed')),
      (err) => log.error({ err }, 'ferry run: leftover contexts could not be removed'),
    );
  }

  /** Resolves with the command's exit code (125: the context could not be set up); throws as `run()` does. */
  async run(id: string, argv: readonly string[], opts: ContainerExecOptions = {}): Promise<{ exitCode: number }> {
    await this.swept;
    const dirs = await this.cgroups.create(id);
    try {
      // A clean environment, as `ferry exec` gives (nothing of the worker's, such as REDIS_URL).
      const r = await run('unshare', contextArgs(dirs, argv), { cwd: '/', env: { PATH: EXEC_PATH, HOME: '/root' }, ...execRunOptions(opts) });
      return { exitCode: r.exitCode };
    } finally {
      await this.cgroups.destroy(dirs).catch((err) => this.log.error({ err, execId: id, host: this.host }, 'ferry run: the context cgroup could not be removed'));
    }
  }
}
