/** Each fused operation against its primitive composition: values and gradients. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../random.js';
import { Tensor } from '../../tensor.js';
import { gradCheck } from '../../testing/gradCheck.js';
import { withSettings } from '../../testing/withSettings.js';
import * as op from '../index.js';

const rng = new Rng(11);
function rand(shape: number[]): Tensor {
  const t = Tensor.zeros(shape, true);
  rng.fillNormal(t.data);
  return t;
}

function gradsOf(build: (xs: Tensor[]) => Tensor, xs: Tensor[], seed: Float32Array): Float32Array[] {
  xs.forEach((x) => { x.grad = null; });
  build(xs).backward(seed);
  return xs.map((x) => x.grad!.slice());
}

/** Value and input gradient of the unary `f` at `x` for the probe `seed`, on the forced `path`. */
function unaryOnPath(f: (x: Tensor) => Tensor, x: Tensor, seed: Float32Array, path: 'onnx' | 'ts'): { y: Float32Array; g: Float32Array } {
  return withSettings(op.fusedSettings, { forceGeluPath: path }, () => ({ g: gradsOf((v) => f(v[0]!), [x], seed)[0]!, y: f(x).data }));
}

test('sampleGaussianWeights equals h + mu + sigma * eps built from primitives', () => {
  const T = 3, C = 4, D = 5;
  const eps = new Float32Array(T * C * D);
  rng.fillNormal(eps);
  const xs = [rand([C, D]), rand([C, D]), rand([C, D])];
  const seed = new Float32Array(T * C * D);
  rng.fillNormal(seed);
  const epsT = Tensor.from(eps, [T, C, D]);
  const viaPrimitives = (v: Tensor[]) => op.add(v[0]!, op.add(v[1]!, op.mul(v[2]!, epsT)));
  const fused = (v: Tensor[]) => op.sampleGaussianWeights(v[0]!, v[1]!, v[2]!, eps, T);
  assert.deepEqual(fused(xs).shape, [T, C, D]);
  const a = fused(xs).data, b = viaPrimitives(xs).data;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-6);
  const ga = gradsOf(fused, xs, seed), gb = gradsOf(viaPrimitives, xs, seed);
  ga.forEach((g, k) => g.forEach((v, i) => assert.ok(Math.abs(v - gb[k]![i]!) < 1e-5, `input ${k} element ${i}`)));
  gradCheck((h, m, s) => op.sampleGaussianWeights(h!, m!, s!, eps, T), xs);
  gradCheck((m, s) => op.sampleGaussianWeights(null, m!, s!, eps, T), [rand([C, D]), rand([C, D])]);
  assert.throws(() => op.sampleGaussianWeights(null, rand([C, D]), rand([C, D]), eps, T + 1), /eps of 60 values for T = 4/);
});

test('GELU in onnxruntime matches the TypeScript GELU and its gradient', () => {
  const x = rand([64, 80]);
  for (let i = 0; i < x.size; i++) x.data[i]! *= 3;
  const seed = new Float32Array(x.size);
  rng.fillNormal(seed);
  const { y: yOnnx, g: gOnnx } = unaryOnPath(op.geluFused, x, seed, 'onnx');
  const { y: yTs, g: gTs } = unaryOnPath(op.geluFused, x, seed, 'ts');
  for (let i = 0; i < x.size; i++) {
    assert.ok(Math.abs(yOnnx[i]! - yTs[i]!) < 1e-6, `value ${i}`);
    assert.ok(Math.abs(gOnnx[i]! - gTs[i]!) < 1e-5 * Math.max(1, Math.abs(gTs[i]!)), `grad ${i}`);
  }
  withSettings(op.fusedSettings, { forceGeluPath: 'onnx' }, () => gradCheck((v) => op.geluFused(v!), [rand([3, 7])]));
});

test('sampledLogits (onnxruntime graph) equals sampleGaussianWeights + matmul + permute', () => {
  const T = 3, C = 5, D = 8, B = 4, scale = 7;
  const eps = new Float32Array(T * C * D);
  rng.fillNormal(eps);
  const f = rand([B, D]);
  f.requiresGrad = false;
  const xs = [rand([C, D]), rand([C, D])];
  const seed = new Float32Array(T * B * C);
  rng.fillNormal(seed);
  const fused = (v: Tensor[]) => op.sampledLogits(f, v[0]!, v[1]!, eps, T, scale);
  const viaPrimitives = (v: Tensor[]) => {
    const w = op.sampleGaussianWeights(null, v[0]!, v[1]!, eps, T);
    const y = op.mulScalar(op.matmul(f, op.reshape(w, [T * C, D]), { transB: true }), scale);
    return op.permute(op.reshape(y, [B, T, C]), [1, 0, 2]);
  };
  const a = fused(xs), b = viaPrimitives(xs);
  assert.deepEqual(a.shape, [T, B, C]);
  a.data.forEach((v, i) => assert.ok(Math.abs(v - b.data[i]!) < 1e-4, `logit ${i}: ${v} vs ${b.data[i]}`));
  const ga = gradsOf(fused, xs, seed), gb = gradsOf(viaPrimitives, xs, seed);
  ga.forEach((g, k) => g.forEach((v, i) => assert.ok(Math.abs(v - gb[k]![i]!) < 1e-4 * Math.max(1, Math.abs(v)), `input ${k} element ${i}`)));
  gradCheck((m, s) => op.sampledLogits(f, m!, s!, eps, T, scale), xs, { eps: 1e-2, rtol: 3e-2, atol: 5e-3 });
  assert.throws(() => op.sampledLogits(rand([B, D]), xs[0]!, xs[1]!, eps, T, scale), /image features are frozen inputs/);
});

