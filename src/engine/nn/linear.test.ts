import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { gradCheck } from '../testing/gradCheck.js';
import { LayerNorm } from './layerNorm.js';
import { Linear } from './linear.js';
import { parameters } from './parameters.js';

function randn(shape: number[], rng: Rng, requiresGrad = true): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  rng.fillNormal(t.data);
  return t;
}

describe('Linear', () => {
  it('computes x W^T + b in torch layout', () => {
    const lin = new Linear(2, 3, new Rng(0));
    lin.weight.data.set([1, 2, 3, 4, 5, 6]); // rows are outputs: [[1, 2], [3, 4], [5, 6]]
    lin.bias!.data.set([0.5, -0.5, 1]);
    const y = lin.forward(Tensor.from([1, -1, 2, 0], [2, 2]));
    assert.deepEqual(y.shape, [2, 3]);
    assert.deepEqual([...y.data], [-0.5, -1.5, 0, 2.5, 5.5, 11]);
  });

  it('has torch shapes and init bounds', () => {
    const lin = new Linear(16, 5, new Rng(1));
    assert.deepEqual(lin.weight.shape, [5, 16]);
    assert.deepEqual(lin.bias!.shape, [5]);
    assert.ok(lin.weight.data.every((v) => Math.abs(v) <= 0.25) && lin.bias!.data.every((v) => Math.abs(v) <= 0.25));
    assert.equal(new Linear(4, 4, new Rng(1), { bias: false }).bias, null);
  });

  it('gradients on leading batch dimensions [2, 3, 4] -> [2, 3, 5]', () => {
    const rng = new Rng(2);
    const lin = new Linear(4, 5, rng);
    const x = randn([2, 3, 4], rng);
    gradCheck(() => lin.forward(x), [x, ...parameters(lin)]);
    const noBias = new Linear(4, 5, rng, { bias: false });
    gradCheck(() => noBias.forward(x), [x, ...parameters(noBias)]);
  });
});

describe('LayerNorm', () => {
  it('starts as gain 1, bias 0, eps 1e-5 and normalizes rows', () => {
    const ln = new LayerNorm(4);
    assert.deepEqual([...ln.weight.data], [1, 1, 1, 1]);
    assert.deepEqual([...ln.bias.data], [0, 0, 0, 0]);
    assert.equal(ln.eps, 1e-5);
    const y = ln.forward(Tensor.from([1, 2, 3, 4], [1, 4])).data;
    // mean 2.5, biased variance 1.25
    const rs = 1 / Math.sqrt(1.25 + 1e-5);
    [-1.5, -0.5, 0.5, 1.5].forEach((c, j) => assert.ok(Math.abs(y[j]! - c * rs) < 1e-6));
  });

  it('gradients with a non-trivial gain and bias', () => {
    const rng = new Rng(3);
    const ln = new LayerNorm(6);
    rng.fillUniform(ln.weight.data, 0.5, 1.5);
    rng.fillUniform(ln.bias.data, -0.5, 0.5);
    const x = randn([3, 6], rng);
    gradCheck(() => ln.forward(x), [x, ...parameters(ln)]);
  });
});
