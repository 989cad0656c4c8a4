import { FerryError } from './ferry-error.js';

/** A step found the world in a state it must not act on (e.g. the container already runs on the target). */
export class PreconditionError extends FerryError {
  override name = 'PreconditionError';
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, { retryable: false, ...(details ? { details } : {}) });
  }
}
