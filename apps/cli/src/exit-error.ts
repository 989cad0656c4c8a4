/**
 * Exit codes: 0 done, 1 the operation failed, 2 bad input (nothing was enqueued or touched), 3 ferry's
 * API refused the request (401: no or a bad token; 403: the token's role or scope does not allow it).
 */
export const EXIT = { ok: 0, failed: 1, badInput: 2, denied: 3 } as const;

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
