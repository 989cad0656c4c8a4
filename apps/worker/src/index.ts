export * from './config.js';
export * from './config-parse.js';
export * from './context.js';
export * from './host-worker.js';
export * from './heartbeat.js';
export * from './run.js';
export * from './runtime/runtime.js';
export * from './unify/index.js';
