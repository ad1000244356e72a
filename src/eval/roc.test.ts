import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auroc } from './novelty.js';
import { downsampleCurve, rocCurve } from './roc.js';

test('rocCurve: one point per distinct score, ties entered at once, from (0, 0) to (1, 1)', () => {
  // Sorted: 0.9 K | 0.8 K K N | 0.5 N | 0.3 K | 0.1 N  (P = 4 known, N = 3 novel)
  const known = [0.9, 0.8, 0.8, 0.3];
  const novel = [0.8, 0.5, 0.1];
  const { fpr, tpr } = rocCurve(known, novel);
  assert.deepEqual(fpr, [0, 0, 1 / 3, 2 / 3, 2 / 3, 1]);
  assert.deepEqual(tpr, [0, 1 / 4, 3 / 4, 3 / 4, 1, 1]);
  // The trapezoid area under these points is the AUROC (ties count 1/2): 9 of 12 pairs.
  let area = 0;
  for (let i = 1; i < fpr.length; i++) area += ((fpr[i]! - fpr[i - 1]!) * (tpr[i]! + tpr[i - 1]!)) / 2;
  assert.ok(Math.abs(area - 0.75) < 1e-12);
  assert.equal(auroc(known, novel), 0.75);
  assert.throws(() => rocCurve([], [1]), /rocCurve: no known \(positive\) scores/);
  assert.throws(() => rocCurve([1], []), /rocCurve: no novel \(negative\) scores/);
  assert.throws(() => rocCurve([NaN], [1]), /known score 0 is not finite/);
});

test('downsampleCurve keeps at most maxPoints points of the curve, both ends included', () => {
  const fpr = Array.from({ length: 1001 }, (_, i) => i / 1000);
  const tpr = fpr.map((x) => Math.sqrt(x));
  const d = downsampleCurve({ fpr, tpr }, 200);
  assert.equal(d.fpr.length, 200);
  assert.deepEqual([d.fpr[0], d.tpr[0], d.fpr.at(-1), d.tpr.at(-1)], [0, 0, 1, 1]);
  for (let i = 1; i < 200; i++) assert.ok(d.fpr[i]! > d.fpr[i - 1]!, 'strictly increasing indices');
  d.fpr.forEach((x, i) => assert.equal(d.tpr[i], Math.sqrt(x), 'points of the original curve'));
  assert.deepEqual(downsampleCurve({ fpr: [0, 1], tpr: [0, 1] }, 200), { fpr: [0, 1], tpr: [0, 1] });
  assert.throws(() => downsampleCurve({ fpr, tpr }, 1), /maxPoints must be an integer >= 2/);
});
