/**
 * `nn.LayerNorm(d)` over the last axis: gain 1, bias 0, biased variance, eps 1e-5 by default.
 */
import { layerNorm } from '../ops/index.js';
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
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
