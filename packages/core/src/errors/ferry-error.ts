/**
 * Every error ferry raises carries a stable `code` and a `retryable` flag.
 * Errors cross Redis as plain data (see `toErrorData`), so decisions are made on
 * `code`/`retryable`, never on message text.
 */
export interface ErrorData {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

export class FerryError extends Error {
  override name = 'FerryError';
  readonly code: string;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, opts: { retryable?: boolean; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
  }

  toData(): ErrorData {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** Plain-data form of any thrown value; unknown errors are not retryable. */
/** errno codes that mean the disk written to is full: no retry heals that, and it must say so. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

export function toErrorData(err: unknown): ErrorData {
  if (err instanceof FerryError) return err.toData();
  if (err instanceof Error && 'code' in err && typeof err.code === 'string' && NO_SPACE.has(err.code)) {
    return { name: err.name, code: 'DISK_FULL', message: `no space left on the disk written to: ${err.message}`, retryable: false };
  }
  if (err instanceof Error) return { name: err.name, code: 'INTERNAL', message: err.message, retryable: false };
  return { name: 'Error', code: 'INTERNAL', message: String(err), retryable: false };
}
