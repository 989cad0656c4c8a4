/**
 * SIMULATED hosts (FAKE, so named throughout): an in-memory world of hosts and containers, a
 * Runtime over it, an implementation of every catalogue step that acts on it, a load meter and
 * fault injection. A real HostWorker runs on them unchanged (`HostWorkerOptions.runtime`, `steps`,
 * `meter`). `ferry worker` never loads this module; the fast test tier (test/fast, through
 * test/support/fake) and `npm run bench:scale` do. They never replace the host and lab tiers,
 * which test the same behaviour with the real tools.
 */
export * from './world.js';
export * from './faults.js';
export * from './runtime.js';
export * from './steps.js';
export * from './meter.js';
