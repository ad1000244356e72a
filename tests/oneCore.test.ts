import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClassifier } from '../src/api/classifier.js';
import { unitRows } from '../src/api/inputs.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../src/data/synthetic.js';
import type { FeaturesDataset, FeaturesSplit } from '../src/data/types.js';
import { resolveRunConfig } from '../src/run/config.js';
import { methodSetupFor, runClassIncremental } from '../src/run/loop.js';
import { getMethodEntry, type MethodName } from '../src/methods/registry.js';

/**
 * The run loop and `createClassifier().learn` drive the same task step (src/cl/taskStep.ts), the
 * same method contract and the same generator streams. So on a benchmark both can express exactly
 * (one view per image; train rows class by class; unit-norm features that the classifier's own
 * normalisation leaves unchanged) they must learn the same model: same losses, same accuracies.
 */

/** unitRows until it changes nothing: a float32 fixed point, so the classifier's renormalisation is the identity. */
function unitFixedPoint(data: Float32Array, dim: number): Float32Array {
  let x = data;
  for (let k = 0; k < 10; k++) {
    const y = unitRows(x, dim, 'fixture');
    if (y.every((v, i) => v === x[i])) return y;
    x = y;
  }
  throw new Error('no float32 fixed point of unitRows within 10 rounds');
}

/** The split with its rows in class order (stable within a class) and unit-norm fixed-point features. */
function classOrdered(split: FeaturesSplit): FeaturesSplit {
  const D = split.dim;
  const order = Array.from({ length: split.n }, (_, i) => i).sort((a, b) => split.labels[a]! - split.labels[b]! || a - b);
  const features = new Float32Array(split.features.length);
  order.forEach((i, r) => features.set(split.features.subarray(i * D, (i + 1) * D), r * D));
  return { ...split, features: unitFixedPoint(features, D), labels: Int32Array.from(order, (i) => split.labels[i]!) };
}

const raw = generateSyntheticDataset({ ...SYNTHETIC_TINY, views: 1 });
const world: FeaturesDataset = { ...raw, train: classOrdered(raw.train), test: classOrdered(raw.test), text: unitFixedPoint(raw.text, raw.manifest.dim) };
const D = world.manifest.dim;
const P = world.numTemplates;
const names = world.manifest.classNames;

/** Rows of class c in `split`, [n, D], in split order. */
function rowsOf(split: FeaturesSplit, c: number): Float32Array {
  const rows: number[] = [];
  for (let i = 0; i < split.n; i++) if (split.labels[i] === c) rows.push(i);
  const out = new Float32Array(rows.length * D);
  rows.forEach((i, r) => out.set(split.features.subarray(i * D, (i + 1) * D), r * D));
  return out;
}

// RanPAC with M = 48 (its default 10000 is a benchmark's size, not a unit test's).
const METHODS: [MethodName, Record<string, unknown>][] = [['clap', {}], ['clip-adapter', {}], ['zeroshot', {}], ['simplecil', {}], ['ranpac', { M: 48 }], ['rapf', {}]];
for (const [method, methodOptions] of METHODS) {
  test(`${method}: the run loop and the library's learn() give the same losses and accuracy matrix over three tasks`, async () => {
    // Train rows must come class by class for the two training sets to list the same rows in the same order.
    for (let i = 1; i < world.train.n; i++) assert.ok(world.train.labels[i - 1]! <= world.train.labels[i]!, 'fixture: train rows sorted by class');
    const config = resolveRunConfig({
      syntheticPreset: 'tiny', method, increment: 2, classOrder: 'identity', evalBatching: 'single', novelty: false,
      memoryKind: 'total', memorySize: 12, batchSize: 16, samples: 4, seed: 3, methodOptions,
      calibration: 'none', // the library learns from every example it is given: no hold-out
    });
    const looped = await getMethodEntry(method).create(methodSetupFor(config, world));
    const loop = await runClassIncremental(config, world, looped, { untilTask: 2 });
    assert.equal(loop.accuracyMatrix.length, 3);

    const clf = await createClassifier({
      dim: D, logitScale: world.manifest.logitScale, method, samples: 4, batchSize: 16,
      memory: { kind: 'total', size: 12 }, selector: config.selector, seed: 3, options: methodOptions,
    });
    const matrix: number[][] = [];
    for (let t = 0; t < 3; t++) {
      const classes = [2 * t, 2 * t + 1].map((c) => ({ name: names[c]!, features: rowsOf(world.train, c), textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) }));
      const learned = await clf.learn({ classes });
      assert.deepEqual(learned.loss, loop.steps[t]!.loss, `task ${t}: same losses`);
      assert.equal(learned.iterations.train, loop.steps[t]!.iterations.train);
      assert.equal(learned.memorySize, loop.steps[t]!.memorySize);
      const row: number[] = [];
      for (let j = 0; j <= t; j++) {
        let correct = 0;
        let n = 0;
        for (const c of [2 * j, 2 * j + 1]) {
          const preds = await clf.predict(rowsOf(world.test, c));
          for (const p of preds) correct += p.top[0]!.label === names[c] ? 1 : 0;
          n += preds.length;
        }
        row.push(correct / n);
      }
      matrix.push(row);
    }
    await clf.dispose();
    assert.deepEqual(matrix, loop.accuracyMatrix);
    if (method === 'clap' || method === 'clip-adapter') assert.ok(loop.steps[0]!.loss.train !== null, 'the check covers training');
  });
}
