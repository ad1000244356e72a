/** blockLinear (one onnxruntime graph per direction) against its twin, linear per row block + concat. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SGD } from '../../optim.js';
import { Rng } from '../../random.js';
import { Tensor } from '../../tensor.js';
import { gradCheck } from '../../testing/gradCheck.js';
import { withSettings } from '../../testing/withSettings.js';
import * as op from '../index.js';

const rng = new Rng(23);
function rand(shape: number[], requiresGrad = true): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  rng.fillNormal(t.data, 0, 0.5);
  return t;
}

/** Blocks of sizes `sizes` (tiling their sum) with weights [out, in] and biases [out]. */
function blocksOf(sizes: number[], inF: number, outF: number, requiresGrad = true): op.LinearBlock[] {
  let start = 0;
  return sizes.map((n) => {
    const b = { start, end: start + n, weight: rand([outF, inF], requiresGrad), bias: rand([outF], requiresGrad) };
    start += n;
    return b;
  });
}

function twin(x: Tensor, blocks: readonly op.LinearBlock[]): Tensor {
  return op.concat(blocks.map((b) => op.linear(op.slice(x, -2, b.start, b.end), b.weight, b.bias)), -2);
}

/** Value and every gradient (x, then each block's weight and bias) for the probe `seed`. */
function run(f: typeof twin, x: Tensor, blocks: readonly op.LinearBlock[], seed: Float32Array) {
  const all = [x, ...blocks.flatMap((b) => [b.weight, b.bias])];
  all.forEach((t) => { t.grad = null; });
  const y = f(x, blocks);
  y.backward(seed);
  return { y: y.data.slice(), shape: y.shape, grads: all.map((t) => t.grad?.slice() ?? null) };
}

function assertClose(a: Float32Array, b: Float32Array, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `${what} element ${i}: ${a[i]} vs ${b[i]}`);
}

