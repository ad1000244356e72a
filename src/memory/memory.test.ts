import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import type { Prediction } from '../methods/method.js';
import { candidateLogits } from './candidateScores.js';
import { ExemplarMemory, perClassQuota, type NewClass } from './memory.js';
import { SCORED_SELECTOR_NAMES } from './scoredSelectors.js';
import { firstSelector, getSelector, randomSelector, SELECTOR_NAMES, SELECTORS, type Selector } from './selectors.js';

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
  const pick = (sel: Selector, m: number, rng: Rng): Int32Array => sel.rank({ candidates, label: 0, m, rng });
  assert.deepEqual([...pick(firstSelector, 3, new Rng(0))], [100, 101, 102]);
  const a = pick(randomSelector, 4, new Rng(5));
  const b = pick(randomSelector, 4, new Rng(5));
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, 4);
  assert.ok([...a].every((x) => x >= 100 && x < 110));
  // Uniform: over many draws every candidate is picked about m / n of the time.
  const hits = new Array<number>(10).fill(0);
  const rng = new Rng(9);
  for (let r = 0; r < 2000; r++) for (const x of pick(randomSelector, 4, rng)) hits[x - 100]!++;
  for (const h of hits) assert.ok(Math.abs(h / 2000 - 0.4) < 0.05, `pick rate ${h / 2000}`);
  assert.throws(() => getSelector('herd'), /must be one of \[random, first, herding, entropy, distance, energy, variance, var-entropy\]/);
});

test('the selector table is the one list of names: each entry is named by its key, the scored ones read logits', () => {
  for (const name of SELECTOR_NAMES) assert.equal(getSelector(name).name, name);
  assert.deepEqual(SELECTOR_NAMES.filter((n) => SELECTORS[n].needsLogits), SCORED_SELECTOR_NAMES);
  // Only own keys: an inherited property of the table is not a selector.
  assert.throws(() => getSelector('toString'), /unknown exemplar selector "toString": must be one of \[random, first, herding/);
});

test('memory state round-trips through JSON', () => {
  const mem = new ExemplarMemory({ kind: 'total', size: 40 });
  mem.update(task(0, 2, 30), 2, randomSelector, new Rng(2));
  const copy = ExemplarMemory.fromJSON(JSON.parse(JSON.stringify(mem.toJSON())));
  assert.deepEqual(copy.indices(), mem.indices());
});

// ---------------------------------------------------------------------------------------------
// Score-based selectors through the memory update, with the logits of a tiny model.

/**
 * A tiny model on features [a, b, s] (D = 3, C = 2 classes, T = 3 passes): pass r gives the logits
 * [a + s u_r, b - s u_r] with u = (1, -1, 0), so the mean logits are exactly [a, b] and s sets
 * how much the passes disagree. Records the size of every batch it predicts.
 */
const U = [1, -1, 0];
function tinyModel(): { predict: (f: Float32Array, n: number) => Prediction; batches: number[] } {
  const batches: number[] = [];
  const predict = (f: Float32Array, n: number): Prediction => {
    batches.push(n);
    const logits = new Float32Array(3 * n * 2);
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < n; i++) {
        const [a, b, s] = [f[i * 3]!, f[i * 3 + 1]!, f[i * 3 + 2]!];
        logits[(r * n + i) * 2] = a + s * U[r]!;
        logits[(r * n + i) * 2 + 1] = b - s * U[r]!;
      }
    }
    return { logits, samples: 3, n, classes: 2 };
  };
  return { predict, batches };
}

/** Candidates 100..109 (label 0) and 200..209 (label 1) with random [a, b, s] features. */
function tinyClasses(): { classes: NewClass[]; feats: Map<number, [number, number, number]> } {
  const rng = new Rng(11);
  const feats = new Map<number, [number, number, number]>();
  const classes = [0, 1].map((label) => {
    const candidates = Int32Array.from({ length: 10 }, (_, j) => 100 * (label + 1) + j);
    for (const c of candidates) feats.set(c, [Math.fround(4 * rng.uniform()), Math.fround(4 * rng.uniform()), Math.fround(2 * rng.uniform())]);
    return { label, candidates };
  });
  return { classes, feats };
}

