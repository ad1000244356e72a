import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { warmupCosineLr } from '../engine/optim.js';
import type { Batch, Method, MethodState, MethodTraits, Phase, Prediction, StepAt, StepResult, TaskClasses, TaskData, TaskInfo } from '../methods/method.js';
import { resolveRunConfig } from './config.js';
import { runClassIncremental, scenarioFor } from './loop.js';

/** A method that learns nothing and records what the loop feeds it. */
class RecordingMethod implements Method {
  readonly name = 'recorder';
  traits: MethodTraits = { sgd: { train: { epochs: 2, lr: 0.1, shape: 'warmup-cosine' }, finetune: { epochs: 1, lr: 0.01, shape: 'cosine' } }, replay: true };
  phase: Phase = 'train';
  seen = 0;
  calls: { task: number; phase: Phase; lr: number; size: number; labels: number[]; features: Float32Array }[] = [];
  task = -1;
  texts: TaskClasses[] = [];
  beginTask(t: TaskInfo, classes: TaskClasses): void { this.task = t.index; this.seen = t.classEnd; this.texts.push(classes); }
  setPhase(p: Phase): void { this.phase = p; }
  trainStep(b: Batch, at: StepAt): StepResult {
    this.calls.push({ task: this.task, phase: this.phase, lr: at.lr, size: b.size, labels: [...b.labels], features: b.features });
    return { loss: 1, parts: {} };
  }
  predict(_f: Float32Array, n: number): Prediction {
    // Always predicts class 0 with a flat-ish softmax.
    const logits = new Float32Array(n * this.seen);
    for (let i = 0; i < n; i++) logits[i * this.seen] = 1;
    return { logits, samples: 1, n, classes: this.seen };
  }
  endTask(_t?: TaskInfo): void {}
  saveState(): MethodState { return { tensors: [], meta: {} }; }
  loadState(): void {}
  namedParameters() { return []; }
}

/** No SGD at all: fits on each step's training rows (as a prototype method would) and records them. */
class FittingMethod extends RecordingMethod {
  override traits: MethodTraits = { sgd: { train: null, finetune: null }, replay: true };
  fits: { task: number; rows: number; labels: number[] }[] = [];
  fit(data: TaskData): void {
    this.fits.push({ task: this.task, rows: data.indices.length, labels: [...new Set(Array.from(data.indices, (i) => data.labels[i]!))].sort((a, b) => a - b) });
  }
}

const dataset = generateSyntheticDataset(SYNTHETIC_TINY); // 10 classes, 40 train / 10 test each, 2 views

test('training set = memory + new task; warm-up then cosine over S = epochs * ceil(N / B); finetuning on the memory', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, memorySize: 20, batchSize: 32, classOrder: 'identity', calibration: 'none' }); // every training sample trains
  const m = new RecordingMethod();
  const r = await runClassIncremental(config, dataset, m);

  // Task 0: 200 samples -> ceil(200 / 32) = 7 iterations per epoch, last batch 200 - 6 * 32 = 8.
  const t0 = m.calls.filter((c) => c.task === 0);
  assert.equal(t0.length, 14);
  assert.deepEqual(t0.slice(0, 7).map((c) => c.size), [32, 32, 32, 32, 32, 32, 8]);
  const S = 14;
  const W = Math.floor(0.3 * S);
  assert.equal(W, 4);
  t0.forEach((c, k) => assert.ok(Math.abs(c.lr - warmupCosineLr(k, S, 0.1)) < 1e-12));
  for (let k = 0; k < W; k++) assert.ok(Math.abs(t0[k]!.lr - (0.1 * (k + 1)) / (W + 1)) < 1e-12, 'linear warm-up');
  assert.equal(t0[W]!.lr, 0.1, 'the cosine starts at lr after W warm-up iterations');
  assert.equal(m.calls.filter((c) => c.task === 0 && c.phase === 'finetune').length, 0, 'no finetuning after the first task');

  // Task 1: memory of 5 classes x floor(20 / 5) = 4 exemplars + 200 new samples.
  const t1 = m.calls.filter((c) => c.task === 1 && c.phase === 'train');
  assert.equal(t1.slice(0, 7).reduce((n, c) => n + c.size, 0), 220);
  const oldLabels = t1.slice(0, 7).flatMap((c) => c.labels).filter((y) => y < 5);
  assert.equal(oldLabels.length, 20);
  // Finetuning: memory only (10 classes x 2 = 20 samples), one epoch, cosine without warm-up at 0.01.
  const ft = m.calls.filter((c) => c.task === 1 && c.phase === 'finetune');
  assert.equal(ft.length, 1);
  assert.equal(ft[0]!.size, 20);
  assert.equal(ft[0]!.lr, 0.01);
  assert.deepEqual([...new Set(ft[0]!.labels)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

  assert.equal(r.accuracyMatrix.length, 2);
  assert.equal(r.accuracyMatrix[0]![0], 0.2, 'class 0 of 5 classes always predicted');
  assert.deepEqual(r.accuracyMatrix[1], [0.2, 0]);
  assert.equal(r.steps[1]!.memorySize, 20);
  assert.equal(r.timing.length, 2);
});

