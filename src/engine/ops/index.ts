export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
export * from './matmul.js';
export * from './nnOps.js';
export { erf } from './erf.js';
export * from './fused/index.js';
