import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
type Value<X> = X extends { type: 'boolean' } ? boolean : string;
/** What parseArgs gives for these options: those with a default always there, the others maybe. */
export type Values<O> = { [K in keyof O as O[K] extends { default: unknown } ? K : never]: Value<O[K]> } & {
  [K in keyof O as O[K] extends { default: unknown } ? never : K]?: Value<O[K]>;
};

/** Says what is wrong with the command line in one line, with the usage, and exits 2 (bad input). */
export function usageError(name: string, usage: string, message: string): never {
  process.stderr.write(`${name}: ${message} (usage: ${usage})\n`);
  process.exit(2);
}

/**
 * The options of a lab script (demo, bench, chaos) as node:util's parseArgs reads them, strictly:
 * an unknown option, a missing value or a stray argument is bad input — one line naming it (the
 * first sentence of parseArgs' message), exit 2 — never a stack trace.
 */
export function parseArgsOrExit<const O extends Options>(name: string, usage: string, options: O, args: string[] = process.argv.slice(2)): Values<O> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as unknown as Values<O>;
  } catch (e) {
    const message = ((e as Error).message.split(/\.\s/)[0] ?? String(e)).replace(/^\w/, (c) => c.toLowerCase());
    return usageError(name, usage, message);
  }
}
