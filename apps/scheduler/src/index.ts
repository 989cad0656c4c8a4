export * from './scheduler.js';
export * from './reconciler.js';
export * from './run.js';
export * from './rebalancer.js';
export * from './collector.js';
export * from './metrics/index.js';
export * from './flags.js';
