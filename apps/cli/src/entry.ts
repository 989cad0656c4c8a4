import { CommanderError } from 'commander';
import { FerryError } from '@ferry/core';
import { EXIT, ExitError } from './exit-error.js';

/** What every ferry command line shares: printing, number options, errors to exit codes. */
export const print = (s: string) => process.stdout.write(`${s}\n`);
export const json = (v: unknown) => print(JSON.stringify(v));

/** `--help`'s closing lines: examples first, then any notes. */
export const examples = (lines: string[], ...notes: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}${notes.length ? `\n\n${notes.join('\n')}` : ''}`;

/** A commander option parser for a number, refusing anything else as bad input. */
export const num = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ExitError(EXIT.badInput, `${what}: '${v}' is not a number`);
  return n;
};

/**
 * Runs a parse and maps what it threw to an exit code (0 done, 1 failed, 2 bad input), saying
 * what went wrong on stderr after `name`. Only the entry points call process.exit with it.
 */
export async function exitCodeOfRun(name: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    if (e instanceof ExitError) {
      process.stderr.write(`${name}: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof FerryError) {
      process.stderr.write(`${name}: ${e.code}: ${e.message}\n`);
      return e.code === 'INVALID_INPUT' ? EXIT.badInput : EXIT.failed;
    }
    process.stderr.write(`${name}: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.failed;
  }
}
