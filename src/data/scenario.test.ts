import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { repoRoot } from '../util/paths.js';
import { buildScenario, FEW_SHOT_SPLIT, resolveClassOrder, splitTasks, textInIncrementalOrder } from './scenario.js';

/** `perClass` samples of each of C classes, labels in blocks. */
function labels(C: number, perClass: number): Int32Array {
  return Int32Array.from({ length: C * perClass }, (_, i) => Math.floor(i / perClass));
}

test('reference class order equals the effective order of the reference code (cifar100 run 0 and 10)', () => {
  const orders = JSON.parse(readFileSync(join(repoRoot(), 'tests', 'fixtures', 'reference-data', 'classOrders.json'), 'utf8')) as Record<string, number[]>;
  assert.deepEqual(resolveClassOrder('reference', 100, 0), orders['cifar100/num_run=0']);
  assert.deepEqual(resolveClassOrder('reference', 100, 10), orders['cifar100/num_run=10']);
  const s = buildScenario(100, labels(100, 2), labels(100, 1), { classOrder: 'reference', split: { increment: 10 }, run: 0, rng: new Rng(0) });
  const order = orders['cifar100/num_run=0']!;
  assert.deepEqual(s.classOrder, order);
  // order[k] is the dataset label that becomes incremental label k.
  for (let k = 0; k < 100; k++) assert.equal(s.labelMap[order[k]!], k);
  assert.equal(s.trainLabels[2 * order[5]!], 5);
});

test('identity and explicit orders; an explicit order must be a permutation', () => {
  assert.deepEqual(resolveClassOrder('identity', 4, 0), [0, 1, 2, 3]);
  assert.deepEqual(resolveClassOrder([2, 0, 3, 1], 4, 0), [2, 0, 3, 1]);
  assert.throws(() => resolveClassOrder([0, 1, 1, 2], 4, 0), /label 1 twice/);
  assert.throws(() => resolveClassOrder([0, 1, 2], 4, 0), /lists 3 labels but the dataset has 4/);
  assert.throws(() => resolveClassOrder([0, 1, 2, 7], 4, 0), /entry 3 is 7/);
});

test('equal splits and base + increments', () => {
  const eq = splitTasks(100, { increment: 10 });
  assert.equal(eq.length, 10);
  assert.deepEqual(eq[3], { index: 3, classStart: 30, classEnd: 40 });
  const based = splitTasks(100, { base: 50, increment: 10 });
  assert.deepEqual(based.map((t) => t.classEnd - t.classStart), [50, 10, 10, 10, 10, 10]);
  assert.throws(() => splitTasks(100, { increment: 15 }), /not a multiple of 15/);
  assert.throws(() => splitTasks(10, { base: 11, increment: 1 }), /base task size/);
});

test('few-shot split: base 60 then 8 tasks of 5 classes with 5 shots each, drawn with the run generator', () => {
  const train = labels(100, 20);
  const opts = { classOrder: 'identity' as const, split: FEW_SHOT_SPLIT, run: 0 };
  const s = buildScenario(100, train, labels(100, 3), { ...opts, rng: new Rng(7) });
  assert.equal(s.tasks.length, 9);
  assert.equal(s.tasks[0]!.classEnd, 60);
  assert.equal(s.trainIndices[0]!.length, 60 * 20, 'the base task keeps all its samples');
  for (let t = 1; t < 9; t++) {
    assert.equal(s.trainIndices[t]!.length, 25);
    for (let c = s.tasks[t]!.classStart; c < s.tasks[t]!.classEnd; c++) {
      assert.equal([...s.trainIndices[t]!].filter((i) => s.trainLabels[i] === c).length, 5);
    }
  }
  const again = buildScenario(100, train, labels(100, 3), { ...opts, rng: new Rng(7) });
  assert.deepEqual(again.trainIndices, s.trainIndices, 'same seed, same shots');
  const other = buildScenario(100, train, labels(100, 3), { ...opts, rng: new Rng(8) });
  assert.notDeepEqual(other.trainIndices.slice(1), s.trainIndices.slice(1));
});

test('per-task train/test indices cover each task exactly; test order is shuffled', () => {
  const s = buildScenario(6, labels(6, 4), labels(6, 8), { classOrder: [5, 4, 3, 2, 1, 0], split: { increment: 3 }, run: 0, rng: new Rng(1) });
  assert.deepEqual([...s.trainIndices[0]!], [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
  const test0 = [...s.testIndices[0]!];
  assert.deepEqual([...test0].sort((a, b) => a - b), Array.from({ length: 24 }, (_, i) => 24 + i));
  assert.notDeepEqual(test0, [...test0].sort((a, b) => a - b));
  assert.throws(
    () => buildScenario(3, Int32Array.of(0, 1), Int32Array.of(0, 1, 2), { classOrder: 'identity', split: { increment: 1 }, run: 0, rng: new Rng(0) }),
    /class 2 has no training samples/,
  );
  assert.throws(
    () => buildScenario(3, Int32Array.of(0, 1), Int32Array.of(0, 1, 2), { classOrder: [2, 0, 1], split: { increment: 1 }, run: 0, rng: new Rng(0), classNames: ['cat', 'dog', 'owl'], source: 'feats/' }),
    /scenario: dataset class 2 "owl" has no training samples in feats\//,
  );
});

test('text features follow the class order', () => {
  const text = Float32Array.from({ length: 3 * 2 * 2 }, (_, i) => i); // [C=3, P=2, D=2]
  const out = textInIncrementalOrder(text, [2, 0, 1], 2, 2);
  assert.deepEqual([...out.subarray(0, 4)], [8, 9, 10, 11]);
  assert.deepEqual([...out.subarray(4, 8)], [0, 1, 2, 3]);
});
