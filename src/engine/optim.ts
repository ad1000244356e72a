/**
 * Stochastic gradient descent as `torch.optim.SGD`, Adam as `torch.optim.Adam` (RAPF), and the
 * learning-rate schedules of spec section 5 (linear warm-up, then cosine decay to lr * 1e-3).
 */
import type { Tensor } from './tensor.js';

export const sgdSettings = {
  /** CLAP4CLIP_SGD_FOLD=0 turns `backwardStep` into plain backward + step (for A/B measurements). */
  foldIntoGemm: process.env['CLAP4CLIP_SGD_FOLD'] !== '0',
};

export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  dampening?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD's update, per parameter p with gradient g (parameters whose grad is null are
 * skipped, as torch skips `p.grad is None`):
 *
 *     g = g + weightDecay * p
 *     b = g                                     (first step: the buffer is a copy of g)
 *     b = momentum * b + (1 - dampening) * g    (later steps)
 *     g = nesterov ? g + momentum * b : b       (only when momentum != 0)
 *     p = p - lr * g
 */
export class SGD {
  readonly params: Tensor[];
  /** Learning rate of the next step; `step(lr)` overwrites it (the schedule sets it per iteration). */
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  /** Momentum buffers, created on a parameter's first step (torch's `momentum_buffer`). */
  readonly momentumBuffers = new Map<Tensor, Float32Array>();

