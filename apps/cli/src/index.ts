/**
 * The CLI as a library, for the lab's demo, bench and chaos suite (apps/lab): the calls
 * `ferry migrate --wait` makes and the CLI's renderings. The `ferry` command is main.ts.
 */
export { openClient, type Client } from './client.js';
export { localFerry } from './service/local-ferry.js';
export type { Ferry } from './service/ferry.js';
export { submitMigration, waitFor } from './commands/migrate.js';
export { EXIT, ExitError } from './exit-error.js';
export { fmtBytes, fmtMs, renderStatus } from './render.js';
export { exitCodeOfRun, json, num, print } from './entry.js';
