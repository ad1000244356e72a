/**
 * Novel data detection (PhNDD, spec section 7): per-sample scores from the model's logits and
 * threshold-free detection metrics.
 *
 * Scores are "higher = more likely known" (in-distribution), so that every metric below can treat
 * known samples as the positive class: energy (logsumexp), maximum softmax probability, negative
 * predictive entropy, negative MC variance. The uncertainty quantities themselves
 * ({@link predictiveEntropy}, {@link mcVariance}) are positive, for reporting.
 *
 * Metrics are pure functions of two score arrays (known, novel) and match scikit-learn:
 * `roc_auc_score`, `average_precision_score`, and the FPR read off `roc_curve` at 95 % TPR.
 * They throw on empty inputs and on non-finite scores, so they never return NaN.
 */

function checkShape(fn: string, data: ArrayLike<number>, dims: readonly [string, number][]): void {
  let size = 1;
  for (const [name, d] of dims) {
    if (!Number.isInteger(d) || d < 1) throw new Error(`${fn}: ${name} must be a positive integer, got ${d}`);
    size *= d;
  }
  if (data.length !== size) {
    const shape = dims.map(([n]) => n).join(" * ");
    throw new Error(`${fn}: input has ${data.length} values, expected ${shape} = ${size}`);
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new Error(`${fn}: input value ${i} is not finite (${data[i]})`);
  }
}

/** Max and logsumexp of one row, computed stably (every exponent <= 0). */
function rowLse(x: ArrayLike<number>, o: number, C: number): { max: number; lse: number } {
  let m = -Infinity;
  for (let j = 0; j < C; j++) m = Math.max(m, x[o + j]!);
  let z = 0;
  for (let j = 0; j < C; j++) z += Math.exp(x[o + j]! - m);
  return { max: m, lse: m + Math.log(z) };
}

/**
 * Energy score = logsumexp over classes of the mean logits (higher = known; it is minus the
 * free energy). Shape: meanLogits [rows, C] → [rows].
 */
export function energyScore(meanLogits: Float32Array, rows: number, C: number): Float64Array {
  checkShape("energyScore", meanLogits, [["rows", rows], ["C", C]]);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) out[r] = rowLse(meanLogits, r * C, C).lse;
  return out;
}

/** Maximum softmax probability exp(max - lse). Shape: meanLogits [rows, C] → [rows]. */
export function mspScore(meanLogits: Float32Array, rows: number, C: number): Float64Array {
  checkShape("mspScore", meanLogits, [["rows", rows], ["C", C]]);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const { max, lse } = rowLse(meanLogits, r * C, C);
    out[r] = Math.exp(max - lse);
  }
  return out;
}

/**
 * Predictive entropy of softmax(mean logits), in nats: H = -sum_j p_j log p_j with
 * log p_j = l_j - lse computed directly (never log of an underflowed 0), and p_j log p_j = 0 when
 * p_j underflows to 0. Range [0, log C]. Shape: meanLogits [rows, C] → [rows].
 */
export function predictiveEntropy(meanLogits: Float32Array, rows: number, C: number): Float64Array {
  checkShape("predictiveEntropy", meanLogits, [["rows", rows], ["C", C]]);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    const { lse } = rowLse(meanLogits, o, C);
    let h = 0;
    for (let j = 0; j < C; j++) {
      const logp = meanLogits[o + j]! - lse;
      h -= Math.exp(logp) * logp;
    }
    out[r] = Math.max(0, h); // rounding can give -1e-17 for a one-hot row
  }
  return out;
}

/** Minus the predictive entropy (higher = known). Shape: meanLogits [rows, C] → [rows]. */
export function negEntropyScore(meanLogits: Float32Array, rows: number, C: number): Float64Array {
  const h = predictiveEntropy(meanLogits, rows, C);
  for (let r = 0; r < rows; r++) h[r] = -h[r]!;
  return h;
}

/**
 * MC variance of the logits: for each sample b, the mean over classes c of the variance over the T
 * Monte-Carlo draws of logits[r, b, c]. Shape: logitsTBC [T, B, C] row-major → [B].
 *
 * Variance definition: the population variance (divide by T), two-pass (mean first, then squared
 * deviations) for accuracy. Why population: it is the variance of exactly the T draws the
 * prediction averages over, it is defined (0) for T = 1 where the unbiased 1/(T-1) estimate is
 * 0/0, and the two differ by the constant factor T/(T-1), which changes no ranking and hence no
 * AUROC / AUPR / FPR95.
 */
export function mcVariance(logitsTBC: Float32Array, T: number, B: number, C: number): Float64Array {
  checkShape("mcVariance", logitsTBC, [["T", T], ["B", B], ["C", C]]);
  const out = new Float64Array(B);
  const BC = B * C;
  for (let b = 0; b < B; b++) {
    let acc = 0;
    for (let c = 0; c < C; c++) {
      const o = b * C + c;
      let mean = 0;
      for (let r = 0; r < T; r++) mean += logitsTBC[r * BC + o]!;
      mean /= T;
      let ss = 0;
      for (let r = 0; r < T; r++) {
        const d = logitsTBC[r * BC + o]! - mean;
        ss += d * d;
      }
      acc += ss / T;
    }
    out[b] = acc / C;
  }
  return out;
}