test('each drawn sample uses one of its views at random', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 10, classOrder: 'identity', epochs: 3 });
  const m = new RecordingMethod();
  await runClassIncremental(config, dataset, m);
  const { views: V, dim: D, features } = dataset.train;
  let view1 = 0;
  let total = 0;
  for (const c of m.calls) {
    for (let i = 0; i < c.size; i++) {
      const row = c.features.subarray(i * D, (i + 1) * D);
      // Find which sample/view this row is (search the samples of its class).
      let found = -1;
      for (let s = 0; s < dataset.train.n && found < 0; s++) {
        if (dataset.train.labels[s] !== c.labels[i]) continue;
        for (let v = 0; v < V; v++) if (features[(s * V + v) * D] === row[0] && features[(s * V + v) * D + 1] === row[1]) found = v;
      }
      assert.ok(found >= 0);
      if (found === 1) view1++;
      total++;
    }
  }
  assert.ok(Math.abs(view1 / total - 0.5) < 0.06, `view 1 drawn ${view1} of ${total} times`);
});

test('the scenario and every draw are reproducible from the seed', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5 });
  assert.deepEqual(scenarioFor(config, dataset), scenarioFor(config, dataset));
  const a = new RecordingMethod();
  const b = new RecordingMethod();
  await runClassIncremental(config, dataset, a);
  await runClassIncremental(config, dataset, b);
  assert.deepEqual(a.calls.map((c) => c.labels), b.calls.map((c) => c.labels));
});

/** The train sample (and view) whose features are `row`, or -1. */
function sampleOf(row: Float32Array): number {
  const { n, views: V, dim: D, features } = dataset.train;
  for (let s = 0; s < n; s++) {
    for (let v = 0; v < V; v++) {
      const o = (s * V + v) * D;
      if (features[o] === row[0] && features[o + 1] === row[1] && features[o + 2] === row[2]) return s;
    }
  }
  return -1;
}

/** Logits = the first C feature dimensions; records the samples of every prediction made inside a task. */
class FeatureLogitsMethod extends RecordingMethod {
  inTask = false;
  scoringBatches: number[][] = [];
  override beginTask(t: TaskInfo, c: TaskClasses): void { super.beginTask(t, c); this.inTask = true; }
  override endTask(): void { this.inTask = false; }
  override predict(f: Float32Array, n: number): Prediction {
    const D = dataset.train.dim;
    if (this.inTask) this.scoringBatches.push(Array.from({ length: n }, (_, i) => sampleOf(f.subarray(i * D, (i + 1) * D))));
    const logits = new Float32Array(n * this.seen);
    for (let i = 0; i < n; i++) for (let c = 0; c < this.seen; c++) logits[i * this.seen + c] = f[i * D + c]!;
    return { logits, samples: 1, n, classes: this.seen };
  }
}

