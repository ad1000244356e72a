import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { auroc } from '../eval/novelty.js';
import { createMethod } from '../methods/registry.js';
import { resolveRunConfig } from './config.js';
import type { PredictedBatches } from './evaluate.js';
import { methodSetupFor, runClassIncremental, type LoopResult } from './loop.js';
import { noveltyMeans, noveltyRecords, ROC_POINTS } from './novelty.js';

const dataset = generateSyntheticDataset(SYNTHETIC_TINY); // 10 classes, 10 test images each

/** Three tasks (4, 3 and 3 classes), short training. */
async function tinyRun(method: string, extra: Record<string, unknown> = {}): Promise<LoopResult> {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', baseClasses: 4, increment: 3, method, epochs: 2, finetuneEpochs: 1, ...extra });
  const context = methodSetupFor(config, dataset);
  const m = await createMethod(method, context);
  return runClassIncremental(config, dataset, m, {});
}

test('novelty detection end to end: one entry per score and step but the last, metrics in [0, 1], mcVariance only for clap', async () => {
  for (const method of ['clap', 'zeroshot', 'clap-deterministic']) {
    const r = await tinyRun(method);
    const scores = method === 'clap' ? ['energy', 'msp', 'entropy', 'mcVariance'] : ['energy', 'msp', 'entropy'];
    assert.deepEqual(r.novelty.map((n) => `${n.step} ${n.score}`), [0, 1].flatMap((s) => scores.map((x) => `${s} ${x}`)), method);
    for (const n of r.novelty) {
      for (const v of [n.auroc, n.aupr, n.fpr95]) assert.ok(v >= 0 && v <= 1, `${method} ${n.score}: ${v}`);
      assert.ok(n.roc.fpr.length >= 2 && n.roc.fpr.length <= ROC_POINTS);
      assert.deepEqual([n.roc.fpr[0], n.roc.tpr[0], n.roc.fpr.at(-1), n.roc.tpr.at(-1)], [0, 0, 1, 1]);
    }
    const means = noveltyMeans(r.novelty);
    assert.deepEqual(Object.keys(means), scores);
    const energy = r.novelty.filter((n) => n.score === 'energy');
    assert.ok(Math.abs(means.energy!.auroc - (energy[0]!.auroc + energy[1]!.auroc) / 2) < 1e-15);
  }
});

test('turning detection on changes no accuracy (clap, mixed batches)', async () => {
  const on = await tinyRun('clap', { novelty: true });
  const off = await tinyRun('clap', { novelty: false });
  assert.equal(off.novelty.length, 0);
  assert.deepEqual(on.accuracyMatrix, off.accuracyMatrix);
  assert.deepEqual(on.ece, off.ece);
});

test('each score separates the known samples from the novel ones wherever they sat in the batches', () => {
  // Two seen classes; samples 0-2 are known, 3-5 novel; batches mix them in any order.
  const logitsOf: Record<number, [number, number]> = { 0: [9, 0], 1: [7, 0], 2: [0, 5], 3: [8, 7], 4: [0, 0.2], 5: [0.3, 0.1] };
  const batch = (idx: number[]) => ({ indices: Int32Array.from(idx), meanLogits: Float32Array.from(idx.flatMap((i) => logitsOf[i]!)), mcVariance: null });
  const predicted: PredictedBatches = { classes: 2, samples: 1, batches: [batch([0, 3, 1]), batch([4, 2, 5])] };
  const records = noveltyRecords(4, predicted, (i) => i < 3);
  assert.deepEqual(records.map((r) => r.score), ['energy', 'msp', 'entropy'], 'no mcVariance with T = 1');
  for (const r of records) assert.equal(r.step, 4);
  const lse = ([a, b]: [number, number]): number => Math.max(a, b) + Math.log1p(Math.exp(-Math.abs(a - b)));
  const msp = (l: [number, number]): number => Math.exp(Math.max(...l) - lse(l));
  const negEntropy = (l: [number, number]): number => l.reduce((h, x) => h + Math.exp(x - lse(l)) * (x - lse(l)), 0);
  for (const [score, f] of [['energy', lse], ['msp', msp], ['entropy', negEntropy]] as const) {
    const known = [0, 1, 2].map((i) => f(logitsOf[i]!));
    const novel = [3, 4, 5].map((i) => f(logitsOf[i]!));
    const r = records.find((x) => x.score === score)!;
    assert.ok(Math.abs(r.auroc - auroc(known, novel)) < 1e-9, `${score}: ${r.auroc} vs ${auroc(known, novel)}`);
  }
  // Sample 3 (novel, logits [8, 7]) has a higher energy than known samples 1 and 2, so energy
  // orders 7 of the 9 known-novel pairs right; its softmax is flat, so msp is perfect.
  assert.equal(records.find((x) => x.score === 'energy')!.auroc, 7 / 9);
  assert.equal(records.find((x) => x.score === 'msp')!.auroc, 1);
});