/** Minus {@link mcVariance} (higher = known). Shape: logitsTBC [T, B, C] → [B]. */
export function negMcVarianceScore(logitsTBC: Float32Array, T: number, B: number, C: number): Float64Array {
  const v = mcVariance(logitsTBC, T, B, C);
  for (let b = 0; b < B; b++) v[b] = -v[b]!;
  return v;
}

/**
 * The binary classification curve sklearn's `_binary_clf_curve` builds: scores sorted from high to
 * low, one point per *distinct* score (a tie group is taken all at once), with the cumulative
 * true positives (known) and false positives (novel) at score >= threshold.
 */
export interface ClfCurve {
  tps: number[];
  fps: number[];
  P: number;
  N: number;
}

export function clfCurve(fn: string, known: ArrayLike<number>, novel: ArrayLike<number>): ClfCurve {
  if (known.length === 0) throw new Error(`${fn}: no known (positive) scores`);
  if (novel.length === 0) throw new Error(`${fn}: no novel (negative) scores`);
  const items: { s: number; pos: boolean }[] = [];
  for (let i = 0; i < known.length; i++) {
    const s = known[i]!;
    if (!Number.isFinite(s)) throw new Error(`${fn}: known score ${i} is not finite (${s})`);
    items.push({ s, pos: true });
  }
  for (let i = 0; i < novel.length; i++) {
    const s = novel[i]!;
    if (!Number.isFinite(s)) throw new Error(`${fn}: novel score ${i} is not finite (${s})`);
    items.push({ s, pos: false });
  }
  items.sort((a, b) => b.s - a.s);
  const tps: number[] = [];
  const fps: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < items.length; i++) {
    if (items[i]!.pos) tp++;
    else fp++;
    // Close the tie group at its last element, as sklearn does (distinct_value_indices).
    if (i === items.length - 1 || items[i + 1]!.s !== items[i]!.s) {
      tps.push(tp);
      fps.push(fp);
    }
  }
  return { tps, fps, P: known.length, N: novel.length };
}

/**
 * Area under the ROC curve with known as the positive class, equal to sklearn `roc_auc_score`:
 * the probability that a random known sample scores above a random novel one, a tie counting 1/2
 * (Mann-Whitney U / (P N) with average ranks). Computed by counting: within each tie group of the
 * curve, every known sample beats the novel samples strictly below it and half-beats those tied
 * with it. The numerator is kept as an integer count of half-pairs, so it is exact.
 * Shapes: knownScores [P], novelScores [N]; both non-empty.
 */
export function auroc(knownScores: ArrayLike<number>, novelScores: ArrayLike<number>): number {
  const { tps, fps, P, N } = clfCurve("auroc", knownScores, novelScores);
  let halfPairs = 0;
  let prevTp = 0;
  let prevFp = 0;
  for (let g = 0; g < tps.length; g++) {
    const dTp = tps[g]! - prevTp;
    const dFp = fps[g]! - prevFp;
    const novelBelow = N - fps[g]!;
    halfPairs += dTp * (2 * novelBelow + dFp);
    prevTp = tps[g]!;
    prevFp = fps[g]!;
  }
  return halfPairs / (2 * P * N);
}

/**
 * Average precision with known as the positive class, equal to sklearn `average_precision_score`:
 * AP = sum over distinct thresholds n (high to low) of (R_n - R_{n-1}) P_n with R_0 = 0, where
 * P_n = tp_n / (tp_n + fp_n) and R_n = tp_n / P; a tie group enters as a single threshold (no
 * interpolation). Shapes: knownScores [P], novelScores [N]; both non-empty.
 */
export function aupr(knownScores: ArrayLike<number>, novelScores: ArrayLike<number>): number {
  const { tps, fps, P } = clfCurve("aupr", knownScores, novelScores);
  let ap = 0;
  let prevTp = 0;
  for (let g = 0; g < tps.length; g++) {
    const tp = tps[g]!;
    if (tp !== prevTp) ap += ((tp - prevTp) / P) * (tp / (tp + fps[g]!));
    prevTp = tp;
  }
  return ap;
}

/**
 * False positive rate at 95 % true positive rate, known = positive. Convention: scanning the distinct
 * thresholds from high to low (the points of sklearn `roc_curve`), return fps / N at the first one
 * where TPR = tp / P >= 0.95. That is the smallest FPR among thresholds that keep at least 95 % of
 * the known samples. Details:
 * - `>=` with exact integer arithmetic (20 tp >= 19 P), so TPR exactly 0.95 qualifies without
 *   depending on floating rounding.
 * - Every distinct threshold is kept, i.e. `roc_curve(..., drop_intermediate=False)`. sklearn's
 *   default drop_intermediate=True can remove a collinear point and then report a larger FPR.
 * - TPR reaches 1 at the lowest threshold, so a result always exists; it lies in [0, 1].
 * Shapes: knownScores [P], novelScores [N]; both non-empty.
 */
export function fpr95(knownScores: ArrayLike<number>, novelScores: ArrayLike<number>): number {
  const { tps, fps, P, N } = clfCurve("fpr95", knownScores, novelScores);
  for (let g = 0; g < tps.length; g++) {
    if (20 * tps[g]! >= 19 * P) return fps[g]! / N;
  }
  return 1; // unreachable: the last group has tp = P
}
