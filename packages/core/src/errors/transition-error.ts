import { FerryError } from './ferry-error.js';

/** The state machine refused an event in the current state. */
export class TransitionError extends FerryError {
  override name = 'TransitionError';
  constructor(state: string, event: string, why: string) {
    super('INVALID_TRANSITION', `cannot ${event} a migration that is ${state}: ${why}`, {
      details: { state, event },
    });
  }
}
