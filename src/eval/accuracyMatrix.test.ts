import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accuracyMatrixCsv,
  averageAccuracy,
  backwardTransfer,
  backwardTransferPerStep,
  forgetting,
  forgettingPerStep,
  lastAccuracy,
  stepAccuracies,
  topOneAccuracy,
  validateAccuracyMatrix,
} from "./accuracyMatrix.js";

const close = (a: number | null, b: number, msg?: string) => {
  assert.ok(a !== null, msg ?? "expected a number, got null");
  assert.ok(Math.abs(a - b) < 1e-12, `${msg ?? ""} ${a} != ${b}`);
};

// Three tasks. Task 0 improves after task 1 (0.8 -> 0.9), so forgetting (measured from the best
// earlier value) and -BWT (measured from the diagonal) differ.
//   t=0: [0.8]
//   t=1: [0.9, 0.6]
//   t=2: [0.7, 0.5, 0.9]
const A = [[0.8], [0.9, 0.6], [0.7, 0.5, 0.9]];

test("step, average and last accuracy", () => {
  // acc_0 = 0.8; acc_1 = (0.9 + 0.6) / 2 = 0.75; acc_2 = (0.7 + 0.5 + 0.9) / 3 = 0.7
  const s = stepAccuracies(A);
  close(s[0]!, 0.8);
  close(s[1]!, 0.75);
  close(s[2]!, 0.7);
  // average = (0.8 + 0.75 + 0.7) / 3 = 0.75 (includes t = 0)
  close(averageAccuracy(A), 0.75);
  close(lastAccuracy(A), 0.7);
});

test("backward transfer, final and per step", () => {
  // BWT_1 = A[1][0] - A[0][0] = 0.9 - 0.8 = 0.1
  // BWT_2 = ((0.7 - 0.8) + (0.5 - 0.6)) / 2 = -0.1
  const per = backwardTransferPerStep(A);
  assert.equal(per[0], null);
  close(per[1]!, 0.1);
  close(per[2]!, -0.1);
  close(backwardTransfer(A), -0.1);
});

test("forgetting, final and per step", () => {
  // F_1 = max(A[0][0]) - A[1][0] = 0.8 - 0.9 = -0.1 (task 0 improved: negative forgetting)
  // F_2: k=0: max(0.8, 0.9) - 0.7 = 0.2; k=1: max(0.6) - 0.5 = 0.1; mean = 0.15
  const per = forgettingPerStep(A);
  assert.equal(per[0], null);
  close(per[1]!, -0.1);
  close(per[2]!, 0.15);
  close(forgetting(A), 0.15);
});

test("a single task: BWT and forgetting are null, accuracies defined", () => {
  const one = [[0.5]];
  assert.equal(backwardTransfer(one), null);
  assert.equal(forgetting(one), null);
  assert.deepEqual(backwardTransferPerStep(one), [null]);
  assert.deepEqual(forgettingPerStep(one), [null]);
  assert.equal(averageAccuracy(one), 0.5);
  assert.equal(lastAccuracy(one), 0.5);
});

test("no forgetting when nothing changes", () => {
  const flat = [[1], [1, 1], [1, 1, 1]];
  assert.equal(backwardTransfer(flat), 0);
  assert.equal(forgetting(flat), 0);
});

test("bad matrices throw, naming the problem", () => {
  assert.throws(() => stepAccuracies([]), /empty/);
  assert.throws(() => stepAccuracies([[0.5, 0.5]]), /row 0 has 2 entries/);
  // square matrix (not ragged)
  assert.throws(() => averageAccuracy([[0.5, 0], [0.5, 0.5]]), /lower-triangular/);
  assert.throws(() => lastAccuracy([[0.5], [0.5]]), /row 1 has 1 entries/);
  assert.throws(() => backwardTransfer([[0.5], [NaN, 0.5]]), /A\[1\]\[0\] is not a finite number/);
  assert.throws(() => forgetting([[80], [70, 90]]), /outside \[0, 1\].*percents/);
  assert.throws(() => validateAccuracyMatrix([[-0.1]]), /outside/);
});

test("CSV: header, empty cells above the diagonal, quoted names", () => {
  assert.equal(
    accuracyMatrixCsv(A),
    "step,task_0,task_1,task_2\n" + "0,0.8,,\n" + "1,0.9,0.6,\n" + "2,0.7,0.5,0.9\n",
  );
  assert.equal(accuracyMatrixCsv([[1], [0.25, 0.5]], ["cifar", 'a,"b"']), 'step,cifar,"a,""b"""\n0,1,\n1,0.25,0.5\n');
  assert.throws(() => accuracyMatrixCsv(A, ["x"]), /1 task names given for 3 tasks/);
});

test("top-1 accuracy", () => {
  // matches at positions 0, 1, 3 -> 3/4
  assert.equal(topOneAccuracy(Int32Array.from([1, 2, 3, 0]), Int32Array.from([1, 2, 0, 0])), 0.75);
  assert.equal(topOneAccuracy(Int32Array.from([4]), Int32Array.from([5])), 0);
  assert.throws(() => topOneAccuracy(new Int32Array(2), new Int32Array(3)), /differ in length \(2 vs 3\)/);
  assert.throws(() => topOneAccuracy(new Int32Array(0), new Int32Array(0)), /empty/);
});
