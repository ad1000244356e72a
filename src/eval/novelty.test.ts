import { test } from "node:test";
import assert from "node:assert/strict";
import {
  aupr,
  auroc,
  energyScore,
  fpr95,
  mcVariance,
  mspScore,
  negEntropyScore,
  negMcVarianceScore,
  predictiveEntropy,
} from "./novelty.js";

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

test("scores from mean logits", () => {
  // row 0: [0, 0]      -> lse = ln 2, msp = 1/2, H = ln 2
  // row 1: [ln 3, 0]   -> p = [3/4, 1/4], lse = ln 4, msp = 3/4,
  //                       H = -(3/4 ln 3/4 + 1/4 ln 1/4)
  // row 2: [1000, 0]   -> naive exp overflows; lse = 1000, msp = 1, H = 0 (to e^-1000)
  const m = Float32Array.from([0, 0, Math.log(3), 0, 1000, 0]);
  const e = energyScore(m, 3, 2);
  close(e[0]!, Math.log(2));
  close(e[1]!, Math.log(4), 1e-6); // ln 3 stored as float32
  assert.equal(e[2], 1000);
  const p = mspScore(m, 3, 2);
  close(p[0]!, 0.5);
  close(p[1]!, 0.75, 1e-7);
  assert.equal(p[2], 1);
  const h = predictiveEntropy(m, 3, 2);
  close(h[0]!, Math.log(2));
  close(h[1]!, -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 1e-7);
  assert.equal(h[2], 0);
  const ne = negEntropyScore(m, 3, 2);
  close(ne[0]!, -Math.log(2));
  assert.ok(ne[2]! > ne[1]! && ne[1]! > ne[0]!, "confident rows score higher");
});

test("MC variance uses the population variance over T", () => {
  // T = 2, B = 2, C = 2, layout [T, B, C]:
  //   r=0: b0 [0, 2], b1 [5, 5]
  //   r=1: b0 [2, 2], b1 [5, 5]
  // b0: class 0 draws {0, 2}, mean 1, var ((-1)^2 + 1^2)/2 = 1; class 1 draws {2, 2}, var 0
  //     -> mean over classes 0.5. b1: constant -> 0.
  const x = Float32Array.from([0, 2, 5, 5, 2, 2, 5, 5]);
  const v = mcVariance(x, 2, 2, 2);
  assert.deepEqual(Array.from(v), [0.5, 0]);
  assert.deepEqual(Array.from(negMcVarianceScore(x, 2, 2, 2)), [-0.5, -0]);
  // T = 1: population variance is 0 (the unbiased one would be 0/0)
  assert.deepEqual(Array.from(mcVariance(Float32Array.from([3, 4]), 1, 1, 2)), [0]);
});

test("score functions reject bad shapes and values", () => {
  assert.throws(() => energyScore(new Float32Array(5), 2, 3), /5 values, expected rows \* C = 6/);
  assert.throws(() => mspScore(Float32Array.from([NaN, 0]), 1, 2), /not finite/);
  assert.throws(() => mcVariance(new Float32Array(8), 2, 2, 3), /expected T \* B \* C = 12/);
  assert.throws(() => predictiveEntropy(new Float32Array(0), 0, 2), /rows must be a positive integer/);
});

// Worked example (known = positive):
//   known [0.9, 0.8, 0.4], novel [0.7, 0.4, 0.1]
// AUROC by pairs (9 pairs): 0.9 beats all 3 -> 3; 0.8 beats all 3 -> 3;
//   0.4 vs 0.7 loses (0), vs 0.4 ties (1/2), vs 0.1 wins (1) -> 1.5. AUROC = 7.5 / 9 = 5/6.
// sklearn average_precision_score, step by step. _binary_clf_curve sorts scores descending and keeps
// one point per distinct score (the tie at 0.4 is one point):
//   threshold 0.9: tp=1 fp=0  P=1    R=1/3
//   threshold 0.8: tp=2 fp=0  P=1    R=2/3
//   threshold 0.7: tp=2 fp=1  P=2/3  R=2/3   (recall unchanged: contributes 0)
//   threshold 0.4: tp=3 fp=2  P=3/5  R=1
//   threshold 0.1: tp=3 fp=3  P=1/2  R=1     (contributes 0)
//   AP = -sum(diff(recall) * precision[:-1]) = 1/3*1 + 1/3*1 + 0 + 1/3*3/5 + 0 = 13/15.
// FPR95: TPR >= 0.95 needs tp = 3, first reached at threshold 0.4 where fp = 2 -> FPR = 2/3.
const known = [0.9, 0.8, 0.4];
const novel = [0.7, 0.4, 0.1];

