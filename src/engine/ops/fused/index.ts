/**
 * Fused operations: each computes what a composition of primitive ops computes, where profiling
 * showed the composition spending more time in JavaScript loops and allocations than in
 * arithmetic. Each file names its primitive twin; `fused.test.ts` checks every fused op against
 * it (values and gradients).
 */
export { blockLinear, FrozenBlocks, type LinearBlock } from './blockLinear.js';
export { crossEntropyFused } from './crossEntropy.js';
export { sampleGaussianWeights } from './gaussianWeights.js';
export { layerNormFused, residualLayerNorm } from './layerNorm.js';
export { fusedSettings, geluFused, softplusFused } from './onnxUnary.js';
export { sampledLogits } from './sampledLogits.js';