test('a score-based selector scores each new class on its own, in eval batches, and the memory keeps its choice', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, memorySize: 20, classOrder: 'identity', selector: 'distance', evalBatchSize: 32, novelty: false, calibration: 'none' });
  const m = new FeatureLogitsMethod();
  await runClassIncremental(config, dataset, m);
  const { labels, views: V, dim: D, features } = dataset.train;
  // Task 0 scores its 5 classes x 40 candidates, class by class, in batches of 32 and 8, view 0.
  const task0 = m.scoringBatches.slice(0, 10);
  assert.deepEqual(task0.map((b) => b.length), [32, 8, 32, 8, 32, 8, 32, 8, 32, 8]);
  task0.forEach((b, j) => assert.ok(b.every((s) => labels[s] === Math.floor(j / 2)), `batch ${j} is class ${Math.floor(j / 2)} only`));
  // distance keeps the 4 samples of each class with the lowest true-class logit (feature y, view 0).
  const expected = new Set<number>();
  for (let y = 0; y < 5; y++) {
    const own = [...Array(dataset.train.n).keys()].filter((s) => labels[s] === y);
    own.sort((a, b) => features[a * V * D + y]! - features[b * V * D + y]!);
    own.slice(0, 4).forEach((s) => expected.add(s));
  }
  // The memory replayed while learning task 1 holds exactly those (first epoch: 7 batches).
  const replayed = m.calls.filter((c) => c.task === 1 && c.phase === 'train').slice(0, 7)
    .flatMap((c) => c.labels.map((y, i) => ({ y, s: sampleOf(c.features.subarray(i * D, (i + 1) * D)) })))
    .filter(({ y }) => y < 5)
    .map(({ s }) => s);
  assert.deepEqual(new Set(replayed), expected);
});

test('the mixed test order and evaluation predictions do not consume the training streams', async () => {
  const labelsBy = async (evalBatching: string) => {
    const m = new RecordingMethod();
    await runClassIncremental(resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, evalBatching, novelty: true }), dataset, m);
    return m.calls.map((c) => c.labels);
  };
  const perTask = await labelsBy('per-task');
  assert.deepEqual(await labelsBy('mixed'), perTask);
  assert.deepEqual(await labelsBy('single'), perTask);
});

test('a method without SGD that fits: sees memory + task rows once per task, the new classes\' text at beginTask, no trainStep', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, memorySize: 20, classOrder: 'identity', novelty: false, calibration: 'none' });
  const m = new FittingMethod();
  const r = await runClassIncremental(config, dataset, m);
  assert.equal(m.calls.length, 0, 'no SGD step');
  assert.deepEqual(m.fits, [
    { task: 0, rows: 200, labels: [0, 1, 2, 3, 4] },
    { task: 1, rows: 220, labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
  ]);
  assert.deepEqual(r.steps.map((s) => [s.iterations.train, s.iterations.finetune, s.memorySize]), [[0, 0, 20], [0, 0, 20]]);
  // Each task brings the text of its own 5 classes only: [5, P, D], in incremental order.
  const P = dataset.numTemplates, D = dataset.manifest.dim;
  assert.deepEqual(m.texts.map((t) => t.textPerTemplate.length), [5 * P * D, 5 * P * D]);
  assert.deepEqual(m.texts[1]!.textPerTemplate, dataset.text.slice(5 * P * D, 10 * P * D));
});

test('untilTask stops after that task', async () => {
  const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 2, classOrder: 'identity', novelty: false });
  const r = await runClassIncremental(config, dataset, new RecordingMethod(), { untilTask: 2 });
  assert.equal(r.accuracyMatrix.length, 3);
});
