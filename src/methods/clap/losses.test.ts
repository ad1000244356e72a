import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { distillTerm, klTerm, laspTerm, orthoTerm } from './losses.js';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('klTerm on a hand-computed case: 0.001 * mean over classes of per-class KL sums', () => {
  // class 0: mu (0, 1), sigma (1, 2): 0 + [log(1/2) + (4 + 1)/2 - 1/2] = 2 - ln 2
  // class 1: mu (0, 0), sigma (1, 1): 0
  const mu = Tensor.from([0, 1, 0, 0], [2, 2]);
  const sigma = Tensor.from([1, 2, 1, 1], [2, 2]);
  close(klTerm(mu, sigma).item(), (0.001 * (2 - Math.LN2)) / 2);
  close(klTerm(mu, sigma, undefined, 1).item(), (2 - Math.LN2) / 2);
});

test('klTerm against a Gaussian prior matches the closed form', () => {
  // KL(N(1, 2^2) || N(0, 1^2)) = ln(1/2) + (4 + 1)/2 - 1/2 ; against itself 0
  const mu = Tensor.from([1], [1, 1]);
  const sigma = Tensor.from([2], [1, 1]);
  close(klTerm(mu, sigma, { mu: Tensor.from([0], [1, 1]), sigma: Tensor.from([1], [1, 1]) }, 1).item(), 2 - Math.LN2);
  close(klTerm(mu, sigma, { mu, sigma }, 1).item(), 0);
});

test('laspTerm on a hand-computed case: S = e z^T, CE against the identity', () => {
  // n = 2, P = 1, D = 2, T = 1: S = [[2, 0], [0, 1]]
  const e = Float32Array.from([1, 0, 0, 1]);
  const z = Tensor.from([2, 0, 0, 1], [1, 2, 2]);
  const expected = (Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(-1))) / 2;
  close(laspTerm(e, z, 1).item(), expected);
});

/** S[c][c'] = mean_r mean_p e[c,p] . z^(r)[c'], then mean CE with targets c, all by loops in float64. */
function naiveLasp(e: Float32Array, z: Float32Array, t: number, n: number, p: number, d: number): number {
  let loss = 0;
  for (let c = 0; c < n; c++) {
    const row: number[] = [];
    for (let c2 = 0; c2 < n; c2++) {
      let s = 0;
      for (let r = 0; r < t; r++) {
        for (let q = 0; q < p; q++) {
          for (let j = 0; j < d; j++) s += e[(c * p + q) * d + j]! * z[(r * n + c2) * d + j]!;
        }
      }
      row.push(s / (t * p));
    }
    const m = Math.max(...row);
    loss += m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[c]!;
  }
  return loss / n;
}

test('laspTerm equals a naive loop implementation (and its bilinear shortcut keeps the gradient)', () => {
  const [t, n, p, d] = [6, 3, 4, 5];
  const rng = new Rng(7);
  const e = new Float32Array(n * p * d);
  rng.fillNormal(e);
  const z = new Tensor(new Float32Array(t * n * d), [t, n, d], true);
  rng.fillNormal(z.data, 0, 2);
  const lasp = laspTerm(new Tensor(e, [n, p, d]), z);
  close(lasp.item(), naiveLasp(e, z.data, t, n, p, d), 1e-5);
  lasp.backward();
  // Finite difference on one element of z against the naive loss.
  const i = 7, h = 1e-3;
  const zp = z.data.slice(); zp[i]! += h;
  const zm = z.data.slice(); zm[i]! -= h;
  close(z.grad![i]!, (naiveLasp(e, zp, t, n, p, d) - naiveLasp(e, zm, t, n, p, d)) / (2 * h), 1e-3);
});

test('orthoTerm is CE of M M^T against the identity; distillTerm is the mean squared error', () => {
  const m = Tensor.from([1, 0, 0, 2], [2, 2]); // M M^T = [[1, 0], [0, 4]]
  close(orthoTerm(m).item(), (Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.exp(-4))) / 2);
  close(distillTerm(Tensor.from([1, 2, 3, 4], [2, 2]), Tensor.from([1, 0, 3, 0], [2, 2])).item(), (4 + 16) / 4);
});