  constructor(params: Tensor[], opts: SGDOptions) {
    const { lr, momentum = 0, weightDecay = 0, dampening = 0, nesterov = false } = opts;
    if (!(lr >= 0)) throw new RangeError(`SGD: invalid learning rate ${lr}`);
    if (!(momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${momentum}`);
    if (!(weightDecay >= 0)) throw new RangeError(`SGD: invalid weight decay ${weightDecay}`);
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new RangeError('SGD: Nesterov momentum requires a momentum and zero dampening');
    }
    this.params = [...new Set(params)];
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.dampening = dampening;
    this.nesterov = nesterov;
  }

  /** One update of every parameter that has a gradient, with learning rate `lr` (default: `this.lr`). */
  step(lr?: number): void {
    if (lr !== undefined) {
      if (!(lr >= 0)) throw new RangeError(`SGD.step: invalid learning rate ${lr}`);
      this.lr = lr;
    }
    const { momentum: mu, weightDecay: wd, dampening, nesterov } = this;
    const rate = this.lr;
    for (const p of this.params) {
      const g = p.grad;
      if (g === null) continue;
      const w = p.data;
      if (mu === 0 && wd === 0) {
        // The reference's plain SGD: the hot loop of every step over all trainable weights.
        for (let i = 0; i < w.length; i++) w[i]! -= rate * g[i]!;
        continue;
      }
      if (mu === 0) {
        for (let i = 0; i < w.length; i++) w[i] = w[i]! - rate * (g[i]! + wd * w[i]!);
        continue;
      }
      let buf = this.momentumBuffers.get(p);
      const first = buf === undefined;
      if (buf === undefined) {
        buf = new Float32Array(w.length);
        this.momentumBuffers.set(p, buf);
      }
      for (let i = 0; i < w.length; i++) {
        const d = g[i]! + wd * w[i]!;
        buf[i] = first ? d : mu * buf[i]! + (1 - dampening) * d;
        const update = nesterov ? d + mu * buf[i]! : buf[i]!;
        w[i] = w[i]! - rate * update;
      }
    }
  }

  /**
   * `loss.backward()` then `step(lr)` in one pass. For plain SGD (no momentum, no weight decay), a
   * weight whose gradient is one linear product is updated inside that product (Gemm with C = W),
   * so its gradient is never written: about a tenth of a CLAP step (README, Performance). Such
   * parameters end with `.grad` null; the rest are stepped as usual. The result equals
   * backward + step up to float32 rounding.
   */
  backwardStep(loss: Tensor, lr?: number): void {
    if (lr !== undefined && !(lr >= 0)) throw new RangeError(`SGD.backwardStep: invalid learning rate ${lr}`);
    const rate = lr ?? this.lr;
    const fold = sgdSettings.foldIntoGemm && this.momentum === 0 && this.weightDecay === 0;
    loss.backward(undefined, fold ? { sgdRates: new Map(this.params.map((p) => [p, rate])) } : {});
    this.step(rate);
  }

  /** Clears every parameter's gradient (to null: a parameter left out of the next graph is skipped). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
}

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/**
 * torch.optim.Adam's update (amsgrad off, L2 weight decay), per parameter p with gradient g, step t
 * counted per parameter from 1 (parameters whose grad is null are skipped and do not count a step):
 *
 *     g = g + weightDecay * p
 *     m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2      (m = v = 0 before step 1)
 *     p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * The moments are float64, so the update is the one torch computes in float64.
 */
export class Adam {
  readonly params: Tensor[];
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** First and second moments and the step count t of each parameter (torch's `exp_avg`, `exp_avg_sq`, `step`). */
  readonly moments = new Map<Tensor, { m: Float64Array; v: Float64Array; t: number }>();

  constructor(params: Tensor[], opts: AdamOptions) {
    const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = opts;
    if (!(lr >= 0)) throw new RangeError(`Adam: invalid learning rate ${lr}`);
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new RangeError(`Adam: betas must lie in [0, 1), got (${beta1}, ${beta2})`);
    if (!(eps >= 0)) throw new RangeError(`Adam: invalid eps ${eps}`);
    if (!(weightDecay >= 0)) throw new RangeError(`Adam: invalid weight decay ${weightDecay}`);
    this.params = [...new Set(params)];
    this.lr = lr; this.beta1 = beta1; this.beta2 = beta2; this.eps = eps; this.weightDecay = weightDecay;
  }

  /** One update of every parameter that has a gradient, with learning rate `lr` (default: `this.lr`). */
  step(lr?: number): void {
    if (lr !== undefined) {
      if (!(lr >= 0)) throw new RangeError(`Adam.step: invalid learning rate ${lr}`);
      this.lr = lr;
    }
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this;
    for (const p of this.params) {
      const g = p.grad;
      if (g === null) continue;
      let s = this.moments.get(p);
      if (s === undefined) {
        s = { m: new Float64Array(p.size), v: new Float64Array(p.size), t: 0 };
        this.moments.set(p, s);
      }
      s.t++;
      const stepSize = this.lr / (1 - b1 ** s.t);
      const rootBias2 = Math.sqrt(1 - b2 ** s.t);
      const w = p.data, { m, v } = s;
      for (let i = 0; i < w.length; i++) {
        const d = g[i]! + wd * w[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * d;
        v[i] = b2 * v[i]! + (1 - b2) * d * d;
        w[i] = w[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / rootBias2 + eps);
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
}

/**
 * torch.optim.lr_scheduler.MultiStepLR stepped once per epoch: lr * gamma^(number of milestones
 * <= epoch). RAPF: milestones [4, 10], gamma 0.1.
 */
export function multiStepLr(epoch: number, lr: number, milestones: readonly number[], gamma: number): number {
  if (!(Number.isInteger(epoch) && epoch >= 0)) throw new RangeError(`schedule: epoch must be an integer >= 0, got ${epoch}`);
  let passed = 0;
  for (const e of milestones) if (e <= epoch) passed++;
  return lr * gamma ** passed;
}

export interface WarmupCosineOptions {
  /** Warm-up length as a fraction of S: W = floor(warmupFraction * S). */
  warmupFraction?: number;
  /** The cosine ends at f = lr * finalFactor. */
  finalFactor?: number;
}

function checkSchedule(k: number, s: number): void {
  if (!(Number.isInteger(s) && s >= 1)) throw new RangeError(`schedule: S must be a positive integer, got ${s}`);
  if (!(Number.isInteger(k) && k >= 0 && k < s)) throw new RangeError(`schedule: iteration k = ${k} outside [0, ${s})`);
}

/**
 * Learning rate of iteration k (0-based) of S (spec section 5): W = floor(0.3 S) warm-up
 * iterations at lr (k + 1) / (W + 1), then f + (lr - f)(1 + cos(pi (k - W) / (S - W))) / 2 with
 * f = lr * 1e-3. The warm-up never reaches lr; the cosine starts at lr (k = W) and stays above f.
 */
export function warmupCosineLr(k: number, s: number, lr: number, opts: WarmupCosineOptions = {}): number {
  checkSchedule(k, s);
  const w = Math.floor((opts.warmupFraction ?? 0.3) * s);
  if (k < w) return (lr * (k + 1)) / (w + 1);
  const f = lr * (opts.finalFactor ?? 1e-3);
  return f + ((lr - f) * (1 + Math.cos((Math.PI * (k - w)) / (s - w)))) / 2;
}

/** The cosine of `warmupCosineLr` without warm-up (W = 0): lr at k = 0, decaying towards lr * finalFactor. */
export function cosineLr(k: number, s: number, lr: number, finalFactor = 1e-3): number {
  return warmupCosineLr(k, s, lr, { warmupFraction: 0, finalFactor });
}
