import { spawn, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { CommandError } from '@ferry/core';

/** After a killed command exits, how long its output pipes may stay open before the call ends. */
const PIPE_GRACE_MS = 500;

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
  /** First signal sent on timeout or abort (default SIGTERM); SIGKILL follows 2 s later. */
  killSignal?: NodeJS.Signals;
  /**
   * Start the command as the leader of a new process group (and session): kills on timeout or
   * abort then go to the whole group, and `onSpawn`'s pid is the group id.
   */
  processGroup?: boolean;
  /** Called once the process has started, with its PID (e.g. to signal it later). */
  onSpawn?: (pid: number) => void;
  /** Called with each raw chunk of stdout (binary-safe streaming); `onStdout` still gets text. */
  onStdoutBytes?: (chunk: Buffer) => void;
  onStderrBytes?: (chunk: Buffer) => void;
  /** Characters of stdout (its start) and of stderr (its end) kept for the result (default 8 Mi, at least 1). */
  keep?: number;
  /**
   * stdout and stderr go to this file (appended), not to pipes; a failure's stderr tail is the
   * file's. For a command that leaves a daemon behind holding its output (`lxc-checkpoint -r -d`):
   * with pipes the call would wait for the daemon, and once they closed, the daemon (CRIU still
   * finishing a restore) would die of SIGPIPE, leaving the restored tasks stopped.
   */
  outputFile?: string;
}

export interface RunResult {
  command: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

const TAIL = 4000;

/** The last TAIL bytes of a file, as text ('' when it cannot be read). */
function fileTail(file: string): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, TAIL));
    readSync(fd, buf, 0, buf.length, size - buf.length);
    return buf.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
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
    let outFd: number | undefined;
    try {
      if (opts.outputFile !== undefined) outFd = openSync(opts.outputFile, 'a', 0o600);
    } catch (e) {
      reject(new CommandError({ command, exitCode: null, signal: null, timedOut: false, stderrTail: `${opts.outputFile}: ${(e as Error).message}` }));
      return;
    }
    const out = outFd ?? 'pipe';
    const spawnOpts: SpawnOptions = {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', out, out],
      ...(opts.processGroup ? { detached: true } : {}),
    };
    const child = spawn(command[0]!, command.slice(1), spawnOpts);
    if (outFd !== undefined) closeSync(outFd); // the child has its own copy
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const signalChild = (sig: NodeJS.Signals) => {
      if (opts.processGroup && child.pid) {
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* the group is gone */
        }
      } else child.kill(sig);
    };
    let killed = false;
    const kill = () => {
      killed = true;
      signalChild(opts.killSignal ?? 'SIGTERM');
      killTimer = setTimeout(() => signalChild('SIGKILL'), 2000);
      killTimer.unref();
    };
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          kill();
        }, opts.timeoutMs)
      : undefined;
    const onAbort = () => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort(); // aborted before the spawn (e.g. while queued for a slot)

    const keep = Math.max(1, opts.keep ?? KEEP);
    const onOut = (c: string) => {
      if (!c) return;
      if (stdout.length < keep) stdout += c;
      opts.onStdout?.(c);
    };
    const onErr = (c: string) => {
      if (!c) return;
      stderr = (stderr + c).slice(-keep);
      opts.onStderr?.(c);
    };
    // Raw chunks when asked for (the text is then decoded here, as setEncoding would).
    const text = (stream: NodeJS.ReadableStream | null, raw: ((b: Buffer) => void) | undefined, onText: (c: string) => void) => {
      if (!stream) return;
      if (!raw) {
        stream.setEncoding('utf8').on('data', onText);
        return;
      }
      const decoder = new StringDecoder('utf8');
      stream.on('data', (b: Buffer) => {
        raw(b);
        onText(decoder.write(b));
      });
      stream.on('end', () => onText(decoder.end()));
    };
    text(child.stdout, opts.onStdoutBytes, onOut);
    text(child.stderr, opts.onStderrBytes, onErr);
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
      if (opts.outputFile !== undefined) stderr = fileTail(opts.outputFile);
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
    let done = false;
    const once = (code: number | null, sig: NodeJS.Signals | null, e?: Error) => {
      if (done) return;
      done = true;
      finish(code, sig, e);
    };
    child.on('error', (e) => once(null, null, e));
    child.on('close', (code, sig) => once(code, sig));
    // A command killed on timeout or abort may leave children behind that hold its output pipes
    // open ('close' would wait for them): once it has exited, its output is given a moment, then
    // the call ends without them.
    child.on('exit', (code, sig) => {
      if (!killed) return;
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        once(code, sig);
      }, PIPE_GRACE_MS).unref();
    });
  });
}

/**
 * A long-lived helper that talks over its stdin and stdout (argv array, no shell). stderr is kept
 * (its tail) for messages. The helper is killed with the calling process's exit by its own end of
 * stdin closing; `stop()` ends it at once.
 */
export interface Helper {
  readonly pid: number | undefined;
  write(text: string): void;
  onStdout(fn: (chunk: Buffer) => void): void;
  /** Resolves with the exit code (or signal name) once it has ended. */
  readonly exited: Promise<number | string>;
  stderrTail(): string;
  stop(): void;
}

export function startHelper(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Helper {
  const child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-TAIL);
  });
  child.stdin!.on('error', () => undefined); // a helper that died: its exit says so
  const exited = new Promise<number | string>((resolve) => {
    child.on('error', (e) => {
      stderr += `${e.message}\n`;
      resolve('spawn-error');
    });
    child.on('close', (code, sig) => resolve(code ?? sig ?? 'unknown'));
  });
  return {
    pid: child.pid,
    write: (text) => void child.stdin!.write(text),
    onStdout: (fn) => void child.stdout!.on('data', fn),
    exited,
    stderrTail: () => stderr,
    stop: () => void child.kill('SIGKILL'),
  };
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
