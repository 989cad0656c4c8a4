export * from './scheduler.js';
export * from './reconciler.js';
export * from './run.js';
