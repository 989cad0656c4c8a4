/**
 * FAKE hosts for the fast workflow tier (test/fast): an in-memory world, a Runtime over it, a fake
 * of every catalogue step, fault injection, and a cluster that runs the real scheduler and real
 * host workers on them. See README "Test tiers": a fake never replaces the lab tests of the same
 * behaviour.
 */
export * from './world.js';
export * from './faults.js';
export * from './runtime.js';
export * from './steps.js';
export * from './cluster.js';
export * from './meter.js';
export * from './use-clusters.js';
