import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { LayerNorm } from './layerNorm.js';
import { Linear } from './linear.js';
import { countParameters, nameParameters, namedParameters, parameter, parameters, zeroGrad } from './parameters.js';

/** A nested model: class instances, an array of layers, a plain object, a frozen tensor, a shared tensor. */
function model() {
  const rng = new Rng(0);
  const vga = { proj: new Linear(4, 3, rng), norm: new LayerNorm(3) };
  const encoders = [new Linear(3, 2, rng, { bias: false }), { mu: parameter(new Float32Array(2), [2]) }];
  const m = {
    vga,
    encoders,
    frozen: Tensor.zeros([5]),
    tied: vga.proj.weight, // reachable twice: listed once, under its first path
    scale: 100,
    notes: 'ignored',
    buffer: new Float32Array(7),
    self: null as unknown,
  };
  m.self = m; // cycles are not followed
  return m;
}

describe('namedParameters', () => {
  it('walks fields in declaration order, arrays by index', () => {
    const names = namedParameters(model()).map(([n]) => n);
    assert.deepEqual(names, [
      'vga.proj.weight', 'vga.proj.bias', 'vga.norm.weight', 'vga.norm.bias',
      'encoders.0.weight', 'encoders.1.mu',
    ]);
  });

  it('takes a prefix and can include frozen tensors', () => {
    const names = namedParameters(model(), 'clap', { includeFrozen: true }).map(([n]) => n);
    assert.equal(names[0], 'clap.vga.proj.weight');
    assert.equal(names.at(-1), 'clap.frozen');
    assert.equal(names.length, 7);
  });

  it('parameters, countParameters, zeroGrad, nameParameters', () => {
    const m = model();
    assert.equal(parameters(m).length, 6);
    assert.equal(countParameters(m), 12 + 3 + 3 + 3 + 6 + 2);
    assert.equal(countParameters(m, { includeFrozen: true }), 29 + 5);
    for (const p of parameters(m)) p.grad = new Float32Array(p.size).fill(1);
    zeroGrad(m);
    assert.ok(parameters(m).every((p) => p.grad === null));
    nameParameters(m);
    assert.equal(m.vga.norm.bias.name, 'vga.norm.bias');
    assert.equal(m.frozen.name, 'frozen');
  });
});
