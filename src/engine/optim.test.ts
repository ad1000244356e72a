import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, cosineLr, multiStepLr, SGD, warmupCosineLr, type AdamOptions, type SGDOptions } from './optim.js';
import { Tensor } from './tensor.js';

/** Two SGD steps on p = [1, 2] with the same gradient g = [0.5, -1] and lr 0.1; p after each step. */
function twoSteps(opts: Omit<SGDOptions, 'lr'>): number[][] {
  const p = Tensor.from([1, 2], [2], true);
  const sgd = new SGD([p], { lr: 0.1, ...opts });
  const after: number[][] = [];
  for (let s = 0; s < 2; s++) {
    p.grad = Float32Array.of(0.5, -1);
    sgd.step();
    after.push([...p.data]);
  }
  return after;
}

function assertClose(actual: number[][], expected: number[][], tol = 1e-6): void {
  actual.forEach((row, i) => row.forEach((v, j) => {
    assert.ok(Math.abs(v - expected[i]![j]!) <= tol, `step ${i} element ${j}: ${v} vs ${expected[i]![j]}`);
  }));
}

describe('SGD (torch.optim.SGD update equations)', () => {
  // Expected values worked by hand; torch 1.13 gives the same numbers (float64).
  it('plain: p -= lr g', () => {
    assertClose(twoSteps({}), [[0.95, 2.1], [0.9, 2.2]]);
  });

  it('weight decay: g + wd p', () => {
    // step 1: d = [0.5 + 0.1, -1 + 0.2]; step 2: d = [0.5 + 0.094, -1 + 0.208]
    assertClose(twoSteps({ weightDecay: 0.1 }), [[0.94, 2.08], [0.8806, 2.1592]]);
  });

  it('momentum: the buffer starts as a copy of the gradient', () => {
    // step 1: b = g; step 2: b = 0.9 g + g = [0.95, -1.9]
    assertClose(twoSteps({ momentum: 0.9 }), [[0.95, 2.1], [0.855, 2.29]]);
  });

  it('momentum with dampening (the first step is not damped)', () => {
    // step 2: b = 0.9 * 0.5 + 0.5 * 0.5 = 0.7
    assertClose(twoSteps({ momentum: 0.9, dampening: 0.5 }), [[0.95, 2.1], [0.88, 2.24]]);
  });

  it('Nesterov: g + momentum b', () => {
    // step 1: 1.9 g; step 2: b = 0.95, update 0.5 + 0.9 * 0.95 = 1.355
    assertClose(twoSteps({ momentum: 0.9, nesterov: true }), [[0.905, 2.19], [0.7695, 2.461]]);
  });

  it('momentum with weight decay: decay enters the buffer', () => {
    // step 2: d = [0.594, -0.792], b = 0.9 [0.6, -0.8] + d = [1.134, -1.512]
    assertClose(twoSteps({ momentum: 0.9, weightDecay: 0.1 }), [[0.94, 2.08], [0.8266, 2.2312]]);
  });

  it('skips parameters without a gradient and creates no buffer for them', () => {
    const a = Tensor.from([1, 2], [2], true), b = Tensor.from([3], [1], true);
    const sgd = new SGD([a, b], { lr: 0.5, momentum: 0.9 });
    a.grad = Float32Array.of(1, 1);
    sgd.step();
    assert.deepEqual([...a.data], [0.5, 1.5]);
    assert.deepEqual([...b.data], [3]);
    assert.equal(sgd.momentumBuffers.has(b), false);
    sgd.zeroGrad();
    assert.equal(a.grad, null);
    sgd.step();
    assert.deepEqual([...a.data], [0.5, 1.5]);
  });

  it('step(lr) sets the rate for this and later steps', () => {
    const p = Tensor.from([1], [1], true);
    const sgd = new SGD([p], { lr: 0.1 });
    p.grad = Float32Array.of(1);
    sgd.step(0.25);
    assert.equal(p.data[0], 0.75);
    assert.equal(sgd.lr, 0.25);
    sgd.step();
    assert.equal(p.data[0], 0.5);
  });

  it('rejects invalid settings as torch does', () => {
    assert.throws(() => new SGD([], { lr: -1 }), RangeError);
    assert.throws(() => new SGD([], { lr: 0.1, nesterov: true }), RangeError);
    assert.throws(() => new SGD([], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), RangeError);
  });
});

