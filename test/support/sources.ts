const HOOKS = new URL('./ts-hooks.mjs', import.meta.url).href;

/**
 * Node options for a child process that runs the workspace's TypeScript sources, as vitest runs
 * them in the test itself (see ts-hooks.mjs): `spawn(process.execPath, [...sourcesArgs(), ...])`.
 * For tests whose subject needs a process of its own but is not a built binary: they then need no
 * `npm run build` first.
 */
export function sourcesArgs(): string[] {
  return ['--import', `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(HOOKS)});`];
}
