/**
 * FAKE hosts for the fast workflow tier (test/fast): the simulated hosts of the worker package
 * (apps/worker/src/sim: an in-memory world, a Runtime over it, a fake of every catalogue step,
 * fault injection, a load meter), and a cluster that runs the real scheduler and real host workers
 * on them. See README "Test tiers": a fake never replaces the lab tests of the same behaviour.
 */
export * from '../../../apps/worker/src/sim/index.js';
export * from './cluster.js';
export * from './use-clusters.js';
