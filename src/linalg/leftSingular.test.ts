import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../engine/random.js';
import { LinalgError } from './cholesky.js';
import { leftSingularVectors } from './leftSingular.js';

describe('leftSingularVectors', () => {
  it('hand case: A = [[0, 2], [1, 0]] has U = I up to signs, S = (2, 1)', () => {
    const { u, values } = leftSingularVectors([0, 2, 1, 0], 2, 2);
    assert.deepEqual([...values], [2, 1]);
    assert.deepEqual([...u].map(Math.abs), [1, 0, 0, 1]);
  });

  it('U is orthogonal and U^T A has orthogonal rows of norm s_j (a random 6 x 4 matrix)', () => {
    const m = 6, k = 4, rng = new Rng(3);
    const a = Float64Array.from({ length: m * k }, () => rng.normal());
    const { u, values } = leftSingularVectors(a, m, k);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let t = 0; t < m; t++) s += u[t * m + i]! * u[t * m + j]!;
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12, `U^T U [${i}, ${j}] = ${s}`);
      }
    }
    // R = U^T A: rows R_j with R_i . R_j = delta_ij s_j^2; rank 4, so s_4 = s_5 = 0.
    const r = new Float64Array(m * k);
    for (let j = 0; j < m; j++) for (let t = 0; t < k; t++) for (let i = 0; i < m; i++) r[j * k + t]! += u[i * m + j]! * a[i * k + t]!;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += r[i * k + t]! * r[j * k + t]!;
        assert.ok(Math.abs(s - (i === j ? values[i]! ** 2 : 0)) < 1e-10, `R R^T [${i}, ${j}] = ${s}`);
      }
    }
    for (let j = 1; j < m; j++) assert.ok(values[j - 1]! >= values[j]!);
    assert.ok(values[4]! < 1e-6 && values[3]! > 1e-3);
  });

  it('refuses a wrongly sized input', () => {
    assert.throws(() => leftSingularVectors([1, 2, 3], 2, 2), LinalgError);
  });
});
