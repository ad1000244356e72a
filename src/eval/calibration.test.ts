import { test } from "node:test";
import assert from "node:assert/strict";
import { binEdges, ece, perBatchMeanEce, reliabilityBins, softmaxConfidences } from "./calibration.js";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

// Six samples, 15 bins of width 1/15 (edges 1/15 = 0.0667, 2/15 = 0.1333, 7/15 = 0.4667,
// 8/15 = 0.5333, 14/15 = 0.9333), bin b = (b/15, (b+1)/15]:
//   1.0  correct -> bin 14 (14/15 < 1 <= 1: 1.0 is in the last bin)
//   0.95 wrong   -> bin 14
//   2/15 correct -> bin 1  (exactly on the edge: lower < c <= upper puts it in the lower bin)
//   0.1  wrong   -> bin 1
//   0.5  correct -> bin 7
//   0    correct -> no bin (0 is not > 0), but counts in N = 6
// bin 14: count 2, conf (1 + 0.95)/2 = 39/40, acc 1/2 -> |1/2 - 39/40| = 19/40
// bin 1:  count 2, conf (2/15 + 1/10)/2 = 7/60, acc 1/2 -> |1/2 - 7/60| = 23/60
// bin 7:  count 1, conf 1/2, acc 1 -> 1/2
// ECE = (2 * 19/40 + 2 * 23/60 + 1/2) / 6 = (57/60 + 46/60 + 30/60) / 6 = 133/360
const conf = [1.0, 0.95, 2 / 15, 0.1, 0.5, 0];
const correct = [true, false, true, false, true, true];

test("reliability bins by hand", () => {
  const bins = reliabilityBins(conf, correct);
  assert.equal(bins.length, 15);
  assert.deepEqual(
    bins.map((b) => b.count),
    [0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2],
  );
  close(bins[14]!.meanConfidence, 39 / 40);
  close(bins[14]!.accuracy, 0.5);
  close(bins[1]!.meanConfidence, 7 / 60);
  close(bins[1]!.accuracy, 0.5);
  assert.equal(bins[7]!.accuracy, 1);
  // empty bins report zeros
  assert.equal(bins[0]!.meanConfidence, 0);
  assert.equal(bins[0]!.accuracy, 0);
  assert.equal(bins[0]!.lower, 0);
  assert.equal(bins[14]!.upper, 1);
});

test("ECE by hand, dataset level; Uint8Array and Float32Array inputs agree", () => {
  close(ece(conf, correct), 133 / 360);
  // float32 inputs: tolerance covers float32 rounding of 0.95, 2/15, 0.1
  close(ece(Float32Array.from(conf), Uint8Array.from([1, 0, 1, 0, 1, 1])), 133 / 360, 1e-7);
});

test("a confidence at an edge lands in the lower bin as double and as float32", () => {
  // Math.fround(2/15) = 0.13333334... is above the double 2/15; with float32 edges it still sits
  // exactly on the edge and goes to bin 1, as in the reference's float32 comparison.
  assert.ok(Math.fround(2 / 15) > 2 / 15);
  assert.equal(reliabilityBins([2 / 15], [true])[1]!.count, 1);
  assert.equal(reliabilityBins(Float32Array.from([2 / 15]), [true])[1]!.count, 1);
  // just above the float32 edge -> bin 2
  assert.equal(reliabilityBins([Math.fround(2 / 15) + 1e-9], [true])[2]!.count, 1);
  // 0.5 with 2 bins: edges [0, 0.5, 1]; 0.5 -> bin 0, 0.50001 -> bin 1
  assert.deepEqual(binEdges(2), [0, 0.5, 1]);
  assert.deepEqual(reliabilityBins([0.5, 0.50001], [true, true], 2).map((b) => b.count), [1, 1]);
});

test("ECE of perfectly calibrated and of all-zero confidences", () => {
  // conf 0.5 with half correct: one bin, |0.5 - 0.5| = 0
  assert.equal(ece([0.5, 0.5], [true, false]), 0);
  // confidence 0 falls in no bin: ECE = 0 even though the "prediction" is wrong
  assert.equal(ece([0], [false]), 0);
});

test("per-batch mean ECE differs from dataset-level ECE", () => {
  // Two samples at 0.9, one right, one wrong.
  // Dataset level: one bin, acc 1/2, conf 0.9 -> |0.5 - 0.9| = 0.4.
  // Batches of 1: |1 - 0.9| = 0.1 and |0 - 0.9| = 0.9 -> mean 0.5.
  close(ece([0.9, 0.9], [true, false]), 0.4);
  close(perBatchMeanEce([0.9, 0.9], [true, false], 1), 0.5);
  // batch of 2 = whole set
  close(perBatchMeanEce([0.9, 0.9], [true, false], 2), 0.4);
  // A partial last batch counts as one batch: batches [0.9 T, 0.9 F] -> 0.4 and [0.6 T] -> 0.4;
  // mean 0.4. Dataset: bin of 0.9 (2 samples, acc 1/2, 0.4 * 2/3) + bin of 0.6 (0.4 * 1/3) = 0.4.
  close(perBatchMeanEce([0.9, 0.9, 0.6], [true, false, true], 2), 0.4);
  // Batches [0.9 T, 0.9 T] -> 0.1, [0.9 F] -> 0.9: mean 0.5. Dataset: acc 2/3, |2/3 - 0.9| = 7/30.
  close(perBatchMeanEce([0.9, 0.9, 0.9], [true, true, false], 2), 0.5);
  close(ece([0.9, 0.9, 0.9], [true, true, false]), 7 / 30);
});

test("bad input throws", () => {
  assert.throws(() => ece([0.5], [true, false]), /differ in length \(1 vs 2\)/);
  assert.throws(() => ece([], []), /empty/);
  assert.throws(() => ece([NaN], [true]), /confidence 0 is not a finite number/);
  assert.throws(() => ece([1.5], [true]), /outside \[0, 1\]/);
  assert.throws(() => ece([0.5], [true], 0), /bins must be a positive integer/);
  assert.throws(() => ece([0.5], Uint8Array.from([2])), /correct\[0\] must be a boolean or 0\/1/);
  assert.throws(() => perBatchMeanEce([0.5], [true], 0), /batchSize/);
});

test("softmax confidences: values, ties, stability", () => {
  // [3, 3] row-major:
  // row 0: [0, ln 3, 0]       -> p = [1/5, 3/5, 1/5], p_max = 3/5, argmax 1
  // row 1: [1, 1, 0]          -> p_max = e / (2e + 1), tie -> first index 0
  // row 2: [1000, 0, -1000]   -> naive exp overflows; p_max = 1 (to e^-1000)
  const logits = Float32Array.from([0, Math.log(3), 0, 1, 1, 0, 1000, 0, -1000]);
  const { confidence, prediction } = softmaxConfidences(logits, 3, 3);
  close(confidence[0]!, 3 / 5, 1e-7);
  assert.equal(prediction[0], 1);
  close(confidence[1]!, Math.E / (2 * Math.E + 1), 1e-7);
  assert.equal(prediction[1], 0);
  assert.equal(confidence[2], 1);
  assert.equal(prediction[2], 0);
  assert.throws(() => softmaxConfidences(new Float32Array(5), 2, 3), /5 values, expected rows \* cols = 6/);
  assert.throws(() => softmaxConfidences(Float32Array.from([NaN]), 1, 1), /not finite/);
  assert.throws(() => softmaxConfidences(new Float32Array(0), 0, 3), /rows must be a positive integer/);
});
