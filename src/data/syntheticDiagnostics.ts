/**
 * Diagnostics of a features dataset (used by the synthetic generator's tests and its docs): how hard
 * it is for a zero-shot classifier and for a classifier fit on images (nearest class mean).
 */
import type { FeaturesDataset, FeaturesSplit } from './types.js';

/** Dot product of d values of two float64 rows. */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += a[ao + i]! * b[bo + i]!;
  return s;
}
/** t_c = normalize(mean_p e[c,p]) as [C, D] float64. */
export function classTextFeatures(ds: FeaturesDataset): Float64Array {
  const C = ds.numClasses;
  const P = ds.numTemplates;
  const D = ds.manifest.dim;
  const t = new Float64Array(C * D);
  for (let c = 0; c < C; c++) {
    const o = c * D;
    for (let p = 0; p < P; p++) {
      const eo = (c * P + p) * D;
      for (let i = 0; i < D; i++) t[o + i] += ds.text[eo + i]!;
    }
    const n = Math.sqrt(dot(t, o, t, o, D));
    if (n > 0) for (let i = 0; i < D; i++) t[o + i] /= n;
  }
  return t;
}

/** argmax_c (f_s . w_c + bias_c) over view 0 of every sample of `split` (first maximum wins). */
function predictLinear(split: FeaturesSplit, w: Float64Array, bias: Float64Array | null, C: number): Int32Array {
  const { n, views: V, dim: D, features } = split;
  const pred = new Int32Array(n);
  const f = new Float64Array(D);
  for (let s = 0; s < n; s++) {
    const fo = s * V * D;
    for (let i = 0; i < D; i++) f[i] = features[fo + i]!;
    let best = -Infinity;
    let arg = 0;
    for (let c = 0; c < C; c++) {
      const b = bias === null ? 0 : bias[c]!;
      if (b === -Infinity) continue;
      const v = dot(f, 0, w, c * D, D) + b;
      if (v > best) {
        best = v;
        arg = c;
      }
    }
    pred[s] = arg;
  }
  return pred;
}

function accuracy(pred: Int32Array, labels: Int32Array): number {
  if (pred.length === 0) return NaN;
  let ok = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) ok++;
  return ok / pred.length;
}

/** Zero-shot predictions of view 0: argmax_c f . t_c with t_c = normalize(mean_p e[c,p]). */
export function zeroShotPredictions(ds: FeaturesDataset, split: 'train' | 'test'): Int32Array {
  return predictLinear(ds[split], classTextFeatures(ds), null, ds.numClasses);
}

/** Zero-shot top-1 accuracy (in [0, 1]) on view 0 of `split`. */
export function zeroShotAccuracy(ds: FeaturesDataset, split: 'train' | 'test'): number {
  return accuracy(zeroShotPredictions(ds, split), ds[split].labels);
}

/** Nearest-class-mean predictions on test view 0, class means of train view 0 (Euclidean distance;
 *  classes without training samples are never predicted). */
export function nearestClassMeanPredictions(ds: FeaturesDataset): Int32Array {
  const C = ds.numClasses;
  const { n, views: V, dim: D, features, labels } = ds.train;
  const mean = new Float64Array(C * D);
  const count = new Float64Array(C);
  for (let s = 0; s < n; s++) {
    const c = labels[s]!;
    if (c < 0 || c >= C) continue;
    count[c]! += 1;
    const fo = s * V * D;
    const mo = c * D;
    for (let i = 0; i < D; i++) mean[mo + i] += features[fo + i]!;
  }
  // argmin |f - mu_c|^2 = argmax f . mu_c - |mu_c|^2 / 2.
  const bias = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    if (count[c] === 0) {
      bias[c] = -Infinity;
      continue;
    }
    const mo = c * D;
    for (let i = 0; i < D; i++) mean[mo + i] /= count[c]!;
    bias[c] = -0.5 * dot(mean, mo, mean, mo, D);
  }
  return predictLinear(ds.test, mean, bias, C);
}

/** Nearest-class-mean top-1 accuracy (in [0, 1]): fit on train view 0, evaluated on test view 0. */
export function nearestClassMeanAccuracy(ds: FeaturesDataset): number {
  return accuracy(nearestClassMeanPredictions(ds), ds.test.labels);
}
