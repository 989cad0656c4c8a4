import { FerryError } from '@ferry/core';
import type { StepContext } from '../context.js';

/**
 * A worker shutting down aborts `ctx.signal`: work it cuts off (a killed rsync or ssh, a stream's
 * AbortError) ends as a retryable ABORTED error, and the job runs again later.
 */

/** Throws when the worker is shutting down, as a retryable error (the job is run again later). */
export function checkAborted(ctx: StepContext): void {
  if (ctx.signal.aborted) {
    throw new FerryError('ABORTED', 'worker is shutting down; the step will run again', { retryable: true });
  }
}

/**
 * Wraps a step so that whatever escapes it while the worker is shutting down (an AbortError from
 * a stream, a killed rsync) becomes a retryable ABORTED error: the job runs again later.
 */
export function abortable<I, O>(step: (ctx: StepContext, input: I) => Promise<O>): (ctx: StepContext, input: I) => Promise<O> {
  return async (ctx, input) => {
    try {
      return await step(ctx, input);
    } catch (e) {
      // Whatever a command cut off by the abort said (an ssh killed mid-connection looks like an
      // unreachable peer), the cause is the abort.
      if (ctx.signal.aborted && !(e instanceof FerryError && e.code === 'ABORTED')) {
        throw new FerryError('ABORTED', 'worker is shutting down; the step will run again', { retryable: true, cause: e });
      }
      throw e;
    }
  };
}
