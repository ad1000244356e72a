/**
 * `nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward = 2048, dropout = 0.1,
 * activation = 'gelu', norm_first = False)`: the visual-guided attention of spec section 2.
 *
 *     x = LN1(Q + Drop(SelfAttn(Q, Q, Q, mask)))
 *     x = LN2(x + Drop(CrossAttn(x, M, M)))
 *     V = LN3(x + Drop(W2 Drop(GELU(W1 x + b1)) + b2))
 *
 * Post-norm, exact (erf) GELU, LayerNorm eps 1e-5, no final norm. Fields carry torch's names in
 * camelCase, so `torchStateDictNames` is a mechanical rename (`selfAttn.inProjWeight` ->
 * `self_attn.in_proj_weight`).
 */
import { dropoutMask, geluFused, type MaskSource } from '../ops/index.js';
import type { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { MultiheadAttention } from './attention.js';
import { LayerNorm } from './layerNorm.js';
import { Linear } from './linear.js';
import { namedParameters } from './parameters.js';

export interface TransformerDecoderLayerOptions {
  /** Feed-forward width (torch default 2048). */
  dimFeedforward?: number;
  /** Dropout probability everywhere: attention probabilities, the three residual branches, inside the FF. */
  dropout?: number;
  layerNormEps?: number;
}

export interface DecoderForwardOptions {
  /** Additive self-attention mask [C, C] (0 / -Infinity). Cross-attention is unmasked. */
  tgtMask?: Tensor;
  /** Dropout on (new-task training) or off (finetuning, evaluation). */
  training: boolean;
  /** Source of the dropout masks; needed when training with dropout > 0. */
  rng?: MaskSource;
}

export class TransformerDecoderLayer {
  selfAttn: MultiheadAttention;
  multiheadAttn: MultiheadAttention;
  linear1: Linear;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  readonly dropout: number;

  /**
   * Draws from `rng` in torch's construction order:
   *   1. selfAttn:      outProj.weight, outProj.bias (zeroed afterwards), inProjWeight
   *   2. multiheadAttn: outProj.weight, outProj.bias (zeroed afterwards), inProjWeight
   *   3. linear1:       weight [F, D], bias [F]
   *   4. linear2:       weight [D, F], bias [D]
   * LayerNorms draw nothing (gain 1, bias 0). Each tensor is filled row-major, one draw per value.
   */
  constructor(readonly dModel: number, readonly nHead: number, rng: Rng, opts: TransformerDecoderLayerOptions = {}) {
    const ff = opts.dimFeedforward ?? 2048;
    this.dropout = opts.dropout ?? 0.1;
    const eps = opts.layerNormEps ?? 1e-5;
    this.selfAttn = new MultiheadAttention(dModel, nHead, rng, { dropout: this.dropout });
    this.multiheadAttn = new MultiheadAttention(dModel, nHead, rng, { dropout: this.dropout });
    this.linear1 = new Linear(dModel, ff, rng);
    this.linear2 = new Linear(ff, dModel, rng);
    this.norm1 = new LayerNorm(dModel, { eps });
    this.norm2 = new LayerNorm(dModel, { eps });
    this.norm3 = new LayerNorm(dModel, { eps });
  }

  /**
   * Dropout masks are drawn in evaluation order: self-attention probabilities, dropout1,
   * cross-attention probabilities, dropout2, the FF's inner dropout, dropout3.
   * @param tgt class queries [C, D]
   * @param memory image features of the batch, one sequence [B, D]
   * @returns [C, D], post-LayerNorm rows
   */
  forward(tgt: Tensor, memory: Tensor, opts: DecoderForwardOptions): Tensor {
    return this.forwardPrepared(this.prepareQueries(tgt, opts), memory, opts);
  }

  /**
   * The part of `forward` that does not read the memory: the self-attention block over the
   * queries and the cross-attention's query projection. Predictions with unchanged weights and
   * queries (one evaluation) compute it once and pass it to `forwardPrepared` for every batch.
   */
  prepareQueries(tgt: Tensor, opts: DecoderForwardOptions): PreparedQueries {
    this.checkRng(opts);
    const { training, rng } = opts;
    const sa = this.selfAttn.forward(tgt, tgt, tgt, { mask: opts.tgtMask, training, rng });
    const x = this.norm1.forwardResidual(tgt, sa, this.branchMask(sa, opts));
    return { x, crossQuery: this.multiheadAttn.projectQuery(x) };
  }

  /** `forward` from `prepareQueries`'s output on: cross-attention over `memory` [B, D], then the feed-forward block. */
  forwardPrepared(prepared: PreparedQueries, memory: Tensor, opts: DecoderForwardOptions): Tensor {
    this.checkRng(opts);
    const { training, rng } = opts;
    const { x } = prepared;
    const ca = this.multiheadAttn.forwardProjected(prepared.crossQuery, memory, { training, rng });
    const x2 = this.norm2.forwardResidual(x, ca, this.branchMask(ca, opts));
    const inner = this.linear1.forward(x2);
    const ffOut = this.linear2.forward(geluFused(inner, this.branchMask(inner, opts)));
    return this.norm3.forwardResidual(x2, ffOut, this.branchMask(ffOut, opts));
  }

  /** A branch's dropout mask, drawn where torch's dropout draws it; applied inside the native call that follows (residual LayerNorm, GELU). */
  private branchMask(branch: Tensor, opts: DecoderForwardOptions): Float32Array | null {
    return opts.training && this.dropout > 0 ? dropoutMask(branch.size, this.dropout, opts.rng!) : null;
  }

  private checkRng(opts: DecoderForwardOptions): void {
    if (opts.training && this.dropout > 0 && !opts.rng) throw new Error('TransformerDecoderLayer: training with dropout needs an rng');
  }
}

/** What `prepareQueries` computes: x after the self-attention block [C, D], and its cross-attention projection [C, D]. */
export interface PreparedQueries { x: Tensor; crossQuery: Tensor }

/** camelCase -> snake_case, one path segment (`inProjWeight` -> `in_proj_weight`). */
function snakeCase(segment: string): string {
  return segment.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The layer's tensors under torch's state-dict names and order: `self_attn.in_proj_weight`,
 * `self_attn.in_proj_bias`, `self_attn.out_proj.weight`, ..., `linear1.weight`, ..., `norm3.bias`.
 * Frozen tensors are included (a state dict holds everything).
 */
export function torchStateDictNames(layer: TransformerDecoderLayer | MultiheadAttention): [string, Tensor][] {
  return namedParameters(layer, '', { includeFrozen: true })
    .map(([path, t]): [string, Tensor] => [path.split('.').map(snakeCase).join('.'), t]);
}
