import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { Rng } from '../engine/random.js';
import { createMethod } from '../methods/registry.js';
import { resolveRunConfig, type EvalBatching } from './config.js';
import { ensemblePredictor, evalBatches, evaluateStep, predictBatches } from './evaluate.js';
import { methodSetupFor, runClassIncremental, scenarioFor } from './loop.js';

const dataset = generateSyntheticDataset(SYNTHETIC_TINY); // 10 classes, 40 train / 10 test each

const groups = [Int32Array.from([0, 1, 2, 3, 4]), Int32Array.from([10, 11, 12]), Int32Array.from([20, 21, 22, 23])];
const taskOfSample = (i: number): number => Math.floor(i / 10);

test('per-task batches hold one task each; mixed is a seeded shuffle across tasks; single is one image per batch', () => {
  const perTask = evalBatches('per-task', groups, 2, new Rng(0));
  assert.deepEqual(perTask.map((b) => [...b.indices]), [[0, 1], [2, 3], [4], [10, 11], [12], [20, 21], [22, 23]]);

  const mixed = evalBatches('mixed', groups, 4, new Rng(7));
  assert.deepEqual(mixed.map((b) => b.indices.length), [4, 4, 4]);
  const flat = mixed.flatMap((b) => [...b.indices]);
  assert.deepEqual([...flat].sort((a, b) => a - b), groups.flatMap((g) => [...g]), 'every sample exactly once');
  assert.ok(mixed.some((b) => new Set([...b.indices].map(taskOfSample)).size > 1), 'some batch mixes tasks');
  assert.deepEqual(evalBatches('mixed', groups, 4, new Rng(7)), mixed, 'same seed, same order');
  assert.notDeepEqual(evalBatches('mixed', groups, 4, new Rng(8)).flatMap((b) => [...b.indices]), flat);

  const single = evalBatches('single', groups, 32, new Rng(0));
  assert.equal(single.length, 12);
  assert.ok(single.every((b) => b.indices.length === 1));
});

test('same trained clap model, same data: single is invariant to shuffling the test set, per-task and mixed are not', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, novelty: false, epochs: 2, finetuneEpochs: 1 });
  const context = methodSetupFor(config, dataset);
  const method = await createMethod('clap', context);
  await runClassIncremental(config, dataset, method, {});
  const scenario = scenarioFor(config, dataset);
  const taskOf = new Int32Array(dataset.numClasses);
  for (const t of scenario.tasks) taskOf.fill(t.index, t.classStart, t.classEnd);
  // The test set in another order: every task's samples permuted.
  const shuffleRng = new Rng(123);
  const shuffled = scenario.testIndices.map((g) => {
    const copy = Int32Array.from(g);
    shuffleRng.shuffleInPlace(copy);
    return copy;
  });

  /** Per test sample: the predicted label and the mean logits, under `mode` and `order`. */
  const predictAll = (mode: EvalBatching, order: Int32Array[], orderSeed: number) => {
    // The same Monte-Carlo ensemble every time (one noise stream state), so only batching differs.
    const predict = ensemblePredictor(method, new Rng(99));
    const predicted = predictBatches(predict, dataset.test, evalBatches(mode, order, 32, new Rng(orderSeed)));
    const logits = new Map<number, number[]>();
    for (const b of predicted.batches) b.indices.forEach((idx, i) => logits.set(idx, [...b.meanLogits.subarray(i * predicted.classes, (i + 1) * predicted.classes)]));
    return { predictions: evaluateStep(predicted, scenario.testLabels, taskOf, 2).predictions, logits };
  };
  const differing = (a: Map<number, number[]>, b: Map<number, number[]>): number => [...a.keys()].filter((k) => a.get(k)!.some((v, c) => v !== b.get(k)![c])).length;

  const single = [predictAll('single', scenario.testIndices, 1), predictAll('single', shuffled, 2)];
  assert.deepEqual(single[0]!.predictions, single[1]!.predictions);
  assert.equal(differing(single[0]!.logits, single[1]!.logits), 0, 'single: bit-identical logits in any order');

  const perTask = [predictAll('per-task', scenario.testIndices, 1), predictAll('per-task', shuffled, 1)];
  const mixed = [predictAll('mixed', scenario.testIndices, 1), predictAll('mixed', scenario.testIndices, 2)];
  assert.ok(differing(perTask[0]!.logits, perTask[1]!.logits) > 50, 'per-task: batch composition changes the logits');
  assert.ok(differing(mixed[0]!.logits, mixed[1]!.logits) > 50, 'mixed: a different order changes the logits');
  // Evaluation draws no training randomness: predicting again gives the same answer.
  assert.deepEqual(predictAll('per-task', scenario.testIndices, 1).predictions, perTask[0]!.predictions);
});

test('the batching mode and detection leave training untouched (evaluation noise and orders have their own streams)', async () => {
  const losses: number[][] = [];
  for (const extra of [{ evalBatching: 'per-task', novelty: false }, { evalBatching: 'single', novelty: true }, { evalBatching: 'mixed', novelty: true }] as const) {
    const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, epochs: 1, finetuneEpochs: 1, ...extra });
    const context = methodSetupFor(config, dataset);
    const method = await createMethod('clap', context);
    const r = await runClassIncremental(config, dataset, method, {});
    losses.push(r.steps.flatMap((s) => [s.loss.train!, s.loss.finetune ?? 0]));
  }
  assert.deepEqual(losses[1], losses[0]);
  assert.deepEqual(losses[2], losses[0]);
});

test('reliability bins count every test sample of the seen tasks, and their ECE is the dataset-level ECE', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, method: 'zeroshot' });
  const context = methodSetupFor(config, dataset);
  const method = await createMethod('zeroshot', { ...context, samples: 1, batchSize: 32 });
  const r = await runClassIncremental(config, dataset, method, {});
  assert.deepEqual(r.reliability.map((x) => x.step), [0, 1]);
  r.reliability.forEach(({ bins }, t) => {
    assert.equal(bins.length, 15);
    const n = bins.reduce((a, b) => a + b.count, 0);
    assert.equal(n, 50 * (t + 1));
    const e = bins.reduce((a, b) => a + (b.count / n) * Math.abs(b.accuracy - b.meanConfidence), 0);
    assert.ok(Math.abs(e - r.ece.dataset[t]!) < 1e-12);
    const acc = bins.reduce((a, b) => a + b.count * b.accuracy, 0) / n;
    const mean = r.accuracyMatrix[t]!.reduce((a, b) => a + b, 0) / (t + 1);
    assert.ok(Math.abs(acc - mean) < 1e-9, 'bin accuracies add up to the accuracy (tasks of equal size)');
  });
});
