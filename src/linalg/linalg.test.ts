import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { cholesky, choleskyInPlace, choleskySolve, LinalgError, linalgSettings, solveLowerInPlace, solveLowerTransposedInPlace, solveSpd } from './cholesky.js';
import { symmetricEigen } from './symmetricEigen.js';

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let p = 0; p < k; p++) for (let j = 0; j < m; j++) out[i * m + j]! += a[i * k + p]! * b[p * m + j]!;
  return out;
}

/** A random symmetric positive-definite [n, n]: G G^T + n I. */
function randomSpd(n: number, rng: Rng): Float64Array {
  const g = Float64Array.from({ length: n * n }, () => rng.normal());
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = i === j ? n : 0;
    for (let k = 0; k < n; k++) s += g[i * n + k]! * g[j * n + k]!;
    a[i * n + j] = s;
  }
  return a;
}

test('cholesky: the textbook 3 x 3 case by hand', () => {
  // [[4,12,-16],[12,37,-43],[-16,-43,98]] = L L^T with L = [[2,0,0],[6,1,0],[-8,5,3]].
  const L = cholesky([4, 12, -16, 12, 37, -43, -16, -43, 98], 3);
  assert.deepEqual([...L], [2, 0, 0, 6, 1, 0, -8, 5, 3]);
});

test('cholesky refuses a matrix that is not positive definite, naming the pivot', () => {
  assert.throws(() => cholesky([1, 2, 2, 1], 2), (e: Error) => e instanceof LinalgError && /not positive definite \(pivot 1 of 2 is -3\)/.test(e.message));
  assert.throws(() => cholesky([NaN, 0, 0, 1], 2), /pivot 0 of 2 is NaN/);
  assert.throws(() => cholesky([1, 0, 0], 2), /expected 2 x 2 = 4 entries, got 3/);
});

test('triangular solves and the SPD solve: hand case and random round trips', () => {
  // L = [[2,0],[1,3]]: L x = (4, 11) gives x = (2, 3); L^T y = (7, 9) gives y = (2, 3).
  close(solveLowerInPlace([2, 0, 1, 3], Float64Array.of(4, 11), 2, 1), [2, 3], 0, 'L x = b');
  close(solveLowerTransposedInPlace([2, 0, 1, 3], Float64Array.of(7, 9), 2, 1), [2, 3], 0, 'L^T y = b');
  const rng = new Rng(7);
  for (const n of [1, 5, 40]) {
    const a = randomSpd(n, rng);
    const x = Float64Array.from({ length: n * 3 }, () => rng.normal());
    const b = matmul(a, x, n, n, 3);
    const before = b.slice();
    close(solveSpd(a, b, n, 3), x, 1e-9, `solveSpd n=${n}`);
    assert.deepEqual(b, before, 'the right-hand side is not modified');
    close(choleskySolve(cholesky(a, n), b, n, 3), x, 1e-9, `choleskySolve n=${n}`);
  }
});

test('symmetricEigen: 2 x 2 by hand, ascending values, unit vectors', () => {
  // [[2,1],[1,2]]: eigenvalues 1 and 3 with vectors (1,-1)/sqrt2 and (1,1)/sqrt2 (up to sign).
  const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
  close(values, [1, 3], 1e-14, 'values');
  const s = Math.SQRT1_2;
  const v0 = vectors.subarray(0, 2), v1 = vectors.subarray(2, 4);
  close(v0[0]! > 0 ? v0 : v0.map((x) => -x), [s, -s], 1e-14, 'vector of 1');
  close(v1[0]! > 0 ? v1 : v1.map((x) => -x), [s, s], 1e-14, 'vector of 3');
});

test('symmetricEigen: diagonal, repeated and zero eigenvalues, 1 x 1 and 0 x 0', () => {
  close(symmetricEigen([3, 0, 0, 0, -1, 0, 0, 0, 2], 3).values, [-1, 2, 3], 0, 'diagonal');
  const id = symmetricEigen([1, 0, 0, 0, 1, 0, 0, 0, 1], 3);
  close(id.values, [1, 1, 1], 0, 'identity');
  close(symmetricEigen([0, 0, 0, 0], 2).values, [0, 0], 0, 'zero matrix');
  close(symmetricEigen([5], 1).values, [5], 0, '1 x 1');
  assert.equal(symmetricEigen([], 0).values.length, 0);
  assert.throws(() => symmetricEigen([1, Infinity, Infinity, 1], 2), /entry \(0, 1\) is Infinity/);
});

test('symmetricEigen on random matrices: A v = lambda v, V orthonormal, trace kept', () => {
  const rng = new Rng(11);
  for (const n of [3, 17, 60]) {
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 1; k < n; k++) assert.ok(values[k - 1]! <= values[k]!, 'ascending');
    for (let k = 0; k < n; k++) {
      const v = vectors.subarray(k * n, (k + 1) * n);
      close(matmul(a, v, n, n, 1), v.map((x) => values[k]! * x), 1e-10, `A v = lambda v (n=${n}, k=${k})`);
      for (let l = 0; l <= k; l++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += v[i]! * vectors[l * n + i]!;
        assert.ok(Math.abs(dot - (l === k ? 1 : 0)) < 1e-12, `v${k} . v${l} = ${dot}`);
      }
    }
    let trace = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i]!;
    assert.ok(Math.abs(values.reduce((s, x) => s + x, 0) - trace) < 1e-10, 'sum of eigenvalues = trace');
  }
});

test('blocked paths (block smaller than n, products in onnxruntime) match the plain loops', () => {
  const rng = new Rng(5);
  const n = 150;
  const a = randomSpd(n, rng);
  const b = Float64Array.from({ length: n * 7 }, () => rng.normal());
  const saved = { ...linalgSettings };
  let plain: { L: Float64Array; x: Float64Array };
  try {
    linalgSettings.block = n; // one block: the plain loops
    plain = { L: cholesky(a, n), x: solveSpd(a, b, n, 7) };
    linalgSettings.block = 16; // 10 blocks, the last one short; 150 x 16 x 150 products go to onnxruntime
    linalgSettings.updateRows = 40; // the trailing update in chunks of 40 rows, the last one short
    const L = cholesky(a, n);
    close(L, plain.L, 1e-9, 'L blocked');
    close(solveSpd(a, b, n, 7), plain.x, 1e-9, 'solve blocked');
    // In place on a full symmetric matrix: the lower triangle becomes L, the upper one is not read.
    const full = a.slice();
    choleskyInPlace(full, n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) assert.ok(Math.abs(full[i * n + j]! - plain.L[i * n + j]!) < 1e-9);
    const bad = a.slice();
    bad[100 * n + 100] = -1e6;
    assert.throws(() => cholesky(bad, n), /pivot 100 of 150 is -/);
  } finally {
    Object.assign(linalgSettings, saved);
  }
});
