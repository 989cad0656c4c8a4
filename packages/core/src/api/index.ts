export * from './roles.js';
export * from './scope.js';
export * from './token.js';
export * from './audit.js';