test('softplus in onnxruntime matches the TypeScript softplus (incl. the linear region above 20) and its gradient', () => {
  const x = rand([40, 130]);
  for (let i = 0; i < x.size; i++) x.data[i]! *= 8;
  x.data[0] = 25; x.data[1] = -30; x.data[2] = 20;
  const seed = new Float32Array(x.size);
  rng.fillNormal(seed);
  const { y: yOnnx, g: gOnnx } = unaryOnPath(op.softplusFused, x, seed, 'onnx');
  const { y: yTs, g: gTs } = unaryOnPath(op.softplusFused, x, seed, 'ts');
  for (let i = 0; i < x.size; i++) {
    assert.ok(Math.abs(yOnnx[i]! - yTs[i]!) < 2e-6 * Math.max(1, Math.abs(yTs[i]!)), `value ${i}: ${yOnnx[i]} vs ${yTs[i]}`);
    assert.ok(Math.abs(gOnnx[i]! - gTs[i]!) < 1e-5 * Math.max(1, Math.abs(gTs[i]!)), `grad ${i}`);
  }
  assert.equal(yOnnx[0], 25);
});

test('crossEntropyFused (onnxruntime softmax) equals crossEntropy: loss, gradient, target errors', () => {
  const logits = rand([37, 11]);
  for (let i = 0; i < logits.size; i++) logits.data[i]! *= 20; // large logits: the stable forms must agree
  const targets = Int32Array.from({ length: 37 }, (_, r) => (r * 7) % 11);
  const onPath = (path: 'onnx' | 'ts') => withSettings(op.fusedSettings, { forceCrossEntropyPath: path }, () => {
    const x = new Tensor(logits.data.slice(), logits.shape, true);
    const loss = op.crossEntropyFused(x, targets);
    loss.backward();
    return { loss: loss.item(), grad: x.grad! };
  });
  const onnx = onPath('onnx'), ts = onPath('ts');
  assert.ok(Math.abs(onnx.loss - ts.loss) < 1e-5 * Math.max(1, ts.loss), `${onnx.loss} vs ${ts.loss}`);
  for (let i = 0; i < ts.grad.length; i++) assert.ok(Math.abs(onnx.grad[i]! - ts.grad[i]!) < 1e-6, `grad ${i}`);
  // hand value: uniform logits over C classes give log C
  withSettings(op.fusedSettings, { forceCrossEntropyPath: 'onnx' }, () => {
    assert.ok(Math.abs(op.crossEntropyFused(Tensor.zeros([2, 4]), [0, 3]).item() - Math.log(4)) < 1e-6);
    gradCheck((v) => op.crossEntropyFused(v!, [1, 0, 2]), [rand([3, 4])]);
    assert.throws(() => op.crossEntropyFused(rand([2, 4]), [0, 4]), /target 4 out of range \[0, 4\) at row 1/);
    assert.throws(() => op.crossEntropyFused(rand([2, 4]), [0]), /1 targets for 2 rows/);
  });
});

test('layerNormFused (onnxruntime) equals layerNorm: value, gradients of x, gain and bias; hand case; gradcheck', () => {
  const x = rand([3, 50, 96]);
  for (let i = 0; i < 96; i++) x.data[i]! += 1000; // a row far from zero: the variance must not cancel
  const gamma = rand([96]), beta = rand([96]);
  const seed = new Float32Array(x.size);
  rng.fillNormal(seed);
  const onPath = (path: 'onnx' | 'ts') => withSettings(op.fusedSettings, { forceLayerNormPath: path }, () => {
    const y = op.layerNormFused(x, gamma, beta).data;
    return { y, grads: gradsOf((v) => op.layerNormFused(v[0]!, v[1]!, v[2]!), [x, gamma, beta], seed) };
  });
  const onnx = onPath('onnx'), ts = onPath('ts');
  onnx.y.forEach((v, i) => assert.ok(Math.abs(v - ts.y[i]!) < 1e-4, `value ${i}: ${v} vs ${ts.y[i]}`));
  onnx.grads.forEach((g, k) => g.forEach((v, i) => assert.ok(Math.abs(v - ts.grads[k]![i]!) < 2e-4 * Math.max(1, Math.abs(ts.grads[k]![i]!)), `input ${k} element ${i}: ${v} vs ${ts.grads[k]![i]}`)));
  withSettings(op.fusedSettings, { forceLayerNormPath: 'onnx' }, () => {
    // Hand case: row (1, 2, 3, 6): mean 3, biased variance 3.5; gain 2, bias 1.
    const y = op.layerNormFused(Tensor.from([1, 2, 3, 6], [1, 4]), Tensor.from([2, 2, 2, 2], [4]), Tensor.from([1, 1, 1, 1], [4]), 0);
    [-2, -1, 0, 3].forEach((c, i) => assert.ok(Math.abs(y.data[i]! - (1 + (2 * c) / Math.sqrt(3.5))) < 1e-5, `hand value ${i}`));
    gradCheck((v, g, b) => op.layerNormFused(v!, g!, b!), [rand([4, 6]), rand([6]), rand([6])]);
    assert.throws(() => op.layerNormFused(rand([2, 6]), rand([5]), rand([6])), /gain\/bias of size 5\/6 for width 6/);
  });
});

