/**
 * `nn.LayerNorm(d)` over the last axis: gain 1, bias 0, biased variance, eps 1e-5 by default.
 */
import { layerNormFused, residualLayerNorm } from '../ops/index.js';
import type { Tensor } from '../tensor.js';
import { parameter, type Parameter } from './parameters.js';

export interface LayerNormOptions { eps?: number }

export class LayerNorm {
  /** Gain [d], ones. */
  weight: Parameter;
  /** Bias [d], zeros. */
  bias: Parameter;
  readonly eps: number;

  /** Draws nothing from any generator. */
  constructor(readonly normalizedShape: number, opts: LayerNormOptions = {}) {
    this.weight = parameter(new Float32Array(normalizedShape).fill(1), [normalizedShape]);
    this.bias = parameter(new Float32Array(normalizedShape), [normalizedShape]);
    this.eps = opts.eps ?? 1e-5;
  }

  /**
   * @param x [..., d]
   * @returns [..., d]
   */
  forward(x: Tensor): Tensor {
    return layerNormFused(x, this.weight, this.bias, this.eps);
  }

  /**
   * LN(x + branch * mask): a post-norm residual block's end, with the branch's dropout mask
   * (`dropoutMask`) or null (no dropout), in one native call each way.
   * @param x [..., d]  @param branch [..., d]
   * @returns [..., d]
   */
  forwardResidual(x: Tensor, branch: Tensor, mask: Float32Array | null): Tensor {
    return residualLayerNorm(x, branch, mask, this.weight, this.bias, this.eps);
  }
}
