import { FerryError } from './ferry-error.js';

export interface Problem {
  /** Dotted path of the offending field, e.g. `container` or `options.bwlimitKBps`. */
  path: string;
  message: string;
}

/** Bad input: every problem found, reported at once. The CLI maps it to exit 2. */
export class ValidationError extends FerryError {
  override name = 'ValidationError';
  readonly problems: Problem[];

  constructor(problems: Problem[]) {
    super('INVALID_INPUT', problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '), {
      details: { problems },
    });
    this.problems = problems;
  }
}
