/**
 * Calibration metrics (spec section 7): reliability bins, expected calibration error (ECE) at the
 * dataset level and as the reference's mean of per-batch ECEs, and numerically stable softmax
 * confidences.
 *
 * Binning follows the reference's ECE code: `bins` equal-width bins on [0, 1], and a confidence c
 * belongs to the bin with `lower < c <= upper`. Consequently a confidence of exactly 0 falls in no
 * bin; it still counts in N (the reference divides by the whole batch), so it only dilutes the ECE.
 * A max-softmax confidence is always >= 1/C > 0, so this never happens for real predictions.
 *
 * Bin edges are the float32 values nearest to k / bins (`Math.fround(k / bins)`; the first is 0 and
 * the last is 1). Why float32: the reference compares float32 confidences with float32 edges from
 * `torch.linspace(0, 1, bins + 1)`. With exact (double) edges a float32 confidence equal to 2/15
 * (0.13333334...) would sit just above the double 2/15 and move to the next bin, unlike in the
 * reference; with float32 edges both the float32 and the double value of k / bins land in the
 * lower bin. Only confidences within one float32 ulp of an edge are affected by this choice.
 */

/** One reliability bin. Empty bins report meanConfidence = accuracy = 0: check `count`. */
export interface ReliabilityBin {
  /** Lower edge (exclusive). */
  lower: number;
  /** Upper edge (inclusive). */
  upper: number;
  /** Number of samples with lower < confidence <= upper. */
  count: number;
  /** Mean confidence of those samples (0 when count = 0). */
  meanConfidence: number;
  /** Fraction of those samples that are correct (0 when count = 0). */
  accuracy: number;
}

function checkInputs(
  fn: string,
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean> | Uint8Array,
  bins: number,
): void {
  if (confidences.length !== correct.length) {
    throw new Error(`${fn}: confidences and correct differ in length (${confidences.length} vs ${correct.length})`);
  }
  if (confidences.length === 0) throw new Error(`${fn}: empty input (no samples)`);
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`${fn}: bins must be a positive integer, got ${bins}`);
  for (let i = 0; i < confidences.length; i++) {
    const c = confidences[i]!;
    if (typeof c !== "number" || !Number.isFinite(c)) {
      throw new Error(`${fn}: confidence ${i} is not a finite number (${String(c)})`);
    }
    if (c < 0 || c > 1) throw new Error(`${fn}: confidence ${i} = ${c} is outside [0, 1]`);
    const k = correct[i];
    if (!(k === true || k === false || k === 0 || k === 1)) {
      throw new Error(`${fn}: correct[${i}] must be a boolean or 0/1, got ${String(k)}`);
    }
  }
}

/** Bin edges, shape [bins + 1]: float32-rounded k / bins (see the file comment for why). */
export function binEdges(bins: number): number[] {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`binEdges: bins must be a positive integer, got ${bins}`);
  return Array.from({ length: bins + 1 }, (_, k) => Math.fround(k / bins));
}

/**
 * Index of the bin with edges[b] < c <= edges[b + 1], or -1 for c = 0 (in no bin).
 * The floor gives a guess that can be off by one next to an edge; the comparisons settle it, so
 * the result is exactly the reference's `bin_lower < c <= bin_upper`.
 */
function binOf(c: number, edges: readonly number[]): number {
  const bins = edges.length - 1;
  if (!(c > 0)) return -1;
  let b = Math.min(bins - 1, Math.max(0, Math.floor(c * bins)));
  while (b > 0 && !(c > edges[b]!)) b--;
  while (b < bins - 1 && c > edges[b + 1]!) b++;
  return b;
}

/** Reliability bins (without re-validating: callers validate). */
function binsOf(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean> | Uint8Array,
  start: number,
  end: number,
  edges: readonly number[],
): ReliabilityBin[] {
  const n = edges.length - 1;
  const count = new Array<number>(n).fill(0);
  const confSum = new Array<number>(n).fill(0);
  const hitSum = new Array<number>(n).fill(0);
  for (let i = start; i < end; i++) {
    const b = binOf(confidences[i]!, edges);
    if (b < 0) continue;
    count[b]!++;
    confSum[b]! += confidences[i]!;
    if (correct[i]) hitSum[b]!++;
  }
  return count.map((cnt, b) => ({
    lower: edges[b]!,
    upper: edges[b + 1]!,
    count: cnt,
    meanConfidence: cnt > 0 ? confSum[b]! / cnt : 0,
    accuracy: cnt > 0 ? hitSum[b]! / cnt : 0,
  }));
}