describe('blockLinear', () => {
  const inF = 24, outF = 40, sizes = [7, 5, 10]; // every block's product above the small-product threshold: onnxruntime

  for (const lead of [[], [3]]) {
    it(`equals linear per block + concat, value and all gradients (leading dims [${lead.join(', ')}])`, () => {
      const x = rand([...lead, 22, inF]);
      const blocks = blocksOf(sizes, inF, outF);
      const seed = new Float32Array(x.size / inF * outF);
      rng.fillNormal(seed);
      const fused = run(op.blockLinear, x, blocks, seed), ref = run(twin, x, blocks, seed);
      assert.deepEqual(fused.shape, [...lead, 22, outF]);
      // Same Gemm per block: the same numbers, bit for bit.
      assert.deepEqual(fused.y, ref.y);
      fused.grads.forEach((g, i) => assertClose(g!, ref.grads[i]!, 1e-5, `gradient ${i}`));
    });
  }

  it('passes a finite-difference gradient check (onnxruntime path)', () => {
    const blocks = blocksOf([5, 4], 8, 120);
    gradCheck((x, w0, b0, w1, b1) => op.blockLinear(x!, [
      { start: 0, end: 5, weight: w0!, bias: b0! }, { start: 5, end: 9, weight: w1!, bias: b1! },
    ]), [rand([9, 8]), blocks[0]!.weight, blocks[0]!.bias, blocks[1]!.weight, blocks[1]!.bias]);
  });

  it('takes the TypeScript twin below the small-product threshold, with the same numbers', () => {
    const x = rand([5, 3]);
    const blocks = blocksOf([2, 3], 3, 4);
    const seed = new Float32Array(5 * 4).fill(1);
    const small = run(op.blockLinear, x, blocks, seed);
    const onnx = withSettings(op.gemmSettings, { forcePath: 'onnx' }, () => run(op.blockLinear, x, blocks, seed));
    assertClose(small.y, onnx.y, 1e-6, 'value');
    small.grads.forEach((g, i) => assertClose(g!, onnx.grads[i]!, 1e-5, `gradient ${i}`));
  });

  it('frozen blocks get no gradient; the input still gets the gradient of every block', () => {
    const x = rand([22, inF]);
    const blocks = blocksOf(sizes, inF, outF, false);
    blocks[2]!.weight.requiresGrad = true; // only the last block trains (CLAP while learning a task)
    blocks[2]!.bias.requiresGrad = true;
    const seed = new Float32Array(22 * outF);
    rng.fillNormal(seed);
    const fused = run(op.blockLinear, x, blocks, seed), ref = run(twin, x, blocks, seed);
    assert.deepEqual(fused.grads.map((g) => g !== null), [true, false, false, false, false, true, true]);
    assertClose(fused.grads[0]!, ref.grads[0]!, 1e-5, 'x gradient');
    assertClose(fused.grads[5]!, ref.grads[5]!, 1e-5, 'trainable weight gradient');
  });

  it('folds plain SGD into each block weight as backward + step does', () => {
    const x = rand([2, 22, inF], false);
    const trainOnce = (fold: boolean) => {
      const local = new Rng(5);
      const blocks = blocksOf(sizes, inF, outF).map((b) => {
        local.fillNormal(b.weight.data, 0, 0.3);
        local.fillNormal(b.bias.data, 0, 0.3);
        return b;
      });
      const params = blocks.flatMap((b) => [b.weight, b.bias]);
      const initial = params.map((p) => p.data.slice());
      const sgd = new SGD(params, { lr: 0.1 });
      const loss = op.mean(op.mul(op.blockLinear(x, blocks), op.blockLinear(x, blocks).detach()));
      if (fold) sgd.backwardStep(loss);
      else { loss.backward(); sgd.step(); }
      return { params, initial };
    };
    const plain = trainOnce(false), folded = trainOnce(true);
    folded.params.forEach((p, i) => {
      assert.equal(p.grad, null, `parameter ${i} was updated in the backward pass, not given a gradient`);
      assertClose(p.data, plain.params[i]!.data, 1e-5, `parameter ${i}`);
      assert.ok(p.data.some((v, j) => v !== folded.initial[i]![j]), `parameter ${i} did not move`);
    });
  });

  for (const lead of [[], [3]]) {
    it(`frozen blocks baked in as initializers give the same value and gradients, bit for bit at a small inner dimension (leading dims [${lead.join(', ')}])`, () => {
      const x = rand([...lead, 22, inF]);
      const blocks = blocksOf(sizes, inF, outF, false);
      blocks[2]!.weight.requiresGrad = true;
      blocks[2]!.bias.requiresGrad = true;
      const seed = new Float32Array(x.size / inF * outF);
      rng.fillNormal(seed);
      const frozen = new op.FrozenBlocks(blocks.slice(0, 2));
      try {
        const baked = run((xx, bb) => op.blockLinear(xx, bb, frozen), x, blocks, seed);
        const plain = run(op.blockLinear, x, blocks, seed);
        assert.deepEqual(baked.y, plain.y);
        assert.deepEqual(baked.grads, plain.grads);
        assert.deepEqual(baked.grads.map((g) => g !== null), [true, false, false, false, false, true, true]);
        // Reused: a second input through the same pack, still equal to the fed weights.
        const x2 = rand([...lead, 22, inF]);
        assert.deepEqual(op.blockLinear(x2, blocks, frozen).data, op.blockLinear(x2, blocks).data);
      } finally {
        frozen.dispose();
      }
    });
  }

  it('frozen blocks at CLAP\'s width (in = 512): the same numbers to rounding (the packed kernel sums in another order)', () => {
    // onnxruntime's kernel for a weight packed ahead accumulates the 512 inner products in another
    // order than the kernel that packs at every call: values agree to float rounding, not bit for
    // bit, once the inner dimension is this large.
    const x = rand([30, 512]);
    const blocks = blocksOf([10, 10, 10], 512, 64, false);
    blocks[2]!.weight.requiresGrad = true;
    blocks[2]!.bias.requiresGrad = true;
    const seed = new Float32Array(30 * 64);
    rng.fillNormal(seed);
    const frozen = new op.FrozenBlocks(blocks.slice(0, 2));
    try {
      const baked = run((xx, bb) => op.blockLinear(xx, bb, frozen), x, blocks, seed);
      const plain = run(op.blockLinear, x, blocks, seed);
      assertClose(baked.y, plain.y, 1e-5, 'value');
      baked.grads.forEach((g, i) => (g === null ? assert.equal(plain.grads[i], null) : assertClose(g, plain.grads[i]!, 1e-5, `gradient ${i}`)));
    } finally {
      frozen.dispose();
    }
  });

  it('frozen blocks: refuses other tensors, a trainable block, more frozen blocks than blocks, and use after dispose', () => {
    const x = rand([22, inF]);
    const blocks = blocksOf(sizes, inF, outF, false);
    const frozen = new op.FrozenBlocks(blocks.slice(0, 2));
    const other = blocksOf(sizes, inF, outF, false);
    assert.throws(() => op.blockLinear(x, [blocks[0]!, other[1]!, blocks[2]!], frozen), /block 1 is not the frozen block 1/);
    assert.throws(() => op.blockLinear(op.slice(x, 0, 0, 7), [blocks[0]!], frozen), /2 frozen blocks for 1 blocks/);
    blocks[1]!.weight.requiresGrad = true;
    assert.throws(() => op.blockLinear(x, blocks, frozen), /frozen block 1 requires a gradient/);
    blocks[1]!.weight.requiresGrad = false;
    assert.ok(op.blockLinear(x, blocks, frozen).size > 0);
    frozen.dispose();
    assert.throws(() => op.blockLinear(x, blocks, frozen), /disposed/);
    assert.throws(() => new op.FrozenBlocks([]), /no blocks/);
  });

  it('refuses blocks that do not tile the rows, and mismatched weights', () => {
    const x = rand([10, inF]);
    const [a, b] = blocksOf([4, 6], inF, outF);
    assert.throws(() => op.blockLinear(x, [a!]), /blocks cover 4 of the 10 rows/);
    assert.throws(() => op.blockLinear(x, [b!, a!]), /block 0 covers \[4, 10\); blocks must tile the 10 rows in order, next starting at 0/);
    assert.throws(() => op.blockLinear(x, [a!, { ...b!, weight: rand([outF, inF + 1]) }]), /block 1 has weight \[40, 25\]/);
    assert.throws(() => op.blockLinear(x, []), /no blocks/);
  });
});
