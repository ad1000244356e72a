import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { gradCheck } from '../testing/gradCheck.js';
import { blockDiagonalMask, MultiheadAttention } from './attention.js';
import { parameters } from './parameters.js';

function randn(shape: number[], rng: Rng, requiresGrad = true): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  rng.fillNormal(t.data);
  return t;
}

/** An attention layer whose zero-initialized biases are made random, so every path carries signal. */
function randomAttention(d: number, h: number, seed: number, dropout = 0): MultiheadAttention {
  const rng = new Rng(seed);
  const mha = new MultiheadAttention(d, h, rng, { dropout });
  rng.fillUniform(mha.inProjBias.data, -0.5, 0.5);
  rng.fillUniform(mha.outProj.bias!.data, -0.5, 0.5);
  return mha;
}

/** Identity projections: inProjWeight = [I; I; I], outProj = I, zero biases. */
function identityAttention(d: number, h: number): MultiheadAttention {
  const mha = new MultiheadAttention(d, h, new Rng(0));
  mha.inProjWeight.data.fill(0);
  for (let i = 0; i < 3 * d; i++) mha.inProjWeight.data[i * d + (i % d)] = 1;
  mha.outProj.weight.data.fill(0);
  for (let i = 0; i < d; i++) mha.outProj.weight.data[i * d + i] = 1;
  return mha;
}

const EVAL = { training: false } as const;