test("worked example: AUROC 5/6, AUPR 13/15, FPR95 2/3", () => {
  close(auroc(known, novel), 5 / 6);
  close(aupr(known, novel), 13 / 15);
  close(fpr95(known, novel), 2 / 3);
  // the metrics accept typed arrays and do not depend on input order
  close(auroc(Float64Array.from([0.4, 0.9, 0.8]), [0.1, 0.4, 0.7]), 5 / 6);
  close(aupr([0.4, 0.9, 0.8], [0.1, 0.7, 0.4]), 13 / 15);
});

test("ties between known and novel", () => {
  // known [0.5, 0.5], novel [0.5, 0.2]
  // AUROC: each known ties 0.5 (1/2) and beats 0.2 (1) -> (1.5 + 1.5) / 4 = 3/4
  // AP: threshold 0.5 holds both known and one novel: tp=2 fp=1, P=2/3, R=1 -> AP = 2/3
  //     (the tie group is not split, so no "optimistic" ordering inside it)
  // FPR95: TPR = 1 at threshold 0.5 with fp = 1 of 2 -> 1/2
  close(auroc([0.5, 0.5], [0.5, 0.2]), 0.75);
  close(aupr([0.5, 0.5], [0.5, 0.2]), 2 / 3);
  close(fpr95([0.5, 0.5], [0.5, 0.2]), 0.5);
});

test("perfect separation", () => {
  assert.equal(auroc([3, 2], [1, 0]), 1);
  assert.equal(aupr([3, 2], [1, 0]), 1);
  assert.equal(fpr95([3, 2], [1, 0]), 0);
});

test("reversed ranking", () => {
  // known [0, 1], novel [2, 3]: every pair lost -> AUROC 0
  // AP: thresholds 3 (tp0 fp1), 2 (tp0 fp2), 1 (tp1 fp2: P=1/3, R=1/2), 0 (tp2 fp2: P=1/2, R=1)
  //     AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12
  // FPR95: TPR reaches 1 only at threshold 0 where every novel is above -> 1
  assert.equal(auroc([0, 1], [2, 3]), 0);
  close(aupr([0, 1], [2, 3]), 5 / 12);
  assert.equal(fpr95([0, 1], [2, 3]), 1);
});

test("all scores tied", () => {
  // one threshold holding everything: AUROC 1/2, AP = precision = 2/5 (fraction of positives),
  // FPR95 = 1
  assert.equal(auroc([0.3, 0.3], [0.3, 0.3, 0.3]), 0.5);
  close(aupr([0.3, 0.3], [0.3, 0.3, 0.3]), 0.4);
  assert.equal(fpr95([0.3, 0.3], [0.3, 0.3, 0.3]), 1);
});

test("FPR95: TPR exactly 0.95 qualifies", () => {
  // known 1..20, novel [2.5, 1.5, 0.5]. At threshold 2: tp = 19 (scores 2..20), TPR = 19/20 = 0.95
  // exactly, fp = 1 (only 2.5 >= 2) -> FPR = 1/3. A strict ">" would go on to threshold 1
  // (fp = 2) and report 2/3.
  const k = Array.from({ length: 20 }, (_, i) => i + 1);
  close(fpr95(k, [2.5, 1.5, 0.5]), 1 / 3);
  // AUROC: 2.5 is above 2 known (1, 2), 1.5 above 1, 0.5 above 0: lost pairs = 3 of 60 -> 57/60
  close(auroc(k, [2.5, 1.5, 0.5]), 57 / 60);
});

test("metrics throw on empty or non-finite input", () => {
  assert.throws(() => auroc([], [1]), /no known/);
  assert.throws(() => aupr([1], []), /no novel/);
  assert.throws(() => fpr95([NaN], [1]), /known score 0 is not finite/);
  assert.throws(() => auroc([1], [Infinity]), /novel score 0 is not finite/);
});

test("AUROC equals brute-force pair counting on random tied data", () => {
  // Deterministic LCG; scores on a coarse grid so that ties are frequent.
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let trial = 0; trial < 50; trial++) {
    const k = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => Math.floor(rnd() * 5));
    const n = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => Math.floor(rnd() * 5));
    let wins = 0;
    for (const a of k) for (const b of n) wins += a > b ? 1 : a === b ? 0.5 : 0;
    close(auroc(k, n), wins / (k.length * n.length));
    const ap = aupr(k, n);
    assert.ok(ap > 0 && ap <= 1);
    const f = fpr95(k, n);
    assert.ok(f >= 0 && f <= 1);
  }
});
