/**
 * Temperature scaling (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
 * ICML 2017): one scalar T > 0 divides every logit, p = softmax(z / T). T is fitted by minimising
 * the negative log-likelihood of held-out samples of known classes; dividing by a positive scalar
 * never changes the argmax, so accuracy is untouched and only the confidences move.
 *
 * The fit works on u = log T, where NLL(u) is smooth and T > 0 holds by construction. NLL(u) is
 * convex in 1/T (a log-sum-exp of linear functions of 1/T minus a linear term), hence unimodal in
 * u: a bracket found by doubling steps in u, then golden-section search inside it, finds the
 * minimum without derivatives and cannot diverge. Logits of every sample are given as one
 * row-major array [n, C] with integer labels [n].
 *
 * Also here: the NLL and the Brier score (sum over classes of (p_j - y_j)^2, mean over samples,
 * in [0, 2]) of logits at a temperature, and the max-probability confidences at a temperature for
 * the ECE of `calibration.ts`. Sums are in float64 and every softmax subtracts the row maximum.
 */

function checkLogits(fn: string, logits: Float32Array | Float64Array, rows: number, cols: number, labels?: ArrayLike<number>): void {
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`${fn}: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new Error(`${fn}: cols must be a positive integer, got ${cols}`);
  if (logits.length !== rows * cols) throw new Error(`${fn}: logits has ${logits.length} values, expected rows * cols = ${rows * cols}`);
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i]!)) throw new Error(`${fn}: logit [${Math.floor(i / cols)}, ${i % cols}] is not finite (${logits[i]})`);
  }
  if (labels === undefined) return;
  if (labels.length !== rows) throw new Error(`${fn}: ${labels.length} labels for ${rows} rows`);
  for (let i = 0; i < rows; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= cols) throw new Error(`${fn}: label ${i} = ${y} is not a class index in [0, ${cols})`);
  }
}

function checkTemperature(fn: string, temperature: number): void {
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature <= 0) {
    throw new Error(`${fn}: temperature must be a finite number > 0, got ${String(temperature)}`);
  }
}

/** softmax(row / T) into `out` (float64), stable. */
/** The row's max logit m: subtracting it keeps every exp((z_j - m) / T) <= 1. */
function rowMax(logits: Float32Array | Float64Array, offset: number, cols: number): number {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) m = Math.max(m, logits[offset + j]!);
  return m;
}

/** sum_j exp((z_j - m) / T) over the row: the softmax's denominator relative to exp(m / T). */
function rowPartition(logits: Float32Array | Float64Array, offset: number, cols: number, temperature: number, m: number): number {
  let z = 0;
  for (let j = 0; j < cols; j++) z += Math.exp((logits[offset + j]! - m) / temperature);
  return z;
}

function softmaxRow(logits: Float32Array | Float64Array, offset: number, cols: number, temperature: number, out: Float64Array): void {
  const m = rowMax(logits, offset, cols);
  let z = 0;
  for (let j = 0; j < cols; j++) z += out[j] = Math.exp((logits[offset + j]! - m) / temperature);
  for (let j = 0; j < cols; j++) out[j]! /= z;
}

/** Mean over rows of -log softmax(z / T)[y]. Shapes: logits [rows, cols], labels [rows]. */
export function negativeLogLikelihood(logits: Float32Array | Float64Array, rows: number, cols: number, labels: ArrayLike<number>, temperature = 1): number {
  checkLogits('negativeLogLikelihood', logits, rows, cols, labels);
  checkTemperature('negativeLogLikelihood', temperature);
  return nllUnchecked(logits, rows, cols, labels, temperature);
}

function nllUnchecked(logits: Float32Array | Float64Array, rows: number, cols: number, labels: ArrayLike<number>, temperature: number): number {
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const m = rowMax(logits, o, cols);
    const z = rowPartition(logits, o, cols, temperature, m);
    // -log p_y = log z - (z_y - m) / T, exact even where p_y underflows to 0.
    sum += Math.log(z) - (logits[o + labels[r]!]! - m) / temperature;
  }
  return sum / rows;
}

/** Mean over rows of sum_j (p_j - [j = y])^2 with p = softmax(z / T); in [0, 2]. */
export function brierScore(logits: Float32Array | Float64Array, rows: number, cols: number, labels: ArrayLike<number>, temperature = 1): number {
  checkLogits('brierScore', logits, rows, cols, labels);
  checkTemperature('brierScore', temperature);
  const p = new Float64Array(cols);
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    softmaxRow(logits, r * cols, cols, temperature, p);
    const y = labels[r]!;
    for (let j = 0; j < cols; j++) {
      const d = p[j]! - (j === y ? 1 : 0);
      sum += d * d;
    }
  }
  return sum / rows;
}

/**
 * Max probability of softmax(z / T) per row, [rows] (the confidence the ECE bins), float32 like
 * `softmaxConfidences`: at T = 1 the two agree to the bit.
 */
export function scaledConfidences(logits: Float32Array | Float64Array, rows: number, cols: number, temperature: number): Float32Array {
  checkLogits('scaledConfidences', logits, rows, cols);
  checkTemperature('scaledConfidences', temperature);
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    // The max's own term is exp(0) = 1, so its probability is 1 / z.
    out[r] = 1 / rowPartition(logits, r * cols, cols, temperature, rowMax(logits, r * cols, cols));
  }
  return out;
}

/** The fitted temperature and the NLL of the fitting data before (T = 1) and after. */
export interface TemperatureFit {
  temperature: number;
  nllBefore: number;
  nllAfter: number;
  /** Samples the fit used. */
  samples: number;
}

/** Search range of log T: T in [e^-7, e^7] ≈ [1e-3, 1100]; CLIP-style logits need T up to ~100. */
const LOG_T_MIN = -7;
const LOG_T_MAX = 7;
const GOLDEN = (Math.sqrt(5) - 1) / 2;

/**
 * The T > 0 minimising the NLL of `labels` under softmax(logits / T) (Guo et al. 2017), by
 * bracketing and golden-section search on u = log T, to |Δu| < `tolerance`. Never returns a T
 * with a higher NLL than T = 1 (T = 1 is inside the search and kept when nothing beats it), so
 * `nllAfter <= nllBefore` always holds. When every sample is already predicted correctly with
 * certainty the NLL falls toward 0 as T shrinks; the search stops at the range's end (T = e^-7).
 * Shapes: logits [rows, cols], labels [rows].
 */
export function fitTemperature(logits: Float32Array | Float64Array, rows: number, cols: number, labels: ArrayLike<number>, tolerance = 1e-6): TemperatureFit {
  checkLogits('fitTemperature', logits, rows, cols, labels);
  const f = (u: number): number => nllUnchecked(logits, rows, cols, labels, Math.exp(u));
  const nllBefore = f(0);
  // Bracket: from u = 0 walk downhill with doubling steps; f(prev) >= f(cur) <= f(next) brackets
  // the minimum of the unimodal f in [prev, next]. A walk stopped by the range's end brackets it too.
  const h = 0.25;
  const up = f(h);
  const dir = up < nllBefore ? 1 : -1;
  const first = dir === 1 ? up : f(-h);
  let left: number;
  let right: number;
  if (first >= nllBefore) {
    left = -h; // neither direction descends by h: the minimum is within (-h, h)
    right = h;
  } else {
    let prev = 0;
    let cur = dir * h;
    let fCur = first;
    let step = h;
    for (;;) {
      step *= 2;
      const next = Math.max(LOG_T_MIN, Math.min(LOG_T_MAX, cur + dir * step));
      const fNext = f(next);
      if (fNext >= fCur || next === LOG_T_MIN || next === LOG_T_MAX) {
        left = Math.min(prev, next);
        right = Math.max(prev, next);
        break;
      }
      prev = cur;
      cur = next;
      fCur = fNext;
    }
  }
  // Golden section inside [left, right], which holds the minimum of the unimodal f.
  let x1 = right - GOLDEN * (right - left);
  let x2 = left + GOLDEN * (right - left);
  let f1 = f(x1);
  let f2 = f(x2);
  while (right - left > tolerance) {
    if (f1 <= f2) {
      right = x2;
      x2 = x1;
      f2 = f1;
      x1 = right - GOLDEN * (right - left);
      f1 = f(x1);
    } else {
      left = x1;
      x1 = x2;
      f1 = f2;
      x2 = left + GOLDEN * (right - left);
      f2 = f(x2);
    }
  }
  let u = (left + right) / 2;
  let best = f(u);
  if (!(best <= nllBefore)) {
    u = 0;
    best = nllBefore;
  }
  return { temperature: Math.exp(u), nllBefore, nllAfter: best, samples: rows };
}