describe('learning-rate schedules (spec section 5)', () => {
  it('S = 10: W = 3 warm-up steps, then cosine to lr * 1e-3', () => {
    // k < 3: (k + 1) / 4; k >= 3: f + (1 - f)(1 + cos(pi (k - 3) / 7)) / 2, f = 1e-3 (lr = 1).
    const expected = [
      0.25, 0.5, 0.75,
      1.0, 0.9505339495172583, 0.8119331560284374, 0.611649206511179,
      0.389350793488821, 0.18906684397156262, 0.05046605048274169,
    ];
    for (let k = 0; k < 10; k++) {
      assert.ok(Math.abs(warmupCosineLr(k, 10, 1) - expected[k]!) < 1e-15, `k = ${k}: ${warmupCosineLr(k, 10, 1)}`);
    }
    // Proportional to lr: the paper's lr = 1e-3 * 32 / 20.
    assert.ok(Math.abs(warmupCosineLr(5, 10, 1.6e-3) - 1.6e-3 * expected[5]!) < 1e-18);
  });

  it('decays monotonically after the warm-up and stays above f', () => {
    const s = 787, lr = 1.6e-3, w = Math.floor(0.3 * s);
    for (let k = 0; k < w; k++) assert.ok(warmupCosineLr(k + 1, s, lr) > warmupCosineLr(k, s, lr));
    for (let k = w; k < s - 1; k++) assert.ok(warmupCosineLr(k + 1, s, lr) < warmupCosineLr(k, s, lr));
    assert.equal(warmupCosineLr(w, s, lr), lr);
    assert.ok(warmupCosineLr(s - 1, s, lr) > lr * 1e-3);
  });

  it('cosineLr has no warm-up: lr at k = 0', () => {
    assert.equal(cosineLr(0, 10, 0.1), 0.1);
    assert.ok(Math.abs(cosineLr(5, 10, 0.1) - (1e-4 + (0.1 - 1e-4) / 2)) < 1e-15);
    assert.ok(cosineLr(9, 10, 0.1) > 1e-4);
    assert.ok(Math.abs(cosineLr(1, 4, 1, 0.5) - (0.5 + 0.5 * (1 + Math.SQRT1_2) / 2)) < 1e-15);
  });

  it('rejects iterations outside [0, S)', () => {
    assert.throws(() => warmupCosineLr(10, 10, 1), RangeError);
    assert.throws(() => warmupCosineLr(-1, 10, 1), RangeError);
    assert.throws(() => cosineLr(0, 0, 1), RangeError);
  });
});

/** Two Adam steps on p = [1, 2] with gradients [0.5, -1] then [-0.5, 2] at lr 0.1; p after each step. */
function twoAdamSteps(opts: Omit<AdamOptions, 'lr'>): number[][] {
  const p = Tensor.from([1, 2], [2], true);
  const adam = new Adam([p], { lr: 0.1, ...opts });
  const after: number[][] = [];
  for (const g of [[0.5, -1], [-0.5, 2]]) {
    p.grad = Float32Array.from(g);
    adam.step();
    after.push([...p.data]);
  }
  return after;
}

describe('Adam (torch.optim.Adam update equations)', () => {
  // By hand: step 1 moves each p by lr g / (|g| + eps); step 2 for p0: m = 0.9 0.05 - 0.05 = -0.005,
  // m^ = -0.005 / 0.19, v^ = 0.00049975 / 0.001999 = 0.25, so p0 = 0.9 + 0.1 (0.005 / 0.19) / 0.5.
  it('bias-corrected moments, betas (0.9, 0.999), eps 1e-8', () => {
    assertClose(twoAdamSteps({}), [[0.900000002, 2.099999999], [0.90526315979, 2.06338964653]]);
  });

  it('weight decay adds wd p to the gradient', () => {
    assertClose(twoAdamSteps({ weightDecay: 0.1 }), [[0.90000000167, 2.09999999875], [0.88668362306, 2.05282265822]]);
  });

  it('counts steps per parameter and skips parameters without a gradient', () => {
    const a = Tensor.from([1], [1], true), b = Tensor.from([1], [1], true);
    const adam = new Adam([a, b], { lr: 0.1 });
    a.grad = Float32Array.of(0.5);
    adam.step();
    assert.equal(b.data[0], 1);
    assert.equal(adam.moments.has(b), false);
    b.grad = Float32Array.of(0.5);
    adam.step(0.2);
    // b's first step (t = 1) moves it by the new lr; a's second step with the same gradient by lr too.
    assert.ok(Math.abs(b.data[0]! - 0.8) < 1e-6 && Math.abs(a.data[0]! - 0.7) < 1e-6, `${a.data[0]} ${b.data[0]}`);
    adam.zeroGrad();
    assert.equal(a.grad, null);
  });

  it('rejects bad settings', () => {
    const p = Tensor.from([1], [1], true);
    assert.throws(() => new Adam([p], { lr: -1 }), /learning rate/);
    assert.throws(() => new Adam([p], { lr: 1, beta1: 1 }), /betas/);
    assert.throws(() => new Adam([p], { lr: 1, eps: -1 }), /eps/);
  });
});

describe('multiStepLr (MultiStepLR stepped per epoch)', () => {
  it('RAPF: 1e-3, x0.1 at epochs 4 and 10', () => {
    const lrs = Array.from({ length: 15 }, (_, e) => multiStepLr(e, 1e-3, [4, 10], 0.1));
    for (let e = 0; e < 15; e++) {
      const want = e < 4 ? 1e-3 : e < 10 ? 1e-4 : 1e-5;
      assert.ok(Math.abs(lrs[e]! - want) < 1e-18, `epoch ${e}: ${lrs[e]}`);
    }
    assert.throws(() => multiStepLr(-1, 1, [], 0.1), RangeError);
  });
});
