import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { DistEncoder, encodeTasks, languageAwareInit, languageAwareWeights, templateStats } from './distEncoder.js';

// C = 3 classes (the third not yet seen), P = 3 templates, D = 2.
//   class 0: (1, 0), (0, 1), (2, -1)  -> Ebar (1, 0), unbiased Var (1, 1)
//   class 1: (0, 3), (0, 1), (3, 2)   -> Ebar (1, 2), unbiased Var (3, 1)
//   class 2: anything (unseen, must not count)
const e = Float32Array.from([
  1, 0, 0, 1, 2, -1,
  0, 3, 0, 1, 3, 2,
  9, 9, -7, 4, 5, 5,
]);

test('templateStats: Ebar is the plain template mean and Var the unbiased variance', () => {
  const { ebar, variance } = templateStats(e, 3, 2, 2);
  assert.deepEqual(Array.from(ebar), [1, 0, 1, 2]);
  assert.deepEqual(Array.from(variance), [1, 1, 3, 1]);
});

test('language-aware init on a hand-computed case: A = Ebar^T Ebar / D, S = Var^T Var / D', () => {
  // Ebar^T Ebar = [[2, 2], [2, 4]] -> A = [[1, 1], [1, 2]]
  // Var^T Var  = [[10, 4], [4, 2]] -> S = [[5, 2], [2, 1]]
  const { A, S } = languageAwareWeights(e, 3, 2, 2);
  assert.deepEqual(Array.from(A), [1, 1, 1, 2]);
  assert.deepEqual(Array.from(S), [5, 2, 2, 1]);

  const enc = new DistEncoder(2, new Rng(0), { withSigma: true, sigmaFloor: 0.001 });
  const bias = enc.bias.data.slice();
  languageAwareInit(enc, e, 3, 2);
  assert.deepEqual(Array.from(enc.weight.data), [1, 1, 1, 2, 5, 2, 2, 1]);
  assert.deepEqual(Array.from(enc.bias.data), Array.from(bias), 'biases keep their default init');
});

test('DistEncoder: mu = A h + a, sigma = softplus(S h + b) * 0.999 + 0.001', () => {
  const enc = new DistEncoder(2, new Rng(0), { withSigma: true, sigmaFloor: 0.001 });
  enc.weight.data.set([1, 1, 1, 2, 5, 2, 2, 1]);
  enc.bias.data.set([0.5, -0.5, 0, -20]);
  const h = Tensor.from([1, -1], [1, 2]);
  const { mu, sigma } = enc.forward(h);
  assert.deepEqual(Array.from(mu.data), [0.5, -1.5]);
  const sp = (x: number) => Math.log1p(Math.exp(x));
  const expected = [sp(3) * 0.999 + 0.001, sp(1 - 20) * 0.999 + 0.001];
  sigma!.data.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) < 1e-6, `${v} vs ${expected[i]}`));
  assert.ok(sigma!.data[1]! >= 0.001);
});

test('DistEncoder without sigma (deterministic ablation) keeps only the mu map', () => {
  const enc = new DistEncoder(2, new Rng(0), { withSigma: false, sigmaFloor: 0.001 });
  assert.deepEqual(enc.weight.shape, [2, 2]);
  languageAwareInit(enc, e, 3, 2);
  assert.deepEqual(Array.from(enc.weight.data), [1, 1, 1, 2]);
  assert.equal(enc.forward(Tensor.from([1, 0], [1, 2])).sigma, null);
});

test('encodeTasks: every task encoder on its own classes, as each encoder alone (with and without sigma, with a leading axis)', () => {
  const d = 16;
  const tasks = [{ classStart: 0, classEnd: 6 }, { classStart: 6, classEnd: 10 }, { classStart: 10, classEnd: 15 }];
  const rng = new Rng(4);
  for (const withSigma of [true, false]) {
    const encoders = tasks.map(() => new DistEncoder(d, rng, { withSigma, sigmaFloor: 0.001 }));
    for (const shape of [[15, d], [2, 15, d]]) {
      const x = Tensor.zeros(shape);
      rng.fillNormal(x.data);
      const { mu, sigma } = encodeTasks(encoders, x, tasks);
      assert.deepEqual(mu.shape, shape);
      const lead = shape.length === 3 ? 2 : 1;
      for (let g = 0; g < lead; g++) {
        tasks.forEach((t, i) => {
          const rows = t.classEnd - t.classStart;
          const at = (g * 15 + t.classStart) * d;
          const alone = encoders[i]!.forward(Tensor.from(x.data.slice(at, at + rows * d), [rows, d]));
          const close = (a: Float32Array, b: Float32Array, what: string) => b.forEach((v, j) => assert.ok(Math.abs(a[at + j]! - v) < 1e-5, `${what} of task ${i}, lead ${g}, element ${j}`));
          close(mu.data, alone.mu.data, 'mu');
          if (withSigma) close(sigma!.data, alone.sigma!.data, 'sigma');
          else assert.equal(sigma, null);
        });
      }
    }
  }
  assert.throws(() => encodeTasks([], Tensor.zeros([1, d]), []), /0 encoders for 0 tasks/);
});
