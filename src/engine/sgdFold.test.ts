import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { add, linear, matmul, mean, mul, relu, slice, sum } from './ops/index.js';
import { SGD, type SGDOptions } from './optim.js';
import { Rng } from './random.js';
import { Tensor } from './tensor.js';

/**
 * A two-layer net whose products are large enough for onnxruntime (the folded path), plus one
 * parameter, `shared`, used by two ops (never folded). Trains `steps` updates with backward + step
 * or with backwardStep; returns the parameters and which of them hold a gradient afterwards.
 */
function train(fold: boolean, opts: Omit<SGDOptions, 'lr'> = {}, steps = 3) {
  const rng = new Rng(7);
  const randn = (shape: number[], scale: number, grad = true) => {
    const t = Tensor.zeros(shape, grad);
    rng.fillNormal(t.data, 0, scale);
    return t;
  };
  const w1 = randn([64, 48], 0.2), b1 = randn([64], 0.1), w2 = randn([8, 64], 0.2), shared = randn([8, 8], 0.3);
  const x = randn([40, 48], 1, false);
  const params = [w1, b1, w2, shared];
  const sgd = new SGD(params, { lr: 0.05, ...opts });
  for (let s = 0; s < steps; s++) {
    sgd.zeroGrad();
    const h = relu(linear(x, w1, b1)); // [40, 64]: weight and bias fold
    const y = linear(h, w2, null); // [40, 8]: the bias-free path through matmul folds too
    const z = matmul(matmul(y, shared), shared); // two consumers: shared keeps a gradient
    const loss = add(mean(mul(z, z)), mean(y));
    const lr = 0.05 / (s + 1);
    if (fold) sgd.backwardStep(loss, lr);
    else {
      loss.backward();
      sgd.step(lr);
    }
  }
  return { params: params.map((p) => Float32Array.from(p.data)), hasGrad: params.map((p) => p.grad !== null) };
}

describe('SGD.backwardStep (plain SGD folded into the weight-gradient Gemm)', () => {
  it('updates as backward + step does, up to float32 rounding', () => {
    const plain = train(false), folded = train(true);
    plain.params.forEach((p, i) => {
      let worst = 0, scale = 0;
      for (let j = 0; j < p.length; j++) {
        worst = Math.max(worst, Math.abs(p[j]! - folded.params[i]![j]!));
        scale = Math.max(scale, Math.abs(p[j]!));
      }
      assert.ok(worst <= 1e-5 * scale, `parameter ${i}: differs by ${worst} (scale ${scale})`);
    });
  });

  it('folds the single-consumer weights and biases (no gradient written) and steps the shared one', () => {
    const { hasGrad } = train(true, {}, 1);
    assert.deepEqual(hasGrad, [false, false, false, true]);
  });

  it('moves every parameter', () => {
    const before = train(true, {}, 0).params, after = train(true, {}, 1).params;
    after.forEach((p, i) => assert.ok(p.some((v, j) => v !== before[i]![j]), `parameter ${i} did not move`));
  });

  it('with momentum or weight decay it is exactly backward + step (nothing folds)', () => {
    for (const opts of [{ momentum: 0.9 }, { weightDecay: 0.01 }]) {
      const plain = train(false, opts), folded = train(true, opts);
      assert.deepEqual(folded.params, plain.params, JSON.stringify(opts));
      assert.deepEqual(train(true, opts, 1).hasGrad, [true, true, true, true]);
    }
  });

  it('a parameter with a pending gradient is stepped with it, not folded', () => {
    const w = Tensor.from(Array.from({ length: 64 * 64 }, (_, i) => (i % 7) / 7), [64, 64], true);
    const x = Tensor.from(Array.from({ length: 32 * 64 }, (_, i) => (i % 5) / 5), [32, 64]);
    const pending = new Float32Array(w.size).fill(1);
    const run = (fold: boolean) => {
      const p = new Tensor(Float32Array.from(w.data), w.shape, true);
      p.grad = Float32Array.from(pending);
      const sgd = new SGD([p], { lr: 0.1 });
      const loss = sum(linear(x, p, null));
      if (fold) sgd.backwardStep(loss);
      else {
        loss.backward();
        sgd.step();
      }
      return p.data;
    };
    assert.deepEqual(run(true), run(false));
  });

  it('folds through slices viewing disjoint rows (cross-attention\'s q and k/v in-projection), not through overlapping or copying ones', () => {
    const run = (fold: boolean, rows: [[number, number], [number, number]], axis = 0) => {
      const rng = new Rng(3);
      const w = Tensor.zeros([96, 64], true), b = Tensor.zeros([96], true);
      rng.fillNormal(w.data, 0, 0.2);
      rng.fillNormal(b.data, 0, 0.1);
      const xq = Tensor.zeros([40, axis === 0 ? 64 : 32]), xkv = Tensor.zeros([24, axis === 0 ? 64 : 32]);
      rng.fillNormal(xq.data);
      rng.fillNormal(xkv.data);
      const sgd = new SGD([w, b], { lr: 0.05 });
      const [[q0, q1], [k0, k1]] = rows;
      const part = (x: Tensor, lo: number, hi: number) => axis === 0
        ? linear(x, slice(w, 0, lo, hi), slice(b, 0, lo, hi))
        : linear(x, slice(w, 1, lo, hi), null);
      const loss = add(mean(mul(part(xq, q0, q1), part(xq, q0, q1).detach())), sum(mean(part(xkv, k0, k1), [0])));
      if (fold) sgd.backwardStep(loss);
      else {
        loss.backward();
        sgd.step();
      }
      return { w: Float32Array.from(w.data), b: Float32Array.from(b.data), stepped: w.grad !== null };
    };
    const close = (a: Float32Array, c: Float32Array) => a.every((v, i) => Math.abs(v - c[i]!) <= 1e-5 * Math.max(1, Math.abs(c[i]!)));
    // disjoint row views [0, 32) and [32, 96): folded in place, no gradient written
    const plain = run(false, [[0, 32], [32, 96]]), folded = run(true, [[0, 32], [32, 96]]);
    assert.ok(close(folded.w, plain.w) && close(folded.b, plain.b));
    assert.ok(!folded.stepped);
    // overlapping rows: each slice's data gradient must see the old rows, so nothing folds
    const overlapPlain = run(false, [[0, 48], [32, 96]]), overlap = run(true, [[0, 48], [32, 96]]);
    assert.ok(overlap.stepped && close(overlap.w, overlapPlain.w));
    // column slices copy (not views of the buffer): stepped as usual
    const cols = run(true, [[0, 32], [32, 64]], 1);
    assert.ok(cols.stepped && close(cols.w, run(false, [[0, 32], [32, 64]], 1).w));
  });

  it('rejects a bad learning rate', () => {
    const p = Tensor.from([1], [1], true);
    assert.throws(() => new SGD([p], { lr: 0.1 }).backwardStep(sum(p), Number.NaN), /invalid learning rate NaN/);
  });
});
