/**
 * Task distribution encoders (spec section 3): per task a pair of linear maps D -> D,
 *
 *     mu    = A h + a
 *     sigma = softplus(S h + b) * (1 - floor) + floor        (floor = 0.001)
 *
 * stored as one weight [2D, D] (rows 0..D-1 = A, rows D..2D-1 = S) and one bias [2D], so a single
 * product covers both maps. The deterministic ablation keeps only A (weight [D, D]).
 */
import { addScalar, blockLinear, gemm, linear, mulScalar, slice, softplusFused, type FrozenBlocks } from '../../engine/ops/index.js';
import { kaimingUniformLinear, uniformParameter } from '../../engine/nn/init.js';
import type { Parameter } from '../../engine/nn/parameters.js';
import type { Rng } from '../../engine/random.js';
import type { Tensor } from '../../engine/tensor.js';
import type { TaskSpan } from './vga.js';

export interface DistEncoderOptions {
  /** Whether the sigma map exists (false for the deterministic ablation). */
  withSigma: boolean;
  /** sigma's lower bound (0.001). */
  sigmaFloor: number;
}

export class DistEncoder {
  /** [2D, D] = [A; S] (or [D, D] = A without sigma), nn.Linear's kaiming-uniform init. */
  weight: Parameter;
  /** [2D] = [a; b] (or [D]), U(+-1/sqrt(D)). */
  bias: Parameter;
  readonly withSigma: boolean;
  readonly sigmaFloor: number;

  /** Draws the weight then the bias, both U(+-1/sqrt(D)) (two nn.Linear(D, D) stacked). */
  constructor(readonly dim: number, rng: Rng, opts: DistEncoderOptions) {
    this.withSigma = opts.withSigma;
    this.sigmaFloor = opts.sigmaFloor;
    const rows = this.withSigma ? 2 * dim : dim;
    this.weight = kaimingUniformLinear(rows, dim, rng);
    this.bias = uniformParameter([rows], 1 / Math.sqrt(dim), rng);
  }

  /**
   * @param h inputs [..., n, D]
   * @returns mu [..., n, D] and sigma [..., n, D] (null without the sigma map)
   */
  forward(h: Tensor): { mu: Tensor; sigma: Tensor | null } {
    // [..., n, 2D]: mu and sigma pre-activations in one product
    return gaussianOf(linear(h, this.weight, this.bias), this.dim, this.withSigma, this.sigmaFloor);
  }
}

/** mu = the first D columns of `pre`; sigma = softplus(the last D) * (1 - floor) + floor. */
function gaussianOf(pre: Tensor, d: number, withSigma: boolean, floor: number): { mu: Tensor; sigma: Tensor | null } {
  if (!withSigma) return { mu: pre, sigma: null };
  const mu = slice(pre, -1, 0, d);
  const sigma = addScalar(mulScalar(softplusFused(slice(pre, -1, d, 2 * d)), 1 - floor), floor);
  return { mu, sigma };
}

/**
 * Every task's encoder on its own classes, mu_i, sigma_i = encoder_i(h_i), as one block-linear
 * product (one native call each way instead of one per task).
 * @param x [..., C, D]; task i owns rows [classStart, classEnd) of the C
 * @param frozen the leading encoders' weights baked into the native graphs (`FrozenBlocks`), or null
 * @returns mu [..., C, D] and sigma [..., C, D] (null without the sigma map)
 */
export function encodeTasks(encoders: readonly DistEncoder[], x: Tensor, tasks: readonly TaskSpan[], frozen: FrozenBlocks | null = null): { mu: Tensor; sigma: Tensor | null } {
  if (encoders.length !== tasks.length || encoders.length === 0) throw new Error(`encodeTasks: ${encoders.length} encoders for ${tasks.length} tasks`);
  const first = encoders[0]!;
  const pre = blockLinear(x, tasks.map((t, i) => ({ start: t.classStart, end: t.classEnd, weight: encoders[i]!.weight, bias: encoders[i]!.bias })), frozen);
  return gaussianOf(pre, first.dim, first.withSigma, first.sigmaFloor);
}

/**
 * Template statistics of the first `classes` classes.
 * @param e per-template text features [C_total, P, D]
 * @returns ebar = mean_p e[c, p] (not re-normalized) [classes, D], and the unbiased variance over
 *   templates [classes, D] (all zeros when P = 1, where the unbiased variance is undefined)
 */
export function templateStats(e: Float32Array, numTemplates: number, dim: number, classes: number): { ebar: Float32Array; variance: Float32Array } {
  const p = numTemplates;
  if (e.length < classes * p * dim) throw new Error(`templateStats: ${e.length} values for ${classes} classes x ${p} templates x ${dim}`);
  const ebar = new Float32Array(classes * dim);
  const variance = new Float32Array(classes * dim);
  for (let c = 0; c < classes; c++) {
    for (let j = 0; j < dim; j++) {
      let s = 0;
      for (let t = 0; t < p; t++) s += e[(c * p + t) * dim + j]!;
      const m = s / p;
      let ss = 0;
      for (let t = 0; t < p; t++) { const dv = e[(c * p + t) * dim + j]! - m; ss += dv * dv; }
      ebar[c * dim + j] = m;
      variance[c * dim + j] = p > 1 ? ss / (p - 1) : 0;
    }
  }
  return { ebar, variance };
}

/** X^T X / D for X [rows, D]: [D, D] (one Gemm with transA, no explicit transpose). */
function gramOverDim(x: Float32Array, rows: number, dim: number): Float32Array {
  const g = gemm(x, x, dim, rows, dim, true, false);
  const out = new Float32Array(dim * dim);
  for (let i = 0; i < out.length; i++) out[i] = g[i]! / dim;
  return out;
}

/**
 * Language-aware initialization over ALL seen classes (spec section 3):
 * A = Ebar^T Ebar / D and S = Var^T Var / D. Both are symmetric, so the nn.Linear layout
 * (y = x W^T) needs no transpose.
 * @param e per-template text features [C_total, P, D]
 * @param seenClasses number of classes seen so far (the first rows of e)
 * @returns A [D, D] and S [D, D]
 */
export function languageAwareWeights(e: Float32Array, numTemplates: number, dim: number, seenClasses: number): { A: Float32Array; S: Float32Array } {
  const { ebar, variance } = templateStats(e, numTemplates, dim, seenClasses);
  return { A: gramOverDim(ebar, seenClasses, dim), S: gramOverDim(variance, seenClasses, dim) };
}

/** Overwrites the encoder's weights with `languageAwareWeights`; the biases keep their default init. */
export function languageAwareInit(enc: DistEncoder, e: Float32Array, numTemplates: number, seenClasses: number): void {
  const { ebar, variance } = templateStats(e, numTemplates, enc.dim, seenClasses);
  languageAwareInitFromStats(enc, ebar, variance, seenClasses);
}

/**
 * `languageAwareInit` from the template statistics of the seen classes (what CLAP keeps of the
 * text once a task's classes have been added).
 * @param ebar [>= seenClasses, D]  @param variance [>= seenClasses, D]
 */
export function languageAwareInitFromStats(enc: DistEncoder, ebar: Float32Array, variance: Float32Array, seenClasses: number): void {
  const d = enc.dim;
  const rows = seenClasses * d;
  enc.weight.data.set(gramOverDim(ebar.subarray(0, rows), seenClasses, d), 0);
  if (enc.withSigma) enc.weight.data.set(gramOverDim(variance.subarray(0, rows), seenClasses, d), d * d);
}
