import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { choleskyBlocked, solveLowerBlocked, solveLowerTransposedBlocked } from './blockedCholesky.js';
import { cholesky, LinalgError, solveLowerInPlace, solveLowerTransposedInPlace } from './cholesky.js';
import { gemm64 } from './gemm64.js';

/** A random SPD [n, n]: X X^T / k + I (X [n, k]). */
function randomSpd(n: number, k: number, rng: Rng): Float64Array {
  const x = Float64Array.from({ length: n * k }, () => rng.normal());
  const a = gemm64(x, x, n, k, n, false, true);
  for (let i = 0; i < a.length; i++) a[i]! /= k;
  for (let i = 0; i < n; i++) a[i * n + i]! += 1;
  return a;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

test('gemm64: float64 products on both paths, transposes included, against a hand case', () => {
  // [[1, 2], [3, 4]] [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
  assert.deepEqual(Array.from(gemm64(Float64Array.of(1, 2, 3, 4), Float64Array.of(5, 6, 7, 8), 2, 2, 2)), [19, 22, 43, 50]);
  assert.deepEqual(Array.from(gemm64(Float64Array.of(1, 3, 2, 4), Float64Array.of(5, 7, 6, 8), 2, 2, 2, true, true)), [19, 22, 43, 50]);
  const rng = new Rng(4);
  const a = Float64Array.from({ length: 70 * 50 }, () => rng.normal()), b = Float64Array.from({ length: 50 * 60 }, () => rng.normal());
  const big = gemm64(a, b, 70, 50, 60); // onnxruntime
  const ref = new Float64Array(70 * 60);
  for (let i = 0; i < 70; i++) for (let p = 0; p < 50; p++) for (let j = 0; j < 60; j++) ref[i * 60 + j]! += a[i * 50 + p]! * b[p * 60 + j]!;
  assert.ok(maxDiff(big, ref) < 1e-12, 'float64 accuracy, not float32');
});

test('blocked Cholesky and triangular solves equal the plain ones (several blocks, a partial last one)', () => {
  const rng = new Rng(7);
  const n = 300, m = 13;
  const a = randomSpd(n, 40, rng);
  const L = choleskyBlocked(a, n, 64);
  assert.ok(maxDiff(L, cholesky(a, n)) < 1e-12, 'L');
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(L[i * n + j], 0);
  const copy = a.slice();
  assert.equal(choleskyBlocked(copy, n, 64, true), copy, 'in place: L is written over A');
  assert.deepEqual(copy, L);
  const b = Float64Array.from({ length: n * m }, () => rng.normal());
  const x = solveLowerBlocked(L, b.slice(), n, m, 64);
  assert.ok(maxDiff(x, solveLowerInPlace(L, b.slice(), n, m)) < 1e-10, 'L X = B');
  const y = solveLowerTransposedBlocked(L, b.slice(), n, m, 64);
  assert.ok(maxDiff(y, solveLowerTransposedInPlace(L, b.slice(), n, m)) < 1e-10, 'L^T X = B');
  // A X = B through both solves.
  const ax = gemm64(a, solveLowerTransposedBlocked(L, x, n, m, 64), n, n, m);
  assert.ok(maxDiff(ax, b) < 1e-9, 'A X = B');
});

test('blocked Cholesky names the block where positive definiteness fails', () => {
  const n = 5;
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = i === 3 ? -1 : 1;
  assert.throws(() => choleskyBlocked(a, n, 2), (e: unknown) => e instanceof LinalgError && /not positive definite \(in the block of rows 2\.\.3 of 5\)/.test(e.message));
  assert.throws(() => choleskyBlocked(new Float64Array(3), 2), /expected 2 x 2 = 4 entries, got 3/);
});
