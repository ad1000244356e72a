/**
 * Continual-learning accuracy metrics over the task accuracy matrix (spec section 7).
 *
 * `A` is a lower-triangular *ragged* matrix: `A[t]` has exactly `t + 1` entries and `A[t][k]`
 * (k <= t) is the top-1 accuracy, as a fraction in [0, 1], of the model after task t on the test
 * samples of task k (prediction over all classes seen after task t).
 *
 * All functions are pure functions of plain arrays and validate their input: a matrix that is empty,
 * not lower-triangular ragged, or holds a value that is not a finite number in [0, 1] throws.
 */

/** Lower-triangular ragged accuracy matrix, `A[t].length === t + 1`. */
export type AccuracyMatrix = readonly (readonly number[])[];

/**
 * Throws a clear Error unless `A` is a non-empty lower-triangular ragged matrix of fractions.
 * Fractions (not percents) are required so that a matrix in percent is caught rather than
 * silently producing numbers 100 times too large.
 */
export function validateAccuracyMatrix(A: AccuracyMatrix, fn = "accuracyMatrix"): void {
  if (!Array.isArray(A)) throw new Error(`${fn}: the accuracy matrix must be an array of rows`);
  if (A.length === 0) throw new Error(`${fn}: the accuracy matrix is empty (no task evaluated)`);
  for (let t = 0; t < A.length; t++) {
    const row = A[t];
    if (!Array.isArray(row)) throw new Error(`${fn}: row ${t} of the accuracy matrix is not an array`);
    if (row.length !== t + 1) {
      throw new Error(
        `${fn}: the accuracy matrix must be lower-triangular ragged (row t has t + 1 entries), ` +
          `but row ${t} has ${row.length} entries`,
      );
    }
    for (let k = 0; k <= t; k++) {
      const v = row[k];
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new Error(`${fn}: A[${t}][${k}] is not a finite number (${String(v)})`);
      }
      if (v < 0 || v > 1) {
        throw new Error(`${fn}: A[${t}][${k}] = ${v} is outside [0, 1] (accuracies are fractions, not percents)`);
      }
    }
  }
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/**
 * acc_t = unweighted mean over k <= t of A[t][k] (every task counts equally, whatever its test
 * size, as in the reference). Shape: [tasks].
 */
export function stepAccuracies(A: AccuracyMatrix): number[] {
  validateAccuracyMatrix(A, "stepAccuracies");
  return A.map((row) => mean(row));
}

/** Average accuracy = mean over t of acc_t, including t = 0. */
export function averageAccuracy(A: AccuracyMatrix): number {
  validateAccuracyMatrix(A, "averageAccuracy");
  return mean(A.map((row) => mean(row)));
}

/** Last accuracy = acc of the final step. */
export function lastAccuracy(A: AccuracyMatrix): number {
  validateAccuracyMatrix(A, "lastAccuracy");
  return mean(A[A.length - 1]!);
}

/** BWT_t = mean over k < t of (A[t][k] - A[k][k]); null when t = 0 (no earlier task). */
function bwtAt(A: AccuracyMatrix, t: number): number | null {
  if (t === 0) return null;
  let s = 0;
  for (let k = 0; k < t; k++) s += A[t]![k]! - A[k]![k]!;
  return s / t;
}

/** Forgetting_t = mean over k < t of (max over t' < t of A[t'][k]) - A[t][k]; null when t = 0. */
function forgettingAt(A: AccuracyMatrix, t: number): number | null {
  if (t === 0) return null;
  let s = 0;
  for (let k = 0; k < t; k++) {
    // t' ranges over k..t-1: A[t'][k] only exists once task k has been seen.
    let best = -Infinity;
    for (let tp = k; tp < t; tp++) best = Math.max(best, A[tp]![k]!);
    s += best - A[t]![k]!;
  }
  return s / t;
}

/**
 * Backward transfer of the final step: mean over k < last of A[last][k] - A[k][k].
 * Negative = the model lost accuracy on old tasks. Returns null for a single-task matrix, because
 * the mean over an empty set of old tasks is undefined (null rather than NaN so that it survives
 * JSON and cannot be averaged by accident).
 */
export function backwardTransfer(A: AccuracyMatrix): number | null {
  validateAccuracyMatrix(A, "backwardTransfer");
  return bwtAt(A, A.length - 1);
}

/**
 * BWT_t for every step t (shape [tasks]); entry 0 is null (no earlier task to transfer to, see
 * {@link backwardTransfer}).
 */
export function backwardTransferPerStep(A: AccuracyMatrix): (number | null)[] {
  validateAccuracyMatrix(A, "backwardTransferPerStep");
  return A.map((_, t) => bwtAt(A, t));
}

/**
 * Forgetting of the final step: mean over k < last of (max over t' < last of A[t'][k]) - A[last][k].
 * Positive = accuracy dropped from its best earlier value. It can be negative when every old task
 * improved. Returns null for a single-task matrix (see {@link backwardTransfer}).
 */
export function forgetting(A: AccuracyMatrix): number | null {
  validateAccuracyMatrix(A, "forgetting");
  return forgettingAt(A, A.length - 1);
}

/** Forgetting_t for every step t (shape [tasks]); entry 0 is null. */
export function forgettingPerStep(A: AccuracyMatrix): (number | null)[] {
  validateAccuracyMatrix(A, "forgettingPerStep");
  return A.map((_, t) => forgettingAt(A, t));
}

/** RFC 4180 quoting: only fields containing a comma, a quote or a line break are quoted. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The accuracy matrix as CSV text: header `step,task_0,task_1,...` (or `step,<taskNames...>`), then
 * one line per step `t,A[t][0],...,A[t][t]` followed by empty cells above the diagonal, so that every
 * line has the same number of fields. Numbers are written with full precision (`String(x)`), lines
 * end with "\n".
 */
export function accuracyMatrixCsv(A: AccuracyMatrix, taskNames?: readonly string[]): string {
  validateAccuracyMatrix(A, "accuracyMatrixCsv");
  const n = A.length;
  let names: readonly string[];
  if (taskNames === undefined) {
    names = Array.from({ length: n }, (_, k) => `task_${k}`);
  } else {
    if (taskNames.length !== n) {
      throw new Error(`accuracyMatrixCsv: ${taskNames.length} task names given for ${n} tasks`);
    }
    names = taskNames;
  }
  const lines = [["step", ...names].map(csvField).join(",")];
  for (let t = 0; t < n; t++) {
    const cells = [String(t)];
    for (let k = 0; k < n; k++) cells.push(k <= t ? String(A[t]![k]) : "");
    lines.push(cells.join(","));
  }
  return lines.join("\n") + "\n";
}

/**
 * Top-1 accuracy = fraction of positions where predictions[i] === labels[i].
 * Shapes: predictions [N], labels [N]; N must be > 0 (the accuracy of nothing is undefined).
 */
export function topOneAccuracy(predictions: Int32Array, labels: Int32Array): number {
  if (predictions.length !== labels.length) {
    throw new Error(
      `topOneAccuracy: predictions and labels differ in length (${predictions.length} vs ${labels.length})`,
    );
  }
  if (predictions.length === 0) throw new Error("topOneAccuracy: empty predictions (no test samples)");
  let hits = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / predictions.length;
}
