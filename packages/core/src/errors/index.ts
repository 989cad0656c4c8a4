export * from './ferry-error.js';
export * from './validation-error.js';
export * from './command-error.js';
export * from './step-error.js';
export * from './transition-error.js';
