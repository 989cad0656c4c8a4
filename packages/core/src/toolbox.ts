/**
 * The container toolbox (`ferry exec`, `ferry mount`, `ferry umount`, `ferry show`): operations on
 * one container on one host, sent straight to that host's worker, outside the migration workflow.
 * What the CLI and the worker agree on: queue names, job data, validation (Redis keys: toolboxKeys
 * in keys.ts). No I/O.
 */
import { z } from 'zod';
import type { ErrorData } from './errors/index.js';
import { ContainerName } from './names.js';
import { parseOrThrow } from './request.js';

export const toolboxQueues = {
  /** `ferry exec` sessions of a host: long-running, many at a time. */
  exec: (host: string) => `exec-${host}`,
  /** Short operations on a host's containers: mount, umount, show. */
  admin: (host: string) => `toolbox-${host}`,
};

/** Time-ordered, key- and job-id-safe ids: `x-…` for exec sessions, `r-…` for requests. */
export function newToolboxId(kind: 'x' | 'r', now = Date.now(), random: () => number = Math.random): string {
  const rand = Math.floor(random() * 36 ** 8)
    .toString(36)
    .padStart(8, '0');
  return `${kind}-${now.toString(36)}${rand}`;
}
export const ExecId = z.string().regex(/^x-[0-9a-z]{8,40}$/, 'not an exec id');
export const RequestId = z.string().regex(/^r-[0-9a-z]{8,40}$/, 'not a request id');

/** Signals the CLI may forward to an exec'd process. */
export const ExecSignal = z.enum(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGKILL', 'SIGPIPE', 'SIGUSR1', 'SIGUSR2']);
export type ExecSignal = z.infer<typeof ExecSignal>;

/** Most bytes of argv (the kernel's own limit per string is 128 KiB). */
export const MAX_ARGV_BYTES = 128 * 1024;

export const ExecArgv = z
  .array(z.string().refine((a) => !a.includes('\0'), 'an argument cannot hold a NUL byte'), { error: 'the command must be a list of arguments' })
  .min(1, 'no command given: put it after --, e.g. ferry exec web -- ls -l /')
  .refine((a) => a[0] !== '', 'the command name is empty')
  .refine((a) => a.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0) <= MAX_ARGV_BYTES, `the command is longer than ${MAX_ARGV_BYTES} bytes`);

const ExecJobBase = z.object({
  execId: ExecId,
  argv: ExecArgv,
  /** Killed after this long (SIGTERM to its process group, SIGKILL 2 s later). */
  timeoutMs: z.int().positive().optional(),
  requestedAt: z.number(),
});

/**
 * One exec job, where its command runs said explicitly (never by a field's absence, since the
 * other place is the host itself): `container` — `ferry exec`, in that running container;
 * `fresh: true` — `ferry run`, in a fresh throwaway context on the host (its own PID, mount, UTS,
 * IPC and network namespaces and cgroup; apps/worker/src/exec/fresh-context.ts). A job naming both,
 * or neither, is refused. Both go through the same queue, signature check, streaming and exit path.
 */
export const ExecJobData = z.union([
  ExecJobBase.extend({ container: ContainerName, fresh: z.never().optional() }),
  ExecJobBase.extend({ fresh: z.literal(true), container: z.never().optional() }),
]);
export type ExecJobData = z.infer<typeof ExecJobData>;

/**
 * Entries of an exec session's output stream, in order: `started`, then `stdout`/`stderr` chunks
 * (bytes, as they came), then one `exit` (the command ended: its exit code, 128+N when killed by
 * signal N) or one `error` (ferry could not run it or lost it; `exit` is what the CLI exits with).
 */
export type ExecEntry =
  | { type: 'started'; pid: number }
  | { type: 'stdout' | 'stderr'; data: Buffer }
  | { type: 'exit'; code: number; signal?: string }
  | { type: 'error'; code: string; message: string; exit: number };

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * An absolute path in normal form: `/` separated, no empty, `.` or `..` components (a `..` is
 * refused, not resolved: it is how a path escapes a root), no control characters.
 */
function absolutePath(what: string) {
  return z
    .string({ error: `${what} is required` })
    .min(1, { error: `${what} is empty`, abort: true })
    .max(4096, { error: `${what} is longer than 4096 characters`, abort: true })
    .refine((p) => p.startsWith('/'), { error: `${what} must be an absolute path (starting with /)`, abort: true })
    .refine((p) => !CONTROL.test(p), { error: `${what} may not hold control characters`, abort: true })
    .refine((p) => !p.split('/').includes('..'), { error: `${what} may not hold '..' components`, abort: true })
    .transform((p) => `/${p.split('/').filter((c) => c !== '' && c !== '.').join('/')}`);
}

/** A host directory to share: absolute, normalized. */
export const HostDir = absolutePath('host directory');
/** Where a host directory appears in the container: absolute, normalized, never `/` itself. */
export const ContainerPath = absolutePath('path in the container').refine((p) => p !== '/', 'path in the container cannot be / (the container root)');

export const MountJob = z.object({
  kind: z.literal('mount'),
  requestId: RequestId,
  container: ContainerName,
  hostDir: HostDir,
  path: ContainerPath,
  readOnly: z.boolean(),
});
export const UmountJob = z.object({ kind: z.literal('umount'), requestId: RequestId, container: ContainerName, path: ContainerPath });
export const ShowJob = z.object({ kind: z.literal('show'), requestId: RequestId, container: ContainerName });
export const ToolboxJob = z.discriminatedUnion('kind', [MountJob, UmountJob, ShowJob]);
export type MountJob = z.infer<typeof MountJob>;
export type UmountJob = z.infer<typeof UmountJob>;
export type ShowJob = z.infer<typeof ShowJob>;
export type ToolboxJob = z.infer<typeof ToolboxJob>;

/** Validates a toolbox job (throws a ValidationError naming every bad field). */
export function parseToolboxJob(input: unknown): ToolboxJob {
  return parseOrThrow(ToolboxJob, input);
}

/** A bind mount as the container's config has it. */
export interface BindMountInfo {
  source: string;
  /** Absolute path in the container. */
  target: string;
  readOnly: boolean;
  /** LXC starts the container without it when the source is missing. */
  optional: boolean;
  /** Mounted in the running container now (absent when it is not running). */
  active?: boolean;
}

/** `ferry show`: what the container's config and its host say about it. */
export interface ContainerDetails {
  name: string;
  host: string;
  state: string;
  pid?: number;
  ip?: string;
  mac?: string;
  /** Every bind mount in the config, ferry's and others (e.g. a template's). */
  mounts: BindMountInfo[];
}

/** What `ferry mount` / `ferry umount` did. */
export interface MountChange {
  container: string;
  host: string;
  source?: string;
  target: string;
  readOnly?: boolean;
  /** The config changed (false: it already said so). */
  configChanged: boolean;
  /**
   * In the running container: `applied` (mounted / unmounted now), `unchanged` (it already was),
   * `not-running` (takes effect at the next start).
   */
  live: 'applied' | 'unchanged' | 'not-running';
}

export type ToolboxReply =
  | { ok: true; result: ContainerDetails | MountChange }
  | { ok: false; error: ErrorData; /** What the CLI exits with: 2 bad input (nothing changed), 1 failed. */ exit: number };
