import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../engine/random.js';
import { solveSpd } from '../../linalg/cholesky.js';
import type { TaskData } from '../method.js';
import { tensorSource } from '../state.js';
import { createRanPac, RanPac } from './ranpac.js';
import { accumulateClassSums, accumulateGram, packedOffset, packedSize, randomFeatures, randomFeaturesT, ridgeCandidates, ridgeReadout, searchRidge } from './ridge.js';

const near = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol;
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
}
/** The packed upper triangle of a dense symmetric [M, M]. */
function pack(a: ArrayLike<number>, M: number): Float32Array {
  const p = new Float32Array(packedSize(M));
  for (let i = 0; i < M; i++) for (let j = i; j < M; j++) p[packedOffset(i, M) + j - i] = a[i * M + j]!;
  return p;
}

test('ranpac hand case: h = ReLU(f W); G = Q = I and lambda = 1 give Wo = I / 2', () => {
  // D = 1, M = 2, W = [[1, -1]], f = 0.5: h = (0.5, 0).
  const W = Float32Array.of(1, -1);
  assert.deepEqual([...randomFeatures(Float32Array.of(0.5), 1, 1, W, 2)], [0.5, 0]);
  assert.deepEqual([...randomFeaturesT(Float32Array.of(0.5, -2), 2, 1, W, 2)], [0.5, 0, 0, 2], 'H^T [M, n]');
  const wo = ridgeReadout(pack([1, 0, 0, 1], 2), Float32Array.of(1, 0, 0, 1), 2, 2, 1);
  assert.deepEqual([...wo], [0.5, 0, 0, 0.5]);
  // logits of h = (1, 0): h Wo^T = (0.5, 0).
  const h = [1, 0];
  assert.deepEqual([0, 1].map((c) => h[0]! * wo[c * 2]! + h[1]! * wo[c * 2 + 1]!), [0.5, 0]);
});

test('ranpac hand case: the lambda search scores 1 -> 0.09, 10 -> 0.04592 and picks 10; with y5 = 0 it picks 1e8', () => {
  // D = K = 1, five rows with h = 1; n_v = floor(0.8 * 5) = 4 rows fit, row 5 scores.
  const h = Float32Array.of(1, 1, 1, 1);
  const candidates = ridgeCandidates(-8, 8);
  assert.equal(candidates.length, 17);
  const s = searchRidge(h, Float64Array.of(1, 1, 1, 1), 4, Float32Array.of(1), Float64Array.of(0.5), 1, 1, 1, candidates);
  assert.equal(s.form, 'primal', 'n_v = 4 >= M = 1');
  assert.ok(near(s.losses[8]!, 0.09) && near(s.losses[9]!, 0.04592), `losses ${s.losses}`);
  assert.equal(s.lambda, 10);
  assert.equal(searchRidge(h, Float64Array.of(1, 1, 1, 1), 4, Float32Array.of(1), Float64Array.of(0), 1, 1, 1, candidates).lambda, 1e8);
  assert.throws(() => searchRidge(h, Float64Array.of(1), 1, h, Float64Array.of(1), 0, 1, 1, candidates), /at least one fitting and one held-out row/);
});

test('ranpac: the dual search equals the primal ridge regression computed directly; a singular candidate scores Infinity', () => {
  const rng = new Rng(3);
  const nv = 6, nr = 4, M = 10, k = 3;
  const hv = Float32Array.from({ length: nv * M }, () => Math.max(0, rng.normal()));
  const hr = Float32Array.from({ length: nr * M }, () => Math.max(0, rng.normal()));
  const yv = Float64Array.from({ length: nv * k }, (_, i) => (i % k === i % 2 ? 1 : 0));
  const yr = Float64Array.from({ length: nr * k }, (_, i) => (i % k === 0 ? 1 : 0));
  const candidates = [0.01, 1, 100];
  const s = searchRidge(hv, yv, nv, hr, yr, nr, M, k, candidates);
  assert.equal(s.form, 'dual');
  candidates.forEach((l, t) => {
    // Primal: W = (Hv^T Hv + l I)^-1 Hv^T Yv, [M, k]; loss = mean (Hr W - Yr)^2.
    const g = new Float64Array(M * M), q = new Float64Array(M * k);
    for (let i = 0; i < nv; i++) for (let a = 0; a < M; a++) {
      for (let b = 0; b < M; b++) g[a * M + b]! += hv[i * M + a]! * hv[i * M + b]!;
      for (let c = 0; c < k; c++) q[a * k + c]! += hv[i * M + a]! * yv[i * k + c]!;
    }
    for (let a = 0; a < M; a++) g[a * M + a]! += l;
    const w = solveSpd(g, q, M, k);
    let sse = 0;
    for (let i = 0; i < nr; i++) for (let c = 0; c < k; c++) {
      let p = 0;
      for (let a = 0; a < M; a++) p += hr[i * M + a]! * w[a * k + c]!;
      sse += (p - yr[i * k + c]!) ** 2;
    }
    assert.ok(near(s.losses[t]!, sse / (nr * k), 1e-6), `lambda ${l}: dual ${s.losses[t]} vs primal ${sse / (nr * k)}`);
  });
  // Identical rows: H_v H_v^T has rank 1, so at lambda = 1e-30 it is singular in float64.
  const same = Float32Array.from({ length: 3 * 5 }, () => 1);
  const singular = searchRidge(same, Float64Array.of(1, 0, 1), 3, Float32Array.of(1, 1, 1, 1, 1), Float64Array.of(1), 1, 5, 1, [1e-30, 1]);
  assert.deepEqual([singular.losses[0], singular.lambda], [Infinity, 1]);
});