/** sum over bins of (count / total) * |accuracy - meanConfidence|. */
function eceOfBins(bins: readonly ReliabilityBin[], total: number): number {
  let e = 0;
  for (const b of bins) if (b.count > 0) e += (b.count / total) * Math.abs(b.accuracy - b.meanConfidence);
  return e;
}

/**
 * Reliability diagram data: `bins` equal-width bins on [0, 1], confidence c in the bin with
 * lower < c <= upper (c = 0 in none). Shapes: confidences [N], correct [N] → [bins].
 */
export function reliabilityBins(
  confidences: Float32Array | readonly number[],
  correct: readonly boolean[] | Uint8Array,
  bins = 15,
): ReliabilityBin[] {
  checkInputs("reliabilityBins", confidences, correct, bins);
  return binsOf(confidences, correct, 0, confidences.length, binEdges(bins));
}

/**
 * Dataset-level expected calibration error (L1): sum over bins of (count / N) |acc - conf|, with N
 * the number of samples (including any with confidence 0, which fall in no bin).
 * Shapes: confidences [N], correct [N].
 */
export function ece(
  confidences: Float32Array | readonly number[],
  correct: readonly boolean[] | Uint8Array,
  bins = 15,
): number {
  checkInputs("ece", confidences, correct, bins);
  const edges = binEdges(bins);
  return eceOfBins(binsOf(confidences, correct, 0, confidences.length, edges), confidences.length);
}

/**
 * The reference's reported number: the unweighted mean of the ECEs of consecutive batches of
 * `batchSize` samples (the last batch may be smaller and still counts as one batch, as it does in
 * the reference's per-batch loop). Small batches inflate ECE (a batch of 1 has ECE = |correct - c|),
 * which is why the dataset-level {@link ece} is the honest number; report both.
 * Shapes: confidences [N], correct [N].
 */
export function perBatchMeanEce(
  confidences: Float32Array | readonly number[],
  correct: readonly boolean[] | Uint8Array,
  batchSize = 32,
  bins = 15,
): number {
  checkInputs("perBatchMeanEce", confidences, correct, bins);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`perBatchMeanEce: batchSize must be a positive integer, got ${batchSize}`);
  }
  const edges = binEdges(bins);
  const n = confidences.length;
  let sum = 0;
  let batches = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    sum += eceOfBins(binsOf(confidences, correct, start, end, edges), end - start);
    batches++;
  }
  return sum / batches;
}

/**
 * Row-wise softmax confidence (max probability) and prediction (argmax; the first index wins a tie,
 * like torch.argmax / numpy.argmax). Stable: with m = max of the row, the max probability is
 * exp(m - m) / sum_j exp(l_j - m) = 1 / sum_j exp(l_j - m), and every exponent is <= 0, so nothing
 * overflows. Shape: logits [rows, cols] row-major → confidence [rows], prediction [rows].
 */
export function softmaxConfidences(
  logits: Float32Array,
  rows: number,
  cols: number,
): { confidence: Float32Array; prediction: Int32Array } {
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`softmaxConfidences: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new Error(`softmaxConfidences: cols must be a positive integer, got ${cols}`);
  if (logits.length !== rows * cols) {
    throw new Error(`softmaxConfidences: logits has ${logits.length} values, expected rows * cols = ${rows * cols}`);
  }
  const confidence = new Float32Array(rows);
  const prediction = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let arg = 0;
    let m = -Infinity;
    for (let j = 0; j < cols; j++) {
      const v = logits[o + j]!;
      if (!Number.isFinite(v)) throw new Error(`softmaxConfidences: logit [${r}, ${j}] is not finite (${v})`);
      if (v > m) {
        m = v;
        arg = j;
      }
    }
    let z = 0;
    for (let j = 0; j < cols; j++) z += Math.exp(logits[o + j]! - m);
    confidence[r] = 1 / z;
    prediction[r] = arg;
  }
  return { confidence, prediction };
}
