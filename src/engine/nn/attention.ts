/**
 * `nn.MultiheadAttention` for one unbatched sequence, computed as torch 1.13's
 * `F.multi_head_attention_forward`:
 *
 *     [q; k; v] = [query Wq^T + bq; key Wk^T + bk; value Wv^T + bv]    (W = inProjWeight [3D, D])
 *     head h:   A_h = softmax(q_h k_h^T / sqrt(D / H) + mask)           (q scaled first, as torch)
 *               o_h = Drop(A_h) v_h
 *     out = concat_h(o_h) Wo^T + bo
 *
 * Head h owns columns h*hd .. (h+1)*hd - 1 of each projection (hd = D / H), torch's head split.
 */
import { bmm, dropout, linear, mulScalar, permute, reshape, slice, softmax, type MaskSource } from '../ops/index.js';
import type { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { xavierUniform } from './init.js';
import { Linear } from './linear.js';
import { parameter, type Parameter } from './parameters.js';

export interface AttentionOptions { dropout?: number }

export interface AttentionForwardOptions {
  /**
   * Additive mask [Lq, Lk] (0 = attend, -Infinity = blocked); no gradient flows into it. A fully
   * blocked row attends to nothing and yields the out-projection bias (torch would give NaN).
   */
  mask?: Tensor;
  /** Dropout on the attention probabilities is active only while training. */
  training: boolean;
  /** Source of the dropout masks; needed when training with dropout > 0. */
  rng?: MaskSource;
}

export class MultiheadAttention {
  /** [3D, D]: Wq, Wk, Wv stacked, so one product covers all three when q = k = v. */
  inProjWeight: Parameter;
  /** [3D], zeros. */
  inProjBias: Parameter;
  /** Linear(D, D): weight keeps nn.Linear's kaiming init, bias zeroed (torch's `_reset_parameters`). */
  outProj: Linear;
  readonly headDim: number;
  readonly dropout: number;

  /**
   * Draws (torch's construction order): outProj.weight, outProj.bias (then zeroed),
   * inProjWeight (xavier-uniform over the whole [3D, D] matrix: fan_in D, fan_out 3D).
   */
  constructor(readonly embedDim: number, readonly numHeads: number, rng: Rng, opts: AttentionOptions = {}) {
    if (!(Number.isInteger(numHeads) && numHeads >= 1 && embedDim % numHeads === 0)) {
      throw new Error(`MultiheadAttention: embedDim ${embedDim} is not divisible into ${numHeads} heads`);
    }
    this.headDim = embedDim / numHeads;
    this.dropout = opts.dropout ?? 0;
    const outProj = new Linear(embedDim, embedDim, rng);
    outProj.bias!.data.fill(0);
    // Assigned in declaration order, which is the parameter order (torch's state-dict order).
    this.inProjWeight = xavierUniform([3 * embedDim, embedDim], rng);
    this.inProjBias = parameter(new Float32Array(3 * embedDim), [3 * embedDim]);
    this.outProj = outProj;
  }

  /**
   * @param query [Lq, D]
   * @param key [Lk, D]
   * @param value [Lk, D]
   * @returns [Lq, D]
   */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: AttentionForwardOptions): Tensor {
    const [q, k, v] = this.project(query, key, value);
    return this.attend(q, k, v, opts);
  }

  /**
   * `forward(query, memory, memory)` from q = `projectQuery(query)` [Lq, D]: the decoder layer's
   * cross-attention queries do not read the memory [Lk, D], so one evaluation projects them once.
   */
  forwardProjected(q: Tensor, memory: Tensor, opts: AttentionForwardOptions): Tensor {
    const [k, v] = this.splitColumns(this.projectRows(memory, 1, 3), 2);
    return this.attend(q, k!, v!, opts);
  }

  /** q = query Wq^T + bq [Lq, D]. */
  projectQuery(query: Tensor): Tensor {
    return this.projectRows(query, 0, 1);
  }

  /** Scaled dot-product attention of projected q, k, v, then the out projection. */
  private attend(q: Tensor, k: Tensor, v: Tensor, opts: AttentionForwardOptions): Tensor {
    const h = this.numHeads, hd = this.headDim;
    // Scale q before the product, as torch does (q / sqrt(hd)), then one product per head.
    const qh = this.splitHeads(mulScalar(q, 1 / Math.sqrt(hd)));
    const scores = bmm(qh, this.splitHeads(k), { transB: true }); // [H, Lq, Lk]
    let probs = softmax(scores, opts.mask);
    if (opts.training && this.dropout > 0) {
      if (!opts.rng) throw new Error('MultiheadAttention: training with dropout needs an rng');
      probs = dropout(probs, this.dropout, opts.rng, true);
    }
    const heads = bmm(probs, this.splitHeads(v)); // [H, Lq, hd]
    const lq = q.shape[0]!;
    const merged = h === 1 ? reshape(heads, [lq, hd]) : reshape(permute(heads, [1, 0, 2]), [lq, h * hd]);
    return this.outProj.forward(merged);
  }

  /**
   * The three input projections with as few products as torch's `_in_projection_packed`:
   * one for self-attention (q = k = v), two when k = v (cross-attention), three otherwise.
   * @returns q [Lq, D], k [Lk, D], v [Lk, D]
   */
  private project(query: Tensor, key: Tensor, value: Tensor): [Tensor, Tensor, Tensor] {
    if (query === key && key === value) {
      const [q, k, v] = this.splitColumns(this.projectRows(query, 0, 3), 3);
      return [q!, k!, v!];
    }
    if (key === value) {
      const [k, v] = this.splitColumns(this.projectRows(key, 1, 3), 2);
      return [this.projectQuery(query), k!, v!];
    }
    return [this.projectQuery(query), this.projectRows(key, 1, 2), this.projectRows(value, 2, 3)];
  }

  /** x times the stacked projections lo..hi-1 (0 = q, 1 = k, 2 = v): [L, (hi - lo) D]. */
  private projectRows(x: Tensor, lo: number, hi: number): Tensor {
    const d = this.embedDim, w = this.inProjWeight, b = this.inProjBias;
    const whole = lo === 0 && hi === 3;
    return linear(x, whole ? w : slice(w, 0, lo * d, hi * d), whole ? b : slice(b, 0, lo * d, hi * d));
  }

  /** [L, parts D] -> parts x [L, D]. */
  private splitColumns(x: Tensor, parts: number): Tensor[] {
    const d = this.embedDim;
    return Array.from({ length: parts }, (_, i) => slice(x, 1, i * d, (i + 1) * d));
  }

  /** [L, D] -> [H, L, hd] (a free reshape for one head). */
  private splitHeads(x: Tensor): Tensor {
    const l = x.shape[0]!, h = this.numHeads, hd = this.headDim;
    return h === 1 ? reshape(x, [1, l, hd]) : permute(reshape(x, [l, h, hd]), [1, 0, 2]);
  }
}

/**
 * Additive mask [C, C] for task-blocked self-attention (spec section 2): class c of task i attends
 * only to the classes of task i. 0 inside the diagonal blocks, -Infinity outside.
 * @param taskSizes n_i of each task, in label order (the blocks are contiguous)
 */
export function blockDiagonalMask(taskSizes: readonly number[]): Tensor {
  const c = taskSizes.reduce((a, b) => a + b, 0);
  const mask = Tensor.full([c, c], -Infinity);
  let s = 0;
  for (const n of taskSizes) {
    for (let i = s; i < s + n; i++) mask.data.fill(0, i * c + s, i * c + s + n);
    s += n;
  }
  return mask;
}
