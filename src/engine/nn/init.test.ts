import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../random.js';
import {
  kaimingUniformBound, kaimingUniformLinear, linearBiasUniform, uniformParameter, xavierUniform, xavierUniformBound,
} from './init.js';

/** max |x|, mean and (population) variance. */
function stats(x: Float32Array) {
  let max = 0, s = 0, s2 = 0;
  for (const v of x) { max = Math.max(max, Math.abs(v)); s += v; s2 += v * v; }
  const mean = s / x.length;
  return { max, mean, variance: s2 / x.length - mean * mean };
}

/** U(-b, b): every value inside, the extremes reached, variance b^2 / 3. */
function assertUniform(x: Float32Array, bound: number): void {
  const { max, mean, variance } = stats(x);
  assert.ok(max <= bound, `max |x| = ${max} exceeds the bound ${bound}`);
  assert.ok(max > 0.999 * bound, `max |x| = ${max} far below the bound ${bound}`);
  assert.ok(Math.abs(mean) < 0.02 * bound, `mean ${mean}`);
  const want = (bound * bound) / 3;
  assert.ok(Math.abs(variance / want - 1) < 0.02, `variance ${variance} vs ${want}`);
}

describe('torch.nn.init formulas', () => {
  it('bounds: kaiming(a = sqrt 5) is 1/sqrt(fan_in), xavier is sqrt(6/(in+out))', () => {
    // gain = sqrt(2 / (1 + 5)) = sqrt(1/3); bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)
    assert.ok(Math.abs(kaimingUniformBound(512) - 1 / Math.sqrt(512)) < 1e-15);
    assert.ok(Math.abs(kaimingUniformBound(512, 0) - Math.sqrt(6 / 512)) < 1e-15);
    assert.equal(xavierUniformBound(512, 1536), Math.sqrt(6 / 2048));
    assert.equal(xavierUniformBound(4, 12, 2), 2 * Math.sqrt(6 / 16));
  });

  it('xavierUniform over an attention in-projection [3D, D]', () => {
    const w = xavierUniform([3 * 256, 256], new Rng(1));
    assert.deepEqual(w.shape, [768, 256]);
    assert.equal(w.requiresGrad, true);
    assertUniform(w.data, Math.sqrt(6 / (256 + 768)));
    assertUniform(xavierUniform([64, 32], new Rng(2), 3).data.slice(), 3 * Math.sqrt(6 / 96));
  });

  it('kaimingUniformLinear and linearBiasUniform use fan_in = in', () => {
    const w = kaimingUniformLinear(200, 512, new Rng(3));
    assert.deepEqual(w.shape, [200, 512]);
    assertUniform(w.data, 1 / Math.sqrt(512));
    const b = linearBiasUniform(20000, 2048, new Rng(4));
    assert.deepEqual(b.shape, [20000]);
    assertUniform(b.data, 1 / Math.sqrt(2048));
    assert.ok(linearBiasUniform(3, 0, new Rng(4)).data.every((v) => v === 0));
  });

  it('is deterministic per seed', () => {
    const a = kaimingUniformLinear(8, 8, new Rng(42)).data;
    assert.deepEqual(kaimingUniformLinear(8, 8, new Rng(42)).data, a);
    assert.notDeepEqual(kaimingUniformLinear(8, 8, new Rng(43)).data, a);
    // One draw per value, row-major: two tensors drawn from one stream equal one of twice the size.
    const rng = new Rng(7);
    const first = uniformParameter([2, 3], 0.5, rng).data, second = uniformParameter([6], 0.5, rng).data;
    assert.deepEqual(uniformParameter([12], 0.5, new Rng(7)).data, Float32Array.from([...first, ...second]));
  });
});
