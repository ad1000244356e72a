import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { brierScore, fitTemperature, negativeLogLikelihood, scaledConfidences } from './temperature.js';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('NLL and Brier score by hand: two classes, p = 0.75 for the true class', () => {
  const logits = Float32Array.from([0, Math.log(3)]); // softmax = [0.25, 0.75]
  close(negativeLogLikelihood(logits, 1, 2, [1]), -Math.log(0.75), 1e-7, 'NLL');
  close(brierScore(logits, 1, 2, [1]), 0.25 ** 2 * 2, 1e-7, 'Brier');
  close(brierScore(logits, 1, 2, [0]), 0.75 ** 2 * 2, 1e-7, 'Brier, wrong label');
  // At T = 2: softmax([0, ln 3 / 2]) = [1 / (1 + √3), √3 / (1 + √3)].
  close(negativeLogLikelihood(logits, 1, 2, [1], 2), -Math.log(Math.sqrt(3) / (1 + Math.sqrt(3))), 1e-7, 'NLL at T = 2');
  close(scaledConfidences(logits, 1, 2, 2)[0]!, Math.sqrt(3) / (1 + Math.sqrt(3)), 1e-7, 'confidence at T = 2');
  // Huge logits stay finite (the true class's probability underflows, its log does not).
  close(negativeLogLikelihood(Float32Array.from([1000, 0]), 1, 2, [1]), 1000, 1e-9, 'stable NLL');
});

test('fitTemperature: closed form with two classes, logit gap s and a share q of correct labels: T = s / ln(q / (1 - q))', () => {
  for (const [s, correct, total] of [[10, 3, 4], [40, 9, 10], [2, 7, 8], [0.5, 2, 3]] as const) {
    const logits = new Float32Array(total * 2);
    const labels: number[] = [];
    for (let i = 0; i < total; i++) {
      logits[2 * i] = s; // class 0 always wins by s
      labels.push(i < correct ? 0 : 1);
    }
    const q = correct / total;
    const expected = s / Math.log(q / (1 - q));
    const fit = fitTemperature(logits, total, 2, labels);
    close(fit.temperature, expected, 1e-4 * expected, `s = ${s}, q = ${q}`);
    close(fit.nllAfter, -(q * Math.log(q) + (1 - q) * Math.log(1 - q)), 1e-9, 'NLL at the optimum = binary entropy of q');
    assert.ok(fit.nllAfter <= fit.nllBefore);
    assert.equal(fit.samples, total);
  }
});

test('fitTemperature: over-confident logits get T > 1, under-confident ones T < 1; NLL after <= before; argmax never changes', () => {
  const rng = new Rng(7);
  const rows = 300;
  const cols = 6;
  for (const scale of [50, 0.3]) {
    const logits = new Float32Array(rows * cols);
    const labels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const y = Math.floor(rng.uniform() * cols);
      labels[r] = y;
      // The true class leads with 70 % probability; logits are scaled by `scale`.
      const lead = rng.uniform() < 0.7 ? y : (y + 1) % cols;
      for (let j = 0; j < cols; j++) logits[r * cols + j] = scale * ((j === lead ? 1 : 0) + 0.3 * rng.normal());
    }
    const fit = fitTemperature(logits, rows, cols, labels);
    assert.ok(fit.nllAfter <= fit.nllBefore, `scale ${scale}: ${fit.nllAfter} > ${fit.nllBefore}`);
    assert.ok(scale > 1 ? fit.temperature > 1 : fit.temperature < 1, `scale ${scale}: T = ${fit.temperature}`);
    close(negativeLogLikelihood(logits, rows, cols, labels, fit.temperature), fit.nllAfter, 1e-12, 'reported NLL');
    // A local minimum: nudging T either way does not lower the NLL.
    for (const k of [0.99, 1.01]) assert.ok(negativeLogLikelihood(logits, rows, cols, labels, fit.temperature * k) >= fit.nllAfter - 1e-12);
    // Monotonicity: the argmax of softmax(z / T) is the argmax of z for every row.
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * cols, (r + 1) * cols);
      const arg = row.indexOf(Math.max(...row));
      const p = Array.from(row, (v) => Math.exp((v - row[arg]!) / fit.temperature));
      assert.equal(p.indexOf(Math.max(...p)), arg);
    }
  }
});

test('fitTemperature: all samples right with certainty drives T to the range end, NLL still falls', () => {
  const logits = Float32Array.from([5, 0, 6, 1]);
  const fit = fitTemperature(logits, 2, 2, [0, 0]);
  assert.ok(fit.temperature < 0.01, `T = ${fit.temperature}`);
  assert.ok(fit.nllAfter < fit.nllBefore);
});

test('bad input: lengths, labels, non-finite logits and temperatures are errors', () => {
  assert.throws(() => fitTemperature(Float32Array.from([1, 2, 3]), 2, 2, [0, 1]), /logits has 3 values, expected rows \* cols = 4/);
  assert.throws(() => fitTemperature(Float32Array.from([1, 2]), 1, 2, [2]), /label 0 = 2 is not a class index/);
  assert.throws(() => negativeLogLikelihood(Float32Array.from([1, NaN]), 1, 2, [0]), /logit \[0, 1\] is not finite/);
  assert.throws(() => brierScore(Float32Array.from([1, 2]), 1, 2, [0], 0), /temperature must be a finite number > 0/);
  assert.throws(() => scaledConfidences(Float32Array.from([1, 2]), 1, 2, -1), /temperature/);
  assert.throws(() => fitTemperature(Float32Array.from([1, 2]), 1, 2, [0, 1]), /2 labels for 1 rows/);
});
