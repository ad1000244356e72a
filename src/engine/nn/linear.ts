/**
 * `nn.Linear` in PyTorch's layout (weight [out, in]), so a torch state dict maps 1:1.
 */
import { linear } from '../ops/index.js';
import type { Rng } from '../random.js';
import type { Tensor } from '../tensor.js';
import { kaimingUniformLinear, linearBiasUniform } from './init.js';
import type { Parameter } from './parameters.js';

export interface LinearOptions { bias?: boolean }

export class Linear {
  /** [out, in], kaiming-uniform(a = sqrt 5), i.e. U(+-1/sqrt(in)). */
  weight: Parameter;
  /** [out], U(+-1/sqrt(in)); null without bias. */
  bias: Parameter | null;

  /** Draws the weight, then the bias (torch's order). */
  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Rng, opts: LinearOptions = {}) {
    this.weight = kaimingUniformLinear(outFeatures, inFeatures, rng);
    this.bias = (opts.bias ?? true) ? linearBiasUniform(outFeatures, inFeatures, rng) : null;
  }

  /**
   * y = x W^T + b; the transpose is Gemm's flag, never a copy.
   * @param x [..., in]
   * @returns [..., out]
   */
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
