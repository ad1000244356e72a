/** Every differentiable op against central finite differences, plus forward values by hand. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../random.js';
import { Tensor, noGrad } from '../tensor.js';
import { gradCheck } from '../testing/gradCheck.js';
import { withSettings } from '../testing/withSettings.js';
import * as op from './index.js';
import { gemm, gemmSettings } from './matmul.js';
import { matmulRef } from '../matmulRef.js';

const rng = new Rng(7);
function rand(shape: number[], scale = 1, offset = 0): Tensor {
  const t = Tensor.zeros(shape, true);
  rng.fillNormal(t.data, offset, scale);
  return t;
}
function positive(shape: number[]): Tensor {
  const t = rand(shape);
  for (let i = 0; i < t.size; i++) t.data[i] = 0.5 + Math.abs(t.data[i]!);
  return t;
}
function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)), `index ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

test('binary ops with broadcasting: values and gradients', () => {
  const a = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = Tensor.from([10, 20, 30], [3]);
  close(op.add(a, b).data, [11, 22, 33, 14, 25, 36]);
  close(op.sub(a, Tensor.from([1, 2], [2, 1])).data, [0, 1, 2, 2, 3, 4]);
  close(op.mul(a, 2).data, [2, 4, 6, 8, 10, 12]);
  close(op.div(a, b).data, [0.1, 0.1, 0.1, 0.4, 0.25, 0.2]);
  for (const [sa, sb] of [[[3, 4], [3, 4]], [[3, 4], [4]], [[3, 4], [3, 1]], [[2, 1, 4], [3, 1]], [[4], [2, 3, 4]], [[], [2, 3]]] as const) {
    gradCheck((x, y) => op.add(x!, y!), [rand([...sa]), rand([...sb])]);
    gradCheck((x, y) => op.sub(x!, y!), [rand([...sa]), rand([...sb])]);
    gradCheck((x, y) => op.mul(x!, y!), [rand([...sa]), rand([...sb])]);
    gradCheck((x, y) => op.div(x!, y!), [rand([...sa]), positive([...sb])]);
  }
  assert.throws(() => op.add(rand([2, 3]), rand([4])), /cannot broadcast shapes \[2, 3\] and \[4\]/);
});

test('unary ops: values and gradients', () => {
  const x = Tensor.from([-2, -0.5, 0, 0.5, 3], [5]);
  close(op.relu(x).data, [0, 0, 0, 0.5, 3]);
  close(op.softplus(x).data, [-2, -0.5, 0, 0.5, 3].map((v) => Math.log1p(Math.exp(v))));
  // GELU reference values from PyTorch (F.gelu, approximate='none').
  close(op.gelu(x).data, [-0.04550027, -0.15426877, 0, 0.34573123, 2.9959502], 2e-6);
  close(op.softplus(Tensor.from([30])).data, [30]);
  for (const f of [op.exp, op.neg, op.tanh, op.sigmoid, op.softplus, op.gelu, op.square]) gradCheck((t) => f(t!), [rand([3, 5])]);
  gradCheck((t) => op.log(t!), [positive([3, 5])]);
  gradCheck((t) => op.sqrt(t!), [positive([3, 5])]);
  gradCheck((t) => op.relu(t!), [rand([3, 5], 1, 0.05)]);
  gradCheck((t) => op.mulScalar(t!, -3), [rand([4])]);
  gradCheck((t) => op.powScalar(t!, 3), [rand([4])]);
});

test('sum and mean over axes', () => {
  const x = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
  close(op.sum(x).data, [21]);
  close(op.sum(x, [0]).data, [5, 7, 9]);
  close(op.sum(x, [1], true).data, [6, 15]);
  assert.deepEqual(op.sum(x, [1], true).shape, [2, 1]);
  close(op.mean(x, [-1]).data, [2, 5]);
  for (const axes of [undefined, [0], [1], [2], [0, 2], [-1]]) {
    gradCheck((t) => op.sum(t!, axes), [rand([2, 3, 4])]);
    gradCheck((t) => op.mean(t!, axes, true), [rand([2, 3, 4])]);
  }
});

test('reshape, permute, transpose, concat, slice, gatherRows', () => {
  const x = Tensor.from([0, 1, 2, 3, 4, 5], [2, 3]);
  close(op.transpose(x).data, [0, 3, 1, 4, 2, 5]);
  assert.deepEqual(op.reshape(x, [3, -1]).shape, [3, 2]);
  assert.throws(() => op.reshape(x, [4, -1]), /cannot view shape \[2, 3\] as \[4, -1\]/);
  close(op.concat([x, Tensor.from([9, 9], [2, 1])], 1).data, [0, 1, 2, 9, 3, 4, 5, 9]);
  close(op.slice(x, 1, 1, 3).data, [1, 2, 4, 5]);
  close(op.gatherRows(x, [1, 1, 0]).data, [3, 4, 5, 3, 4, 5, 0, 1, 2]);
  assert.throws(() => op.gatherRows(x, [2]), /index 2 out of range \[0, 2\)/);
  gradCheck((t) => op.reshape(t!, [4, 6]), [rand([2, 3, 4])]);
  gradCheck((t) => op.permute(t!, [2, 0, 1]), [rand([2, 3, 4])]);
  gradCheck((t) => op.transpose(t!, 0, 2), [rand([2, 3, 4])]);
  gradCheck((a, b) => op.concat([a!, b!], 1), [rand([2, 3, 2]), rand([2, 1, 2])]);
  gradCheck((a, b) => op.concat([a!, b!], 0), [rand([2, 3]), rand([1, 3])]);
  gradCheck((t) => op.slice(t!, 1, 1, 3), [rand([2, 4, 3])]);
  // Along the leading axis a slice is one contiguous run: a view of x's buffer, no copy.
  const rows = op.slice(x, 0, 1, 2);
  close(rows.data, [3, 4, 5]);
  assert.equal(rows.data.buffer, x.data.buffer);
  gradCheck((t) => op.slice(t!, 0, 1, 3), [rand([4, 2, 3])]);
  gradCheck((t) => op.add(op.slice(t!, 0, 0, 2), op.slice(t!, 0, 2, 4)), [rand([4, 3])]);
  gradCheck((t) => op.gatherRows(t!, [2, 0, 2]), [rand([3, 4])]);
});

test('matmul: onnxruntime and TypeScript paths agree to float32 rounding', () => {
  for (const [m, k, n] of [[1, 1, 1], [3, 5, 7], [33, 70, 17], [64, 128, 96]] as const) {
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const a = rand([m * k]).data, b = rand([k * n]).data;
      const ref = matmulRef(a, b, m, k, n, ta, tb);
      const viaOnnx = withSettings(gemmSettings, { forcePath: 'onnx' }, () => gemm(a, b, m, k, n, ta, tb));
      const viaTs = withSettings(gemmSettings, { forcePath: 'ts' }, () => gemm(a, b, m, k, n, ta, tb));
      close(viaOnnx, ref, 1e-5 * Math.sqrt(k));
      close(viaTs, ref, 0);
    }
  }
});

test('matmul and bmm gradients with transposed operands', () => {
  for (const path of ['onnx', 'ts'] as const) {
    withSettings(gemmSettings, { forcePath: path }, () => {
      gradCheck((a, b) => op.matmul(a!, b!), [rand([3, 4]), rand([4, 5])]);
      gradCheck((a, b) => op.matmul(a!, b!, { transA: true }), [rand([4, 3]), rand([4, 5])]);
      gradCheck((a, b) => op.matmul(a!, b!, { transB: true }), [rand([3, 4]), rand([5, 4])]);
      gradCheck((a, b) => op.matmul(a!, b!, { transA: true, transB: true }), [rand([4, 3]), rand([5, 4])]);
      gradCheck((a, b) => op.matmul(a!, b!, { transB: true }), [rand([2, 3, 4]), rand([5, 4])]);
      gradCheck((a, b) => op.bmm(a!, b!), [rand([2, 3, 4]), rand([2, 4, 5])]);
      gradCheck((a, b) => op.bmm(a!, b!, { transA: true, transB: true }), [rand([2, 4, 3]), rand([2, 5, 4])]);
    });
  }
  assert.throws(() => op.matmul(rand([3, 4]), rand([5, 4])), /inner dimensions differ/);
});

test('softmax with an additive mask, log-softmax, cross-entropy', () => {
  const x = Tensor.from([1, 2, 3, 0, 0, 0], [2, 3]);
  const e = [Math.exp(1), Math.exp(2), Math.exp(3)], s = e[0]! + e[1]! + e[2]!;
  close(op.softmax(x).data, [e[0]! / s, e[1]! / s, e[2]! / s, 1 / 3, 1 / 3, 1 / 3]);
  const mask = Tensor.from([0, -Infinity, 0, -Infinity, -Infinity, -Infinity], [2, 3]);
  const masked = op.softmax(x, mask).data;
  close(masked, [e[0]! / (e[0]! + e[2]!), 0, e[2]! / (e[0]! + e[2]!), 0, 0, 0]);
  // masked softmax: gradient flows only to unmasked entries
  const blockMask = Tensor.from([0, 0, -Infinity, -Infinity, 0, 0, -Infinity, -Infinity, -Infinity, -Infinity, 0, 0, -Infinity, -Infinity, 0, 0], [4, 4]);
  gradCheck((t) => op.softmax(t!, blockMask), [rand([4, 4])]);
  gradCheck((t) => op.softmax(t!, Tensor.from([0, -1, 2], [3])), [rand([2, 5, 3])]);
  gradCheck((t) => op.logSoftmax(t!), [rand([3, 6], 3)]);
  const logits = Tensor.from([2, 0, 0, 0, 0, 3], [2, 3]);
  const ce = op.crossEntropy(logits, [0, 1]).item();
  const expected = ((Math.log(Math.exp(2) + 2) - 2) + (Math.log(2 + Math.exp(3)) - 0)) / 2;
  assert.ok(Math.abs(ce - expected) < 1e-6);
  gradCheck((t) => op.crossEntropy(t!, Int32Array.from([0, 4, 2, 2])), [rand([4, 5], 3)]);
  assert.throws(() => op.crossEntropy(rand([2, 3]), [0, 3]), /target 3 out of range \[0, 3\) at row 1/);
});

test('layer norm, L2 normalization, KL of diagonal Gaussians', () => {
  const x = Tensor.from([1, 2, 3, 4], [1, 4]);
  const ln = op.layerNorm(x, Tensor.full([4], 1), Tensor.zeros([4])).data;
  const sd = Math.sqrt(1.25 + 1e-5);
  close(ln, [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]);
  gradCheck((t, g, b) => op.layerNorm(t!, g!, b!), [rand([3, 6]), rand([6]), rand([6])], { eps: 3e-3 });
  close(op.l2Normalize(Tensor.from([3, 4], [1, 2])).data, [0.6, 0.8]);
  close(op.l2Normalize(Tensor.zeros([1, 2])).data, [0, 0]);
  gradCheck((t) => op.l2Normalize(t!), [rand([3, 5])]);
  // KL(N(mu, s) || N(0, 1)) = log(1/s) + (s^2 + mu^2)/2 - 1/2, summed over the last axis
  const kl = op.klDiagGaussian(Tensor.from([0, 1], [1, 2]), Tensor.from([1, 2], [1, 2])).data;
  close(kl, [0 + (Math.log(0.5) + (4 + 1) / 2 - 0.5)]);
  const kl2 = op.klDiagGaussian(Tensor.from([1], [1, 1]), Tensor.from([2], [1, 1]), Tensor.from([1], [1, 1]), Tensor.from([2], [1, 1])).data;
  close(kl2, [0]);
  gradCheck((m, s) => op.klDiagGaussian(m!, s!), [rand([3, 4]), positive([3, 4])]);
  gradCheck((m, s, pm, ps) => op.klDiagGaussian(m!, s!, pm!, ps!), [rand([3, 4]), positive([3, 4]), rand([3, 4]), positive([3, 4])]);
  // N(1, 0.5^2) against N(0, 2^2): log(2/0.5) + (0.25 + 1)/8 - 1/2 per element
  close(op.klDiagGaussian(Tensor.from([1, 1], [1, 2]), Tensor.from([0.5, 0.5], [1, 2]), Tensor.scalar(0), Tensor.scalar(2)).data,
    [2 * (Math.log(4) + 1.25 / 8 - 0.5)]);
  // priors broadcast over rows (a [D] prior, a scalar prior) and get their gradients summed back
  gradCheck((m, s, pm, ps) => op.klDiagGaussian(m!, s!, pm!, ps!), [rand([3, 4]), positive([3, 4]), rand([4]), positive([1])]);
  // the fused op equals its primitive composition, values and gradients
  const [m0, s0, pm0, ps0] = [rand([2, 3, 5]), positive([2, 3, 5]), rand([3, 5]), positive([3, 5])];
  const composed = (m: Tensor, s: Tensor, pm: Tensor, ps: Tensor) => op.sum(op.addScalar(op.add(op.sub(op.log(ps), op.log(s)),
    op.div(op.add(op.square(s), op.square(op.sub(m, pm))), op.mulScalar(op.square(ps), 2))), -0.5), [-1]);
  const leaves = () => [m0, s0, pm0, ps0].map((t) => new Tensor(t.data.slice(), t.shape, true));
  const [a, b] = [leaves(), leaves()];
  const fused = op.klDiagGaussian(a[0]!, a[1]!, a[2]!, a[3]!), twin = composed(b[0]!, b[1]!, b[2]!, b[3]!);
  close(fused.data, twin.data);
  op.sum(fused).backward(); op.sum(twin).backward();
  for (let i = 0; i < 4; i++) close(a[i]!.grad!, b[i]!.grad!);
});

test('dropout is seeded, scaled, identity in eval, and its gradient uses the same mask', () => {
  const x = Tensor.full([1000], 1, true);
  const y1 = op.dropout(x, 0.1, new Rng(3), true);
  const y2 = op.dropout(x, 0.1, new Rng(3), true);
  assert.deepEqual(y1.data, y2.data);
  const kept = y1.data.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.9) < 1e-6));
  assert.ok(Math.abs(kept.length / 1000 - 0.9) < 0.04);
  assert.equal(op.dropout(x, 0.1, new Rng(3), false), x);
  op.sum(y1).backward();
  assert.deepEqual(x.grad, y1.data);
  assert.throws(() => op.dropout(x, 1, new Rng(1), true), /probability 1 must be in \[0, 1\)/);
});

test('noGrad records no tape; backward frees intermediates but keeps leaf gradients', () => {
  const w = rand([3, 3]);
  const y = noGrad(() => op.sum(op.mul(w, w)));
  assert.equal(y.requiresGrad, false);
  assert.throws(() => y.backward(), /does not require grad/);
  const h = op.mul(w, 2);
  const loss = op.sum(op.square(h));
  loss.backward();
  assert.ok(w.grad);
  assert.equal(h.grad, null);
  assert.equal(h.parents.length, 0);
});

test('linear (bias in Gemm C) equals matmul + add, on both paths', () => {
  for (const path of ['onnx', 'ts'] as const) {
    withSettings(gemmSettings, { forcePath: path }, () => {
      const x = rand([2, 3, 4]), w = rand([5, 4]), b = rand([5]);
      const y = op.linear(x, w, b).data, ref = op.add(op.matmul(x, w, { transB: true }), b).data;
      y.forEach((v, i) => assert.ok(Math.abs(v - ref[i]!) < 1e-5, `${path} ${i}`));
      gradCheck((a, c, d) => op.linear(a!, c!, d!), [x, w, b]);
    });
  }
  assert.throws(() => op.linear(rand([2, 4]), rand([5, 3]), rand([5])), /linear: x \[2, 4\], weight \[5, 3\]/);
});
