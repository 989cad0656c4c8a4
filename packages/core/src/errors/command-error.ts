import { FerryError } from './ferry-error.js';

export interface CommandFailure {
  command: string[];
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  stderrTail: string;
}

/** A spawned process failed: one object with everything needed to judge it. */
export class CommandError extends FerryError {
  override name = 'CommandError';
  readonly failure: CommandFailure;

  constructor(failure: CommandFailure, opts: { code?: string; retryable?: boolean; message?: string } = {}) {
    const what = failure.timedOut
      ? 'timed out'
      : failure.signal
        ? `was killed by ${failure.signal}`
        : `exited with ${failure.exitCode}`;
    const tail = failure.stderrTail.trim();
    super(
      opts.code ?? 'COMMAND_FAILED',
      opts.message ?? `${failure.command.join(' ')} ${what}${tail ? `: ${tail}` : ''}`,
      { retryable: opts.retryable ?? failure.timedOut, details: { ...failure } },
    );
    this.failure = failure;
  }
}
