import { z } from 'zod';
import { ContainerName, HostName } from './names.js';
import { ValidationError, type Problem } from './errors/index.js';

export const Mode = z.enum(['auto', 'live', 'restart']);
export type Mode = z.infer<typeof Mode>;

export const PrecopyLimits = z.object({
  /** Most pre-copy passes before the freeze. */
  maxPasses: z.int().min(1).max(20).default(5),
  /** Stop pre-copying once a pass sends fewer bytes than this. */
  stopBelowBytes: z.int().min(0).default(8 * 1024 * 1024),
  /** Stop when a pass sends at least this fraction of the previous one (not converging). */
  minShrink: z.number().gt(0).max(1).default(0.8),
});
export type PrecopyLimits = z.infer<typeof PrecopyLimits>;

export const VerifyLevel = z.enum(['off', 'changed', 'full'], { error: "verify is one of 'changed', 'full', 'off'" });
export type VerifyLevel = z.infer<typeof VerifyLevel>;

export const MigrationOptions = z.object({
  /** rsync --bwlimit, in KiB/s; unset means unlimited. */
  bwlimitKBps: z.int().min(1).optional(),
  /** Keep the (stopped) source copy after a successful migration. */
  keepSource: z.boolean().default(false),
  /** Send gratuitous ARP from the target after the start. */
  arpRefresh: z.boolean().default(true),
  /**
   * Compare the frozen source with the target's copy before starting it: `changed` (default)
   * the metadata of every entry and the content of what the final pass sent; `full` every file's
   * content and every extended attribute; `off` nothing.
   */
  verify: VerifyLevel.default('changed'),
  precopy: PrecopyLimits.default({ maxPasses: 5, stopBelowBytes: 8 * 1024 * 1024, minShrink: 0.8 }),
});
export type MigrationOptions = z.infer<typeof MigrationOptions>;

export const MigrationRequest = z
  .object({
    container: ContainerName,
    from: HostName,
    to: HostName,
    mode: Mode.default('auto'),
    options: MigrationOptions.default(MigrationOptions.parse({})),
  })
  .refine((r) => r.from !== r.to, { path: ['to'], message: 'source and target are the same host' });
export type MigrationRequest = z.infer<typeof MigrationRequest>;
export type MigrationRequestInput = z.input<typeof MigrationRequest>;

/** zod issues → ferry problems, every one of them. */
export function problemsOf(error: z.ZodError): Problem[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** Parses input into a schema's output or throws a ValidationError listing every problem. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, at = ''): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ValidationError(
    problemsOf(r.error).map((p) => ({ ...p, path: at && p.path ? `${at}.${p.path}` : at || p.path })),
  );
}

export function parseMigrationRequest(input: unknown): MigrationRequest {
  return parseOrThrow(MigrationRequest, input);
}