test('ranpac statistics: the packed Gram matrix and the class sums equal H^T H and Y^T H (across row blocks)', () => {
  const rng = new Rng(4);
  const M = 600, n = 3; // 600 > one block of 512 rows
  const ht = Float32Array.from({ length: M * n }, () => rng.normal());
  const g = new Float32Array(packedSize(M)).fill(1); // accumulates onto what is there
  accumulateGram(g, ht, M, n);
  for (const [i, j] of [[0, 0], [0, 599], [511, 512], [512, 512], [300, 550], [599, 599]] as const) {
    let want = 1;
    for (let r = 0; r < n; r++) want += ht[i * n + r]! * ht[j * n + r]!;
    assert.ok(near(g[packedOffset(i, M) + j - i]!, want, 1e-4), `G[${i}, ${j}]`);
  }
  const q = new Float32Array(2 * M);
  accumulateClassSums(q, ht, Int32Array.of(1, 0, 1), M, 2);
  assert.ok(near(q[5]!, ht[5 * n + 1]!) && near(q[M + 5]!, ht[5 * n]! + ht[5 * n + 2]!));
  assert.throws(() => accumulateClassSums(q, ht, Int32Array.of(0, 2, 1), M, 2), /label 2 of row 1 is outside the 2 classes/);
});

/** Rows [n, 1 view, D] of `classes` Gaussian blobs around distinct directions, labels from `start`. */
function blobs(rng: Rng, D: number, perClass: number, start: number, classes: number): TaskData {
  const n = perClass * classes;
  const features = new Float32Array(n * D);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(i / perClass);
    labels[i] = start + c;
    for (let j = 0; j < D; j++) features[i * D + j] = (j === (start + c) % D ? 2 : 0) + 0.3 * rng.normal();
  }
  return { split: { features, labels, n, views: 1, dim: D }, indices: Int32Array.from({ length: n }, (_, i) => i), labels };
}

test('ranpac over two tasks: the readout is the ridge solution of every task\'s statistics; the state round-trips', () => {
  const D = 8, M = 32;
  const m = new RanPac(D, { M, ridgeMinExponent: -2, ridgeMaxExponent: 2, validationFraction: 0.8, logitScale: 1 });
  const rng = new Rng(5);
  const data = [blobs(rng, D, 10, 0, 2), blobs(rng, D, 10, 2, 3)];
  const methodRng = new Rng(6);
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 }, null, methodRng);
  m.fit(data[0]!, methodRng);
  m.beginTask({ index: 1, classStart: 2, classEnd: 5 }, null, methodRng);
  m.fit(data[1]!, methodRng);
  const state = m.saveState();
  const named = new Map(state.tensors.map(([k, t]) => [k, t]));
  assert.deepEqual(state.tensors.map(([k, t]) => [k, t.shape]), [['projection', [D, M]], ['gram', [packedSize(M)]], ['classSums', [5, M]], ['readout', [5, M]]]);
  const fits = state.meta['fits'] as { lambda: number; losses: number[] }[];
  assert.equal(fits.length, 2);
  for (const f of fits) assert.equal(f.lambda, [0.01, 0.1, 1, 10, 100][f.losses.indexOf(Math.min(...f.losses))]);
  assert.doesNotThrow(() => JSON.stringify(state.meta, (_k, v: unknown) => { if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('non-finite'); return v; }));

  // Independently: H of all rows, G = H^T H, Q = H^T Y, Wo^T = (G + lambda I)^-1 Q.
  const W = named.get('projection')!.data;
  const G = new Float64Array(M * M), Q = new Float64Array(M * 5);
  for (const d of data) {
    const H = randomFeatures(d.split.features, d.split.n, D, W, M);
    for (let i = 0; i < d.split.n; i++) for (let a = 0; a < M; a++) {
      for (let b = 0; b < M; b++) G[a * M + b]! += H[i * M + a]! * H[i * M + b]!;
      Q[a * 5 + d.labels[i]!]! += H[i * M + a]!;
    }
  }
  for (let a = 0; a < M; a++) G[a * M + a]! += fits[1]!.lambda;
  const woT = solveSpd(G, Q, M, 5);
  const readout = named.get('readout')!.data;
  close(Array.from({ length: 5 * M }, (_, i) => readout[i]!), Array.from({ length: 5 * M }, (_, i) => woT[(i % M) * 5 + Math.floor(i / M)]!), 1e-3, 'Wo');

  // Logits = h Wo^T; the blobs are separable, so the training rows are classified right.
  const all = data[1]!;
  const n = all.split.n;
  const p = m.predict(all.split.features, n);
  assert.deepEqual([p.samples, p.n, p.classes], [1, 30, 5]);
  for (let i = 0; i < n; i++) {
    const row = p.logits.subarray(i * 5, i * 5 + 5);
    assert.equal(row.indexOf(Math.max(...row)), all.labels[i]);
  }
  // Round trip: a fresh method loaded from the state predicts the same and continues the same.
  const again = new RanPac(D, m.options);
  again.loadState({ tensors: tensorSource(state.tensors), meta: state.meta }, 'params.safetensors');
  assert.deepEqual(again.predict(all.split.features, n).logits, p.logits);
  const next = blobs(new Rng(7), D, 10, 5, 1);
  for (const x of [m, again]) {
    const r = new Rng(8);
    x.beginTask({ index: 2, classStart: 5, classEnd: 6 }, null, r);
    x.fit(next, r);
  }
  assert.deepEqual(again.saveState().tensors.map(([, t]) => [...t.data]), m.saveState().tensors.map(([, t]) => [...t.data]));
});