describe('MultiheadAttention', () => {
  it('blockDiagonalMask: tasks {0} and {1, 2}', () => {
    const I = -Infinity;
    assert.deepEqual([...blockDiagonalMask([1, 2]).data], [0, I, I, I, 0, 0, I, 0, 0]);
  });

  it('initializes as torch: xavier in-projection, zero biases, kaiming out-projection', () => {
    const mha = new MultiheadAttention(64, 4, new Rng(1));
    assert.deepEqual(mha.inProjWeight.shape, [192, 64]);
    assert.ok(mha.inProjBias.data.every((v) => v === 0) && mha.outProj.bias!.data.every((v) => v === 0));
    const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(maxAbs(mha.inProjWeight.data) <= Math.sqrt(6 / 256) && maxAbs(mha.inProjWeight.data) > 0.99 * Math.sqrt(6 / 256));
    assert.ok(maxAbs(mha.outProj.weight.data) <= 1 / 8 && maxAbs(mha.outProj.weight.data) > 0.99 / 8);
    assert.throws(() => new MultiheadAttention(6, 4, new Rng(1)), /divisible/);
  });

  it('hand-computed: one head, D = 4, identity projections', () => {
    // q = [2,0,0,0], keys [2,0,0,0] and 0: scores 4/sqrt(4) = 2 and 0, so p = e^2 / (e^2 + 1) and
    // out = p * [2,0,0,0]. Blocking the first key leaves only the zero key: out = 0.
    const mha = identityAttention(4, 1);
    const q = Tensor.from([2, 0, 0, 0], [1, 4]);
    const kv = Tensor.from([2, 0, 0, 0, 0, 0, 0, 0], [2, 4]);
    const p = Math.exp(2) / (Math.exp(2) + 1);
    const out = mha.forward(q, kv, kv, EVAL).data;
    [2 * p, 0, 0, 0].forEach((v, j) => assert.ok(Math.abs(out[j]! - v) < 1e-6, `${out[j]} vs ${v}`));
    const masked = mha.forward(q, kv, kv, { ...EVAL, mask: Tensor.from([-Infinity, 0], [1, 2]) }).data;
    assert.deepEqual([...masked], [0, 0, 0, 0]);
  });

  it('hand-computed: two heads split the columns and scale by sqrt(D / H)', () => {
    // Head 0 sees columns 0-1: q0 = [2,0], k0 = [2,0] and [0,0]: scores 4/sqrt(2) and 0.
    // Head 1 sees columns 2-3: q1 = 0, so it averages the values. Values are 1s and 3s.
    const mha = identityAttention(4, 2);
    const q = Tensor.from([2, 0, 0, 0], [1, 4]);
    const k = Tensor.from([2, 0, 0, 0, 0, 0, 0, 0], [2, 4]);
    const v = Tensor.from([1, 1, 1, 1, 3, 3, 3, 3], [2, 4]);
    const p = 1 / (1 + Math.exp(-4 / Math.SQRT2));
    const out = mha.forward(q, k, v, EVAL).data;
    [3 - 2 * p, 3 - 2 * p, 2, 2].forEach((want, j) => assert.ok(Math.abs(out[j]! - want) < 1e-6, `${out[j]} vs ${want}`));
  });

  it('the fused self-attention and cross-attention projections equal three separate ones', () => {
    const rng = new Rng(5);
    const mha = randomAttention(6, 2, 6);
    const x = randn([4, 6], rng, false), m = randn([3, 6], rng, false);
    const copy = (t: Tensor) => Tensor.from(t.data.slice(), t.shape);
    const close = (a: Tensor, b: Tensor) => a.data.forEach((v, i) => assert.ok(Math.abs(v - b.data[i]!) < 1e-5));
    close(mha.forward(x, x, x, EVAL), mha.forward(x, copy(x), copy(x), EVAL));
    close(mha.forward(x, m, m, EVAL), mha.forward(x, m, copy(m), EVAL));
  });

  it('gradients: masked self-attention, 1 head, D = 4, C = 3', () => {
    const mha = randomAttention(4, 1, 7);
    const x = randn([3, 4], new Rng(8));
    const mask = blockDiagonalMask([1, 2]);
    gradCheck(() => mha.forward(x, x, x, { ...EVAL, mask }), [x, ...parameters(mha)]);
  });

  it('gradients: masked self-attention, 2 heads, D = 6', () => {
    const mha = randomAttention(6, 2, 9);
    const x = randn([3, 6], new Rng(10));
    const mask = blockDiagonalMask([2, 1]);
    gradCheck(() => mha.forward(x, x, x, { ...EVAL, mask }), [x, ...parameters(mha)]);
  });

  it('gradients: cross-attention (k = v), 2 heads, D = 4, C = 3, B = 2', () => {
    const mha = randomAttention(4, 2, 11);
    const rng = new Rng(12);
    const x = randn([3, 4], rng), m = randn([2, 4], rng);
    gradCheck(() => mha.forward(x, m, m, EVAL), [x, m, ...parameters(mha)]);
  });

  it('gradients: distinct q, k, v with a random mask, 3 heads, D = 6', () => {
    const mha = randomAttention(6, 3, 13);
    const rng = new Rng(14);
    const q = randn([3, 6], rng), k = randn([4, 6], rng), v = randn([4, 6], rng);
    const mask = Tensor.from([0, -Infinity, 0, 0, 0, 0, -Infinity, -Infinity, -Infinity, 0, 0, -Infinity], [3, 4]);
    gradCheck(() => mha.forward(q, k, v, { ...EVAL, mask }), [q, k, v, ...parameters(mha)]);
  });

  it('masked-out keys and values get exactly zero gradient', () => {
    // Tasks {0, 1} and {2}: queries 0 and 1 attend only to keys 0 and 1, so from output rows 0-1
    // alone the gradient of key and value row 2 is exactly zero, and it is not for rows 0-1.
    // (With a one-class task the lone probability is 1 whatever the key: its key gradient is 0 too.)
    const mha = randomAttention(6, 2, 15);
    const rng = new Rng(16);
    const q = randn([3, 6], rng), k = randn([3, 6], rng), v = randn([3, 6], rng);
    const out = mha.forward(q, k, v, { ...EVAL, mask: blockDiagonalMask([2, 1]) });
    const seed = new Float32Array(out.size);
    seed.fill(1, 0, 12);
    out.backward(seed);
    for (const t of [k, v]) {
      assert.ok(t.grad!.subarray(12).every((g) => g === 0), 'the masked row has gradient');
      assert.ok(t.grad!.subarray(0, 6).some((g) => g !== 0) && t.grad!.subarray(6, 12).some((g) => g !== 0), 'an attended row has no gradient');
    }
  });

  it('dropout on the probabilities: training only, reproducible per seed, differentiable', () => {
    const mha = randomAttention(4, 2, 17, 0.5);
    const x = randn([3, 4], new Rng(18));
    const run = (seed: number) => mha.forward(x, x, x, { training: true, rng: new Rng(seed) }).data;
    assert.deepEqual(run(1), run(1));
    assert.notDeepEqual(run(1), run(2));
    assert.notDeepEqual(run(1), mha.forward(x, x, x, EVAL).data);
    assert.throws(() => mha.forward(x, x, x, { training: true }), /rng/);
    // A fresh generator per call replays the same masks, so finite differences apply.
    gradCheck(() => mha.forward(x, x, x, { training: true, rng: new Rng(3) }), [x, ...parameters(mha)]);
  });
});
