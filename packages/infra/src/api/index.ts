export * from './token-store.js';
export * from './audit-log.js';
