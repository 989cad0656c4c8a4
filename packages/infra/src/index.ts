export * from './exec/run.js';
export * from './paths.js';
export * from './log.js';
export * from './redis/connection.js';
export * from './redis/embedded.js';
export * from './redis/queues.js';
export * from './store/migration-store.js';
export * from './store/host-registry.js';
