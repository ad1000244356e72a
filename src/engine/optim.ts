/**
 * Stochastic gradient descent as `torch.optim.SGD`, and the learning-rate schedules of spec
 * section 5 (linear warm-up, then cosine decay to lr * 1e-3).
 */
import type { Tensor } from './tensor.js';

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

  /** Clears every parameter's gradient (to null: a parameter left out of the next graph is skipped). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
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