const softmax2 = (x: number, y: number): [number, number] => {
  const m = Math.max(x, y);
  const ex = Math.exp(x - m);
  const ey = Math.exp(y - m);
  return [ex / (ex + ey), ey / (ex + ey)];
};
/** The per-sample quantities each selector ranks by, computed directly from [a, b, s]. */
function direct([a, b, s]: [number, number, number], label: number) {
  const passes = U.map((u) => [a + s * u, b - s * u] as const);
  const entropy = softmax2(a, b).reduce((h, p) => h - p * Math.log(p), 0);
  const energy = passes.reduce((e, [x, y]) => e + Math.max(x, y) + Math.log1p(Math.exp(-Math.abs(x - y))), 0) / 3;
  const probs = passes.map(([x, y]) => softmax2(x, y));
  let variance = 0;
  for (const c of [0, 1]) {
    const mean = probs.reduce((m, p) => m + p[c]!, 0) / 3;
    variance += probs.reduce((v, p) => v + (p[c]! - mean) ** 2, 0) / 3;
  }
  return { distance: label === 0 ? a : b, entropy, energy, variance };
}

/** Candidates sorted by `key` (ascending unless `descending`), first m. */
function expectedTop(nc: NewClass, m: number, key: (c: number) => number, descending = false): number[] {
  return [...nc.candidates].sort((x, y) => (descending ? key(y) - key(x) : key(x) - key(y))).slice(0, m);
}

test('score-based selectors keep the right samples through the memory update (tiny model, 3 passes, batches of 4)', () => {
  const m = 3;
  for (const name of ['distance', 'entropy', 'energy', 'variance', 'var-entropy', 'herding'] as const) {
    const { classes, feats } = tinyClasses();
    const model = tinyModel();
    const featuresOf = (idx: Int32Array): Float32Array => Float32Array.from([...idx].flatMap((i) => feats.get(i)!));
    for (const nc of classes) nc.logits = candidateLogits(model.predict, featuresOf, nc.candidates, 4);
    // Each class's 10 candidates are predicted on their own, in batches of 4, 4 and 2.
    assert.deepEqual(model.batches, [4, 4, 2, 4, 4, 2], name);
    const mem = new ExemplarMemory({ kind: 'perClass', size: m });
    mem.update(classes, 2, getSelector(name), new Rng(0));
    for (const nc of classes) {
      const q = (c: number) => direct(feats.get(c)!, nc.label);
      const kept = [...mem.exemplarsOf(nc.label)];
      let want: number[];
      if (name === 'distance') want = expectedTop(nc, m, (c) => q(c).distance);
      else if (name === 'entropy') want = expectedTop(nc, m, (c) => q(c).entropy, true);
      else if (name === 'energy') want = expectedTop(nc, m, (c) => q(c).energy);
      else if (name === 'variance') want = expectedTop(nc, m, (c) => q(c).variance);
      else if (name === 'var-entropy') {
        // Average of the rank by variance (lowest first) and by entropy (highest first).
        const rankOf = (order: number[]) => new Map(order.map((c, r) => [c, r]));
        const byVar = rankOf(expectedTop(nc, 10, (c) => q(c).variance));
        const byEnt = rankOf(expectedTop(nc, 10, (c) => q(c).entropy, true));
        want = expectedTop(nc, m, (c) => (byVar.get(c)! + byEnt.get(c)!) / 2 + c * 1e-9);
      } else {
        // Herding's first pick is the sample whose phi = normalize(mean logits) is closest to the mean phi.
        const phi = (c: number): number[] => {
          const [a, b] = feats.get(c)!;
          const norm = Math.hypot(a, b);
          return [a / norm, b / norm];
        };
        const mu = [0, 1].map((k) => [...nc.candidates].reduce((s, c) => s + phi(c)[k]!, 0) / 10);
        want = expectedTop(nc, 1, (c) => Math.hypot(phi(c)[0]! - mu[0]!, phi(c)[1]! - mu[1]!));
        assert.equal(kept.length, m);
        assert.equal(new Set(kept).size, m);
        kept.length = 1;
      }
      assert.deepEqual(kept, want, `${name}, class ${nc.label}`);
    }
  }
});

test('a score-based selector without logits fails clearly', () => {
  const mem = new ExemplarMemory({ kind: 'perClass', size: 2 });
  const nc = { label: 0, candidates: Int32Array.of(1, 2, 3) };
  assert.throws(() => mem.update([nc], 1, getSelector('entropy'), new Rng(0)), /"entropy" needs the logits of the candidates of class 0/);
  assert.equal(getSelector('entropy').needsLogits, true);
  assert.equal(getSelector('random').needsLogits, false);
});
