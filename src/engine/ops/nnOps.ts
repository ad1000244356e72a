/**
 * Neural-network operations with hand-written backward passes (fused where a primitive
 * composition would allocate several [rows, cols] temporaries): softmax with an additive mask,
 * log-softmax, cross-entropy, layer norm, L2 normalization, dropout, and the KL divergence of
 * diagonal Gaussians.
 */
import { expandData, add, log, sub, square, div, mulScalar, addScalar } from './elementwise.js';
import { sum } from './reduce.js';
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
  out.backwardFn = () => {
    const g = out.grad!;
    const gx = new Float32Array(g.length);
    for (let base = 0; base < g.length; base += cols) {
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += g[base + j]! * y[base + j]!;
      for (let j = 0; j < cols; j++) gx[base + j] = y[base + j]! * (g[base + j]! - dot);
    }
    accumulateGrad(x, gx, true);
  };
  return out;
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
  out.backwardFn = () => {
    const g = out.grad!;
    const gx = new Float32Array(g.length);
    for (let base = 0; base < g.length; base += cols) {
      let gs = 0;
      for (let j = 0; j < cols; j++) gs += g[base + j]!;
      for (let j = 0; j < cols; j++) gx[base + j] = g[base + j]! - Math.exp(y[base + j]!) * gs;
    }
    accumulateGrad(x, gx, true);
  };
  return out;
}

/** Mean cross-entropy of logits [N, C] against integer targets [N] (PyTorch `F.cross_entropy`). */
export function crossEntropy(logits: Tensor, targets: Int32Array | number[]): Tensor {
  const cols = lastDim(logits, 'crossEntropy');
  const rows = logits.size / cols;
  if (targets.length !== rows) throw new Error(`crossEntropy: ${targets.length} targets for ${rows} rows of ${shapeToString(logits.shape)}`);
  const xd = logits.data;
  const probs = new Float32Array(xd.length);
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const t = targets[r]!;
    if (!(t >= 0 && t < cols)) throw new Error(`crossEntropy: target ${t} out of range [0, ${cols}) at row ${r}`);
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
  out.backwardFn = () => {
    const g = out.grad![0]! / rows;
    const gx = probs;
    for (let r = 0; r < rows; r++) gx[r * cols + targets[r]!]! -= 1;
    for (let i = 0; i < gx.length; i++) gx[i]! *= g;
    accumulateGrad(logits, gx, true);
  };
  return out;
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
      for (let r = 0; r < rows; r++) {
        for (let j = 0, base = r * d; j < d; j++) { gg[j]! += g[base + j]! * xhat[base + j]!; gb[j]! += g[base + j]!; }
      }
      accumulateGrad(gamma, gg, true);
      accumulateGrad(beta, gb, true);
    }
    if (!x.requiresGrad) return;
    const gx = new Float32Array(x.size);
    for (let r = 0; r < rows; r++) {
      const base = r * d;
      let s1 = 0, s2 = 0;
      for (let j = 0; j < d; j++) { const gh = g[base + j]! * gd[j]!; s1 += gh; s2 += gh * xhat[base + j]!; }
      s1 /= d; s2 /= d;
      for (let j = 0; j < d; j++) gx[base + j] = rstd[r]! * (g[base + j]! * gd[j]! - s1 - xhat[base + j]! * s2);
    }
    accumulateGrad(x, gx, true);
  };
  return out;
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
  out.backwardFn = () => {
    const g = out.grad!;
    const gx = new Float32Array(x.size);
    for (let r = 0; r < inv.length; r++) {
      const base = r * d;
      let dot = 0;
      if (!clamped[r]) for (let j = 0; j < d; j++) dot += g[base + j]! * y[base + j]!;
      for (let j = 0; j < d; j++) gx[base + j] = inv[r]! * (g[base + j]! - y[base + j]! * dot);
    }
    accumulateGrad(x, gx, true);
  };
  return out;
}

/** What dropout needs from a generator (implemented by `Rng`). */
export interface MaskSource { bernoulliMask(out: Float32Array, keepProb: number, scale: number): void }

/** Inverted dropout: zero with probability p, scale kept values by 1/(1-p). Identity when not training. */
export function dropout(x: Tensor, p: number, rng: MaskSource, training: boolean): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: probability ${p} must be in [0, 1)`);
  if (!training || p === 0) return x;
  const mask = new Float32Array(x.size);
  rng.bernoulliMask(mask, 1 - p, 1 / (1 - p));
  return dropoutWithMask(x, mask);
}

/** x * mask with a given mask (the mask may come from a worker thread). */
export function dropoutWithMask(x: Tensor, mask: Float32Array): Tensor {
  const xd = x.data;
  const y = new Float32Array(x.size);
  for (let i = 0; i < y.length; i++) y[i] = xd[i]! * mask[i]!;
  const out = result(y, x.shape, [x], 'dropout');
  out.backwardFn = () => {
    const g = out.grad!;
    const gx = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) gx[i] = g[i]! * mask[i]!;
    accumulateGrad(x, gx, true);
  };
  return out;
}

/**
 * KL(N(mu, sigma^2) || N(priorMu, priorSigma^2)) summed over the last axis: one value per row.
 * Without a prior it is N(0, 1): log(1/sigma) + (sigma^2 + mu^2)/2 - 1/2 (spec section 4).
 */
export function klDiagGaussian(mu: Tensor, sigma: Tensor, priorMu?: Tensor, priorSigma?: Tensor): Tensor {
  if (!priorMu && !priorSigma) {
    const elem = addScalar(sub(mulScalar(add(square(sigma), square(mu)), 0.5), log(sigma)), -0.5);
    return sum(elem, [-1]);
  }
  const pm = priorMu ?? Tensor.scalar(0);
  const ps = priorSigma ?? Tensor.scalar(1);
  const ratio = div(add(square(sigma), square(sub(mu, pm))), mulScalar(square(ps), 2));
  const elem = addScalar(add(sub(log(ps), log(sigma)), ratio), -0.5);
  return sum(elem, [-1]);
}

