export * from './ed25519.js';
export * from './job-signer.js';
export * from './result-signing.js';
export * from './key-files.js';
export * from './trust-paths.js';
export * from './host-keys.js';
export * from './replay-guard.js';
export * from './host-entry-signing.js';
