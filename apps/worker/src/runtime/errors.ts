import { CommandError, PreconditionError } from '@ferry/core';

/** Runtime tool missing (spawn failed) → a precondition error rather than a bare command failure. */
export function runtimeMissing(e: unknown): unknown {
  if (e instanceof CommandError && e.failure.exitCode === null && !e.failure.timedOut && !e.failure.signal) {
    return new PreconditionError('RUNTIME_MISSING', `container runtime not usable here: ${e.failure.stderrTail.trim()}`);
  }
  return e;
}
