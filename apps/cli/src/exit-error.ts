/** Exit codes: 0 done, 1 the operation failed, 2 bad input (nothing was enqueued or touched). */
export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const;

/** Thrown by commands; only the entry point turns it into a process exit. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}
