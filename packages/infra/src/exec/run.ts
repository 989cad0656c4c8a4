import { spawn, type SpawnOptions } from 'node:child_process';
import { CommandError } from '@ferry/core';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the process is killed (SIGTERM, then SIGKILL 2 s later). */
  timeoutMs?: number;
  /** Text written to stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string;
  /** Exit codes that count as success (default: 0 only). */
  okExitCodes?: number[];
  /** Called with each chunk of stdout as it arrives (progress parsing). */
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  signal?: AbortSignal;
  /**
   * Run the command inside this named network namespace. Entered with `nsenter --net`, not
   * `ip netns exec`: the latter remounts /sys, hiding the cgroup hierarchy, so LXC containers
   * started from it get no cgroups and cannot be frozen.
   */
  netns?: string;
}

export interface RunResult {
  command: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const TAIL = 4000;
const KEEP = 8 * 1024 * 1024;

/**
 * The one place ferry spawns processes. Arguments go as an array, never through a shell.
 * Failure (non-zero exit, signal, timeout, spawn error) throws a CommandError carrying the
 * command, exit code, signal, timed-out flag and the tail of stderr.
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = opts.netns ? ['nsenter', `--net=/run/netns/${opts.netns}`, '--', file, ...args] : [file, ...args];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    };
    const child = spawn(command[0]!, command.slice(1), spawnOpts);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
      killTimer.unref();
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          kill();
        }, opts.timeoutMs)
      : undefined;
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      if (stdout.length < KEEP) stdout += c;
      opts.onStdout?.(c);
    });
    child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      stderr = (stderr + c).slice(-KEEP);
      opts.onStderr?.(c);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const ok = !spawnError && !timedOut && signal === null && (opts.okExitCodes ?? [0]).includes(exitCode ?? -1);
      if (ok) {
        resolve({ command, exitCode: exitCode ?? 0, stdout, stderr, durationMs: Date.now() - started });
        return;
      }
      const tail = (spawnError ? `${spawnError.message}\n` : '') + stderr.slice(-TAIL);
      reject(
        new CommandError({
          command,
          exitCode: spawnError ? null : exitCode,
          signal: signal ?? null,
          timedOut,
          stderrTail: tail,
        }),
      );
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, sig) => finish(code, sig));
  });
}

/** Runs a command and reports only whether it exited 0 (for observations such as "does X exist"). */
export async function succeeds(file: string, args: readonly string[], opts: RunOptions = {}): Promise<boolean> {
  try {
    await run(file, args, opts);
    return true;
  } catch {
    return false;
  }
}
