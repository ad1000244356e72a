/**
 * Central finite-difference gradient checks. The scalar probed is sum(out * W) for a fixed random
 * W, accumulated in float64, so every output element's gradient path is exercised at once.
 */
import { noGrad, Tensor } from '../tensor.js';

export interface GradCheckOptions { eps?: number; rtol?: number; atol?: number; seed?: number }

export interface GradCheckReport { maxAbsError: number; maxRelError: number; checked: number }

/** Deterministic weights in [-1, 1] (a tiny LCG: test scaffolding, not model randomness). */
function probeWeights(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = (s / 2 ** 32) * 2 - 1;
  }
  return w;
}

function probe(out: Tensor, w: Float32Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += out.data[i]! * w[i]!;
  return s;
}

/**
 * Compares the analytic gradient of every input that requires grad with central differences.
 * Throws an Error naming the input, the element and both values when they disagree.
 */
export function gradCheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): GradCheckReport {
  const eps = opts.eps ?? 1e-2, rtol = opts.rtol ?? 2e-2, atol = opts.atol ?? 2e-3;
  for (const x of inputs) x.grad = null;
  const out = fn(...inputs);
  const w = probeWeights(out.size, opts.seed ?? 12345);
  out.backward(w);
  let maxAbsError = 0, maxRelError = 0, checked = 0;
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad) return;
    const analytic = x.grad ?? new Float32Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const orig = x.data[i]!;
      x.data[i] = orig + eps;
      const up = noGrad(() => probe(fn(...inputs), w));
      x.data[i] = orig - eps;
      const down = noGrad(() => probe(fn(...inputs), w));
      x.data[i] = orig;
      const numeric = (up - down) / (2 * eps);
      const a = analytic[i]!;
      const err = Math.abs(a - numeric);
      const rel = err / Math.max(Math.abs(a), Math.abs(numeric), 1e-12);
      maxAbsError = Math.max(maxAbsError, err);
      if (err > atol) maxRelError = Math.max(maxRelError, rel);
      checked++;
      if (err > atol + rtol * Math.max(Math.abs(a), Math.abs(numeric))) {
        throw new Error(`gradCheck: input ${xi} element ${i}: analytic ${a}, numeric ${numeric}`);
      }
    }
  });
  return { maxAbsError, maxRelError, checked };
}

/** A leaf tensor that requires grad, filled from `values` (shape given). */
export function param(values: ArrayLike<number>, shape: number[]): Tensor {
  return Tensor.from(Float32Array.from(values), shape, true);
}
