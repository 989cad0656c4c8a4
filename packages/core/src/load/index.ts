export * from './ewma.js';
export * from './cgroup.js';
export * from './tracker.js';
