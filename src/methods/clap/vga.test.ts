import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mul, sum } from '../../engine/ops/index.js';
import { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { createVga, taskBlockMask, tokenRowOfClass, visualGuidedFeatures } from './vga.js';

const I = -Infinity;
const tasks = [{ classStart: 0, classEnd: 2 }, { classStart: 2, classEnd: 5 }];

test('taskBlockMask for tasks [0,2), [2,5) is block-diagonal with 0 inside and -Infinity outside', () => {
  const m = taskBlockMask(tasks);
  assert.deepEqual(m.shape, [5, 5]);
  assert.deepEqual(Array.from(m.data), [
    0, 0, I, I, I,
    0, 0, I, I, I,
    I, I, 0, 0, 0,
    I, I, 0, 0, 0,
    I, I, 0, 0, 0,
  ]);
});

test('taskBlockMask with task tokens lets each class and token see only its task and its token', () => {
  const m = taskBlockMask(tasks, { taskTokens: true });
  assert.deepEqual(m.shape, [7, 7]);
  assert.deepEqual(Array.from(m.data), [
    0, 0, I, I, I, 0, I,
    0, 0, I, I, I, 0, I,
    I, I, 0, 0, 0, I, 0,
    I, I, 0, 0, 0, I, 0,
    I, I, 0, 0, 0, I, 0,
    0, 0, I, I, I, 0, I,
    I, I, 0, 0, 0, I, 0,
  ]);
  assert.deepEqual(Array.from(tokenRowOfClass(tasks)), [5, 5, 6, 6, 6]);
});

test('taskBlockMask rejects non-contiguous tasks', () => {
  assert.throws(() => taskBlockMask([{ classStart: 0, classEnd: 2 }, { classStart: 3, classEnd: 5 }]), /starting at 2/);
});

test('masked VGA gives exactly zero gradient from one task block to the queries of another', () => {
  const d = 4;
  const rng = new Rng(3);
  const vga = createVga(d, { heads: 1, ffDim: 8, dropout: 0.1 }, rng);
  const t = new Tensor(new Float32Array(5 * d), [5, d], true);
  rng.fillNormal(t.data);
  const f = new Tensor(new Float32Array(3 * d), [3, d]);
  rng.fillNormal(f.data);
  const weights = new Tensor(new Float32Array(5 * d), [5, d]);
  rng.fillNormal(weights.data);
  weights.data.fill(0, 2 * d); // probe only the outputs of task 0 (rows 0, 1)
  for (const training of [false, true]) {
    t.grad = null;
    const { h } = visualGuidedFeatures(vga, t, f, { mask: taskBlockMask(tasks), training, rng, tokens: null });
    sum(mul(h, weights)).backward();
    const g = t.grad!;
    assert.ok(g.subarray(0, 2 * d).some((v) => v !== 0), 'task 0 queries get a gradient');
    assert.deepEqual(Array.from(g.subarray(2 * d)), new Array(3 * d).fill(0), `training=${training}`);
  }
});

test('without the mask the same probe does reach the other block (the test above is sensitive)', () => {
  const d = 4;
  const rng = new Rng(3);
  const vga = createVga(d, { heads: 1, ffDim: 8, dropout: 0 }, rng);
  const t = new Tensor(new Float32Array(5 * d), [5, d], true);
  rng.fillNormal(t.data);
  const f = new Tensor(new Float32Array(3 * d), [3, d]);
  rng.fillNormal(f.data);
  const allZero = new Tensor(new Float32Array(25), [5, 5]);
  const { h } = visualGuidedFeatures(vga, t, f, { mask: allZero, training: false, rng, tokens: null });
  sum(slice01(h)).backward();
  assert.ok(t.grad!.subarray(2 * d).some((v) => v !== 0));
});

function slice01(h: Tensor): Tensor {
  const w = new Float32Array(h.size);
  w.fill(1, 0, 2 * h.shape[1]!);
  return mul(h, new Tensor(w, h.shape));
}
