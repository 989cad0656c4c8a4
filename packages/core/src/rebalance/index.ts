export * from './snapshot.js';
export * from './policy.js';
export * from './plan-rebalance.js';
export * from './placement.js';
export * from './from-registry.js';
export * from './round.js';
