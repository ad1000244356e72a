import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { ExemplarMemory, perClassQuota, type NewClass } from './memory.js';
import { firstSelector, getSelector, randomSelector } from './selectors.js';

/** Task t of `perTask` classes, `perClass` candidates each (sample index = class * 1000 + j). */
function task(t: number, perTask: number, perClass: number): NewClass[] {
  return Array.from({ length: perTask }, (_, j) => {
    const label = t * perTask + j;
    return { label, candidates: Int32Array.from({ length: perClass }, (_, i) => label * 1000 + i) };
  });
}

test('CIFAR-style total budget: 2000 over 10 tasks of 10 classes', () => {
  const mem = new ExemplarMemory({ kind: 'total', size: 2000 });
  const rng = new Rng(0);
  const perClass: number[] = [];
  for (let t = 0; t < 10; t++) {
    mem.update(task(t, 10, 500), (t + 1) * 10, randomSelector, rng);
    const sizes = mem.classSizes().map(([, n]) => n);
    assert.ok(sizes.every((n) => n === sizes[0]), 'every class holds the same number');
    perClass.push(sizes[0]!);
    assert.equal(mem.size, sizes[0]! * (t + 1) * 10);
  }
  assert.deepEqual(perClass, [200, 100, 66, 50, 40, 33, 28, 25, 22, 20]);
});

test('per-class budget keeps 20 per class; small classes keep what they have', () => {
  const mem = new ExemplarMemory({ kind: 'perClass', size: 20 });
  mem.update(task(0, 3, 50), 3, randomSelector, new Rng(1));
  mem.update(task(1, 3, 5), 6, randomSelector, new Rng(1));
  assert.deepEqual(mem.classSizes(), [[0, 20], [1, 20], [2, 20], [3, 5], [4, 5], [5, 5]]);
  assert.equal(perClassQuota({ kind: 'perClass', size: 20 }, 200), 20);
  assert.equal(perClassQuota({ kind: 'total', size: 2000 }, 30), 66);
});

test('old classes shrink by truncation: the first m of the stored ranking survive', () => {
  const mem = new ExemplarMemory({ kind: 'total', size: 12 });
  const rng = new Rng(3);
  mem.update(task(0, 2, 20), 2, randomSelector, rng); // 6 per class
  const before = [...mem.exemplarsOf(0)];
  assert.equal(before.length, 6);
  mem.update(task(1, 2, 20), 4, randomSelector, rng); // 3 per class
  assert.deepEqual([...mem.exemplarsOf(0)], before.slice(0, 3));
  assert.equal(mem.indices().length, 12);
});

test('selectors: first keeps dataset order, random is a seeded uniform subset', () => {
  const candidates = Int32Array.from({ length: 10 }, (_, i) => 100 + i);
  assert.deepEqual([...firstSelector({ candidates, m: 3, rng: new Rng(0) })], [100, 101, 102]);
  const a = randomSelector({ candidates, m: 4, rng: new Rng(5) });
  const b = randomSelector({ candidates, m: 4, rng: new Rng(5) });
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, 4);
  assert.ok([...a].every((x) => x >= 100 && x < 110));
  // Uniform: over many draws every candidate is picked about m / n of the time.
  const hits = new Array<number>(10).fill(0);
  const rng = new Rng(9);
  for (let r = 0; r < 2000; r++) for (const x of randomSelector({ candidates, m: 4, rng })) hits[x - 100]!++;
  for (const h of hits) assert.ok(Math.abs(h / 2000 - 0.4) < 0.05, `pick rate ${h / 2000}`);
  assert.throws(() => getSelector('herd'), /must be one of \[random, first\]/);
});

test('memory state round-trips through JSON', () => {
  const mem = new ExemplarMemory({ kind: 'total', size: 40 });
  mem.update(task(0, 2, 30), 2, randomSelector, new Rng(2));
  const copy = ExemplarMemory.fromJSON(JSON.parse(JSON.stringify(mem.toJSON())));
  assert.deepEqual(copy.indices(), mem.indices());
});
