import { readFile } from 'node:fs/promises';
import { run, signal } from '@ferry/infra';

/** A process bench:scale started (through `run`), until it is stopped. */
export interface Child {
  readonly pid: number;
  /** Settles when it has exited, however. */
  readonly exited: Promise<void>;
  /** SIGTERM, then up to `graceMs` for it to end as it does (a CPU profile is written then), then SIGKILL. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a long-running child (argv array). With `onLine`, each line of its stdout is handed over
 * (its stderr tail is kept for an error); with `outputFile`, both go to that file. Resolves once
 * it has spawned; its exit before `stop()` is reported to `onExit`.
 */
export async function startChild(argv: string[], o: { env?: NodeJS.ProcessEnv; outputFile?: string; onLine?: (line: string) => void; onExit?: (e: unknown) => void }): Promise<Child> {
  const abort = new AbortController();
  let pid = 0;
  let partial = '';
  let stopping = false;
  let exited: Promise<void> = Promise.resolve();
  const spawned = new Promise<void>((resolve) => {
    const done = run(argv[0]!, argv.slice(1), {
      ...(o.env ? { env: o.env } : {}),
      ...(o.outputFile ? { outputFile: o.outputFile } : {}),
      signal: abort.signal,
      keep: 16 * 1024, // stdout is read line by line here, not kept
      onSpawn: (p) => {
        pid = p;
        resolve();
      },
      onStdout: (chunk) => {
        if (!o.onLine) return;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line) o.onLine(line);
      },
    });
    exited = done.then(
      () => undefined,
      (e: unknown) => {
        if (!stopping) o.onExit?.(e);
      },
    );
    void exited.then(resolve); // a spawn that failed: resolved with pid 0
  });
  await spawned;
  if (!pid) throw new Error(`could not start ${argv.join(' ')}`);
  return {
    pid,
    get exited() {
      return exited;
    },
    async stop(graceMs = 30_000) {
      stopping = true;
      try {
        signal(pid, 'SIGTERM');
      } catch {
        /* gone already */
      }
      const late = setTimeout(() => abort.abort(), graceMs);
      await exited;
      clearTimeout(late);
    },
  };
}

/** User + system CPU a process has used, ms (/proc/<pid>/stat; the kernel counts in 1/100 s). */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), from the third: utime is the 14th field.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Resident memory now and its peak (VmRSS, VmHWM), bytes. */
export async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
