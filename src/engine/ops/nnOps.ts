/**
 * Neural-network operations with hand-written backward passes (fused where a primitive
 * composition would allocate several [rows, cols] temporaries): softmax with an additive mask,
 * log-softmax, cross-entropy, layer norm, L2 normalization, dropout, and the KL divergence of
 * diagonal Gaussians.
 */
import { broadcastShapes, sumToShape } from '../broadcast.js';
import { expandData, multiplyInPlace, scaled } from './elementwise.js';
import { accumulateGrad, result, shapeToString, Tensor } from '../tensor.js';

function lastDim(x: Tensor, op: string): number {
  if (x.ndim === 0) throw new Error(`${op}: needs at least one dimension`);
  return x.shape[x.ndim - 1]!;
}

/** Row-wise softmax of `x + mask` over the last axis (mask: additive, e.g. -Infinity, no gradient). */
export function softmax(x: Tensor, mask?: Tensor): Tensor {
  const cols = lastDim(x, 'softmax');
  const xd = x.data;
  const md = mask ? expandData(mask, x.shape) : null;
  const y = new Float32Array(xd.length);
  for (let base = 0; base < xd.length; base += cols) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) {
      const v = md ? xd[base + j]! + md[base + j]! : xd[base + j]!;
      y[base + j] = v;
      if (v > max) max = v;
    }
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const e = max === -Infinity ? 0 : Math.exp(y[base + j]! - max);
      y[base + j] = e;
      s += e;
    }
    // A fully masked row gives zeros rather than NaN.
    const inv = s > 0 ? 1 / s : 0;
    for (let j = 0; j < cols; j++) y[base + j]! *= inv;
  }
  const out = result(y, x.shape, [x], 'softmax');
  out.backwardFn = () => accumulateGrad(x, softmaxBackward(out.grad!, y, cols), true);
  return out;
}

/** dx = y * (g - sum_j g y) per row, written over g (see accumulateGrad). */
function softmaxBackward(g: Float32Array, y: Float32Array, cols: number): Float32Array {
  const gx = g;
  for (let base = 0; base < g.length; base += cols) {
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += g[base + j]! * y[base + j]!;
    for (let j = 0; j < cols; j++) gx[base + j] = y[base + j]! * (g[base + j]! - dot);
  }
  return gx;
}

/** log(softmax(x)) over the last axis, computed stably. */
export function logSoftmax(x: Tensor): Tensor {
  const cols = lastDim(x, 'logSoftmax');
  const xd = x.data;
  const y = new Float32Array(xd.length);
  for (let base = 0; base < xd.length; base += cols) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, xd[base + j]!);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(xd[base + j]! - max);
    const lse = max + Math.log(s);
    for (let j = 0; j < cols; j++) y[base + j] = xd[base + j]! - lse;
  }
  const out = result(y, x.shape, [x], 'logSoftmax');
  out.backwardFn = () => accumulateGrad(x, logSoftmaxBackward(out.grad!, y, cols), true);
  return out;
}

/** dx = g - softmax * sum_j g per row, written over g (see accumulateGrad). */
function logSoftmaxBackward(g: Float32Array, y: Float32Array, cols: number): Float32Array {
  const gx = g;
  for (let base = 0; base < g.length; base += cols) {
    let gs = 0;
    for (let j = 0; j < cols; j++) gs += g[base + j]!;
    for (let j = 0; j < cols; j++) gx[base + j] = g[base + j]! - Math.exp(y[base + j]!) * gs;
  }
  return gx;
}

/** Mean cross-entropy of logits [N, C] against integer targets [N] (PyTorch `F.cross_entropy`). */
export function crossEntropy(logits: Tensor, targets: Int32Array | number[]): Tensor {
  const cols = lastDim(logits, 'crossEntropy');
  const rows = checkTargets(logits, targets, cols);
  const xd = logits.data;
  const probs = new Float32Array(xd.length);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const t = targets[r]!;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, xd[base + j]!);
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(xd[base + j]! - max);
      probs[base + j] = e;
      s += e;
    }
    loss += max + Math.log(s) - xd[base + t]!;
    const inv = 1 / s;
    for (let j = 0; j < cols; j++) probs[base + j]! *= inv;
  }
  const out = result(Float32Array.of(loss / rows), [], [logits], 'crossEntropy');
  out.backwardFn = () => accumulateGrad(logits, crossEntropyBackward(probs, targets, cols, out.grad![0]! / rows), true);
  return out;
}

/** The rows of logits [N, cols] after checking one target in [0, cols) per row (cross-entropy's input checks). */
export function checkTargets(logits: Tensor, targets: Int32Array | number[], cols: number): number {
  const rows = logits.size / cols;
  if (targets.length !== rows) throw new Error(`crossEntropy: ${targets.length} targets for ${rows} rows of ${shapeToString(logits.shape)}`);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (!(t >= 0 && t < cols)) throw new Error(`crossEntropy: target ${t} out of range [0, ${cols}) at row ${r}`);
  }
  return rows;
}