test('residualLayerNorm: LN(x + s * mask) and LN(x + s) equal their primitive twins (onnxruntime), with every gradient', () => {
  const shape = [60, 80];
  const x = rand(shape), s = rand(shape), gamma = rand([80]), beta = rand([80]);
  const mask = op.dropoutMask(x.size, 0.25, new Rng(2));
  const seed = new Float32Array(x.size);
  rng.fillNormal(seed);
  for (const m of [mask, null]) {
    const fused = withSettings(op.fusedSettings, { forceLayerNormPath: 'onnx' }, () => ({
      y: op.residualLayerNorm(x, s, m, gamma, beta).data,
      grads: gradsOf((v) => op.residualLayerNorm(v[0]!, v[1]!, m, v[2]!, v[3]!), [x, s, gamma, beta], seed),
    }));
    const twin = (v: Tensor[]) => op.layerNorm(op.add(v[0]!, m ? op.dropoutWithMask(v[1]!, m) : v[1]!), v[2]!, v[3]!);
    const ref = { y: twin([x, s, gamma, beta]).data, grads: gradsOf(twin, [x, s, gamma, beta], seed) };
    fused.y.forEach((v, i) => assert.ok(Math.abs(v - ref.y[i]!) < 1e-5, `value ${i}`));
    fused.grads.forEach((g, k) => g.forEach((v, i) => assert.ok(Math.abs(v - ref.grads[k]![i]!) < 2e-4 * Math.max(1, Math.abs(ref.grads[k]![i]!)), `${m ? 'masked' : 'plain'} input ${k} element ${i}`)));
    // Dropped elements of the branch get no gradient.
    if (m) fused.grads[1]!.forEach((v, i) => { if (m[i] === 0) assert.ok(v === 0, `dropped element ${i} has gradient ${v}`); });
  }
  withSettings(op.fusedSettings, { forceLayerNormPath: 'onnx' }, () => {
    const small = op.dropoutMask(12, 0.5, new Rng(4));
    gradCheck((a, b, g, bb) => op.residualLayerNorm(a!, b!, small, g!, bb!), [rand([3, 4]), rand([3, 4]), rand([4]), rand([4])]);
    assert.throws(() => op.residualLayerNorm(rand([3, 4]), rand([4, 3]), null, rand([4]), rand([4])), /branch \[4, 3\] for x \[3, 4\]/);
    assert.throws(() => op.residualLayerNorm(rand([3, 4]), rand([3, 4]), new Float32Array(5), rand([4]), rand([4])), /dropout mask of 5 values needs a branch of 12/);
  });
});

test('GELU with a dropout mask equals dropout(GELU(x)) on both paths; the mask must match', () => {
  const x = rand([40, 128]);
  const mask = op.dropoutMask(x.size, 0.1, new Rng(8));
  const seed = new Float32Array(x.size);
  rng.fillNormal(seed);
  const twin = (v: Tensor[]) => op.dropoutWithMask(op.gelu(v[0]!), mask);
  const ref = { y: twin([x]).data, g: gradsOf(twin, [x], seed)[0]! };
  for (const path of ['onnx', 'ts'] as const) {
    withSettings(op.fusedSettings, { forceGeluPath: path }, () => {
      const y = op.geluFused(x, mask).data, g = gradsOf((v) => op.geluFused(v[0]!, mask), [x], seed)[0]!;
      y.forEach((v, i) => assert.ok(Math.abs(v - ref.y[i]!) < 1e-6, `${path} value ${i}`));
      g.forEach((v, i) => assert.ok(Math.abs(v - ref.g[i]!) < 1e-5 * Math.max(1, Math.abs(ref.g[i]!)), `${path} grad ${i}`));
      assert.throws(() => op.geluFused(x, new Float32Array(3)), /gelu: dropout mask of 3 values for 5120 inputs/);
    });
  }
  assert.ok(mask.some((v) => v === 0) && mask.some((v) => Math.abs(v - 1 / 0.9) < 1e-6), 'the mask drops and scales');
});
