export * from './canonical.js';
export * from './codes.js';
export * from './signed-job.js';
export * from './signed-result.js';
export * from './signed-host.js';