/** d(mean CE)/dlogits = (softmax - onehot) * g, written over the probabilities. */
export function crossEntropyBackward(probs: Float32Array, targets: Int32Array | number[], cols: number, g: number): Float32Array {
  for (let r = 0; r < targets.length; r++) probs[r * cols + targets[r]!]! -= 1;
  for (let i = 0; i < probs.length; i++) probs[i]! *= g;
  return probs;
}

/** Layer normalization over the last axis (biased variance, as PyTorch). */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const d = lastDim(x, 'layerNorm');
  if (gamma.size !== d || beta.size !== d) throw new Error(`layerNorm: gain/bias of size ${gamma.size}/${beta.size} for width ${d}`);
  const xd = x.data, gd = gamma.data, bd = beta.data;
  const rows = x.size / d;
  const xhat = new Float32Array(x.size);
  const rstd = new Float32Array(rows);
  const y = new Float32Array(x.size);
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let m = 0;
    for (let j = 0; j < d; j++) m += xd[base + j]!;
    m /= d;
    let v = 0;
    for (let j = 0; j < d; j++) { const c = xd[base + j]! - m; v += c * c; }
    const rs = 1 / Math.sqrt(v / d + eps);
    rstd[r] = rs;
    for (let j = 0; j < d; j++) {
      const h = (xd[base + j]! - m) * rs;
      xhat[base + j] = h;
      y[base + j] = h * gd[j]! + bd[j]!;
    }
  }
  const out = result(y, x.shape, [x, gamma, beta], 'layerNorm');
  out.backwardFn = () => {
    const g = out.grad!;
    if (gamma.requiresGrad || beta.requiresGrad) {
      const gg = new Float32Array(d), gb = new Float32Array(d);
      layerNormAffineBackward(g, xhat, d, gg, gb);
      accumulateGrad(gamma, gg, true);
      accumulateGrad(beta, gb, true);
    }
    if (x.requiresGrad) accumulateGrad(x, layerNormInputBackward(g, xhat, rstd, gd, d), true);
  };
  return out;
}

/** dgamma = sum over rows of g * xhat, dbeta = sum over rows of g. */
function layerNormAffineBackward(g: Float32Array, xhat: Float32Array, d: number, gg: Float32Array, gb: Float32Array): void {
  for (let base = 0; base < g.length; base += d) {
    for (let j = 0; j < d; j++) { gg[j]! += g[base + j]! * xhat[base + j]!; gb[j]! += g[base + j]!; }
  }
}

/**
 * dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)) per row, gh = g * gamma, written over g
 * (see accumulateGrad; the gain and bias gradients must have read g before).
 */
function layerNormInputBackward(g: Float32Array, xhat: Float32Array, rstd: Float32Array, gd: Float32Array, d: number): Float32Array {
  const gx = g;
  for (let r = 0; r < rstd.length; r++) {
    const base = r * d;
    let s1 = 0, s2 = 0;
    for (let j = 0; j < d; j++) { const gh = g[base + j]! * gd[j]!; s1 += gh; s2 += gh * xhat[base + j]!; }
    s1 /= d; s2 /= d;
    for (let j = 0; j < d; j++) gx[base + j] = rstd[r]! * (g[base + j]! * gd[j]! - s1 - xhat[base + j]! * s2);
  }
  return gx;
}

/** x / max(||x||, eps) over the last axis (PyTorch `F.normalize`). */
export function l2Normalize(x: Tensor, eps = 1e-12): Tensor {
  const d = lastDim(x, 'l2Normalize');
  const xd = x.data;
  const y = new Float32Array(x.size);
  const inv = new Float32Array(x.size / d);
  const clamped = new Uint8Array(inv.length);
  for (let r = 0; r < inv.length; r++) {
    let s = 0;
    for (let j = 0, base = r * d; j < d; j++) s += xd[base + j]! * xd[base + j]!;
    const n = Math.sqrt(s);
    clamped[r] = n < eps ? 1 : 0;
    inv[r] = 1 / Math.max(n, eps);
    for (let j = 0, base = r * d; j < d; j++) y[base + j] = xd[base + j]! * inv[r]!;
  }
  const out = result(y, x.shape, [x], 'l2Normalize');
  out.backwardFn = () => accumulateGrad(x, l2NormalizeBackward(out.grad!, y, inv, clamped, d), true);
  return out;
}

/** dx = (g - y (g . y)) / ||x|| per row (g / eps where the norm was clamped), written over g (see accumulateGrad). */
function l2NormalizeBackward(g: Float32Array, y: Float32Array, inv: Float32Array, clamped: Uint8Array, d: number): Float32Array {
  const gx = g;
  for (let r = 0; r < inv.length; r++) {
    const base = r * d;
    let dot = 0;
    if (!clamped[r]) for (let j = 0; j < d; j++) dot += g[base + j]! * y[base + j]!;
    for (let j = 0; j < d; j++) gx[base + j] = inv[r]! * (g[base + j]! - y[base + j]! * dot);
  }
  return gx;
}

/** What dropout needs from a generator (implemented by `Rng`). */
export interface MaskSource { bernoulliMask(out: Float32Array, keepProb: number, scale: number): void }