test('ranpac: a candidate whose system is singular is saved as null (checkpoints hold JSON, which has no Infinity)', () => {
  const m = new RanPac(5, { M: 0, ridgeMinExponent: -30, ridgeMaxExponent: 0, validationFraction: 0.75, logitScale: 1 });
  const r = new Rng(2);
  m.beginTask({ index: 0, classStart: 0, classEnd: 1 }, null, r);
  // Four identical rows (h = f, D = 5): n_v = 3 < 5, so the dual H_v H_v^T = 5 * ones(3, 3) has rank 1.
  const features = new Float32Array(20).fill(1);
  m.fit({ split: { features, labels: new Int32Array(4), n: 4, views: 1, dim: 5 }, indices: Int32Array.of(0, 1, 2, 3), labels: new Int32Array(4) }, r);
  const meta = m.saveState().meta;
  const fit = (meta['fits'] as { losses: (number | null)[]; lambda: number; form: string }[])[0]!;
  assert.deepEqual([fit.form, fit.losses.length, fit.losses[0]], ['dual', 31, null], 'lambda = 1e-30 is not positive definite in float64');
  assert.ok(fit.lambda > 1e-30);
  assert.doesNotThrow(() => JSON.stringify(meta, (_k, v: unknown) => { if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('non-finite'); return v; }));
});

test('ranpac without a projection (M = 0: h = f), and its errors', () => {
  const D = 4;
  const m = createRanPac({ dim: D, methodOptions: { M: 0 } });
  const r = new Rng(1);
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 }, { textPerTemplate: new Float32Array(8), numTemplates: 1 }, r);
  m.fit!(blobs(r, D, 6, 0, 2), r);
  assert.deepEqual(m.saveState().tensors.map(([k, t]) => [k, t.shape]), [['gram', [10]], ['classSums', [2, 4]], ['readout', [2, 4]]]);
  assert.throws(() => createRanPac({ dim: D, methodOptions: { m: 10 } }), /ranpac: unknown option "m": must be one of \[M, ridgeMinExponent, ridgeMaxExponent, validationFraction, logitScale\]/);
  assert.throws(() => createRanPac({ dim: D, methodOptions: { M: 1.5 } }), /option "M" must be an integer in \[0, 65536\], got 1.5/);
  assert.throws(() => createRanPac({ dim: D, methodOptions: { validationFraction: 1.5 } }), /"validationFraction" must be a number in \(0, 1\]/);
  assert.throws(() => createRanPac({ dim: D, methodOptions: { ridgeMinExponent: 3, ridgeMaxExponent: 2 } }), /"ridgeMinExponent" 3 is above "ridgeMaxExponent" 2/);
  const state = m.saveState();
  assert.throws(() => new RanPac(D, { ...(m as RanPac).options, M: 16 }).loadState({ tensors: tensorSource(state.tensors), meta: state.meta }, 'p.safetensors'), /p\.safetensors: ranpac state was saved with options .*"M":0/);
  const m2 = new RanPac(D, { ...(m as RanPac).options });
  assert.throws(() => m2.loadState({ tensors: tensorSource(state.tensors.slice(1)), meta: state.meta }, 'p.safetensors'), /tensor "gram" of ranpac is missing/);
  m.beginTask({ index: 1, classStart: 2, classEnd: 3 }, { textPerTemplate: new Float32Array(4), numTemplates: 1 }, r);
  assert.throws(() => m.fit!(blobs(r, D, 3, 0, 1), r), /row 0 has label 0, not one of the task's classes \[2, 3\)/);
  assert.throws(() => m.predict(new Float32Array(4), 1, r), /fit was not called/);
});