/** Inverted dropout: zero with probability p, scale kept values by 1/(1-p). Identity when not training. */
export function dropout(x: Tensor, p: number, rng: MaskSource, training: boolean): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: probability ${p} must be in [0, 1)`);
  if (!training || p === 0) return x;
  return dropoutWithMask(x, dropoutMask(x.size, p, rng));
}

/** Inverted dropout's mask of n values: 0 with probability p, else 1/(1-p) (the draws `dropout` makes). */
export function dropoutMask(n: number, p: number, rng: MaskSource): Float32Array {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: probability ${p} must be in [0, 1)`);
  const mask = new Float32Array(n);
  rng.bernoulliMask(mask, 1 - p, 1 / (1 - p));
  return mask;
}

/** x * mask with a given mask (the mask may come from a worker thread). */
export function dropoutWithMask(x: Tensor, mask: Float32Array): Tensor {
  const xd = x.data;
  const y = new Float32Array(x.size);
  for (let i = 0; i < y.length; i++) y[i] = xd[i]! * mask[i]!;
  const out = result(y, x.shape, [x], 'dropout');
  out.backwardFn = () => accumulateGrad(x, multiplyInPlace(out.grad!, mask), true);
  return out;
}

/**
 * KL(N(mu, sigma^2) || N(priorMu, priorSigma^2)) summed over the last axis: one value per row.
 * Without a prior it is N(0, 1): log(1/sigma) + (sigma^2 + mu^2)/2 - 1/2 (spec section 4).
 */
export function klDiagGaussian(mu: Tensor, sigma: Tensor, priorMu?: Tensor, priorSigma?: Tensor): Tensor {
  // One pass each way over [..., D] instead of the ~9 [..., D] temporaries of the primitive
  // composition (which took ~5 ms of a 55 ms CLAP step; its twin is in ops.test.ts).
  let shape = broadcastShapes(mu.shape, sigma.shape);
  if (priorMu) shape = broadcastShapes(shape, priorMu.shape);
  if (priorSigma) shape = broadcastShapes(shape, priorSigma.shape);
  const d = shape.length > 0 ? shape[shape.length - 1]! : 1;
  const m = expandData(mu, shape), s = expandData(sigma, shape);
  const pm = priorMu ? expandData(priorMu, shape) : null;
  const ps = priorSigma ? expandData(priorSigma, shape) : null;
  const n = m.length, rows = n / d;
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    for (let j = r * d, end = j + d; j < end; j++) {
      const sj = s[j]!, dm = pm ? m[j]! - pm[j]! : m[j]!;
      if (ps) {
        const p = ps[j]!;
        acc += Math.log(p / sj) + (sj * sj + dm * dm) / (2 * p * p) - 0.5;
      } else {
        acc += 0.5 * (sj * sj + dm * dm) - Math.log(sj) - 0.5;
      }
    }
    y[r] = acc;
  }
  const parents = [mu, sigma, ...(priorMu ? [priorMu] : []), ...(priorSigma ? [priorSigma] : [])];
  const out = result(y, shape.slice(0, -1), parents, 'klDiagGaussian');
  out.backwardFn = () => {
    const gm = new Float32Array(n), gs = new Float32Array(n);
    const gps = priorSigma?.requiresGrad ? new Float32Array(n) : null;
    klDiagGaussianBackward(out.grad!, m, s, pm, ps, d, gm, gs, gps);
    if (priorMu?.requiresGrad) {
      accumulateGrad(priorMu, sumToShape(scaled(gm, -1), shape, priorMu.shape), true);
    }
    if (gps) accumulateGrad(priorSigma!, sumToShape(gps, shape, priorSigma!.shape), true);
    accumulateGrad(mu, sumToShape(gm, shape, mu.shape), true);
    accumulateGrad(sigma, sumToShape(gs, shape, sigma.shape), true);
  };
  return out;
}

/**
 * d/dmu = (mu - pm) / ps^2, d/dsigma = sigma / ps^2 - 1 / sigma,
 * d/dps = 1 / ps - (sigma^2 + (mu - pm)^2) / ps^3 (ps = 1, pm = 0 without a prior); d/dpm = -d/dmu.
 */
function klDiagGaussianBackward(
  g: Float32Array, m: Float32Array, s: Float32Array, pm: Float32Array | null, ps: Float32Array | null, d: number,
  gm: Float32Array, gs: Float32Array, gps: Float32Array | null,
): void {
  for (let r = 0; r < g.length; r++) {
    const gr = g[r]!;
    for (let j = r * d, end = j + d; j < end; j++) {
      const sj = s[j]!, dm = pm ? m[j]! - pm[j]! : m[j]!;
      const inv2 = ps ? 1 / (ps[j]! * ps[j]!) : 1;
      gm[j] = gr * dm * inv2;
      gs[j] = gr * (sj * inv2 - 1 / sj);
      if (gps) gps[j] = gr * (1 / ps![j]! - (sj * sj + dm * dm) * inv2 / ps![j]!);
    }
  }
}

