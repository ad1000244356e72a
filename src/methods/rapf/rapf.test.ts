/**
 * RAPF as a method: its options, traits, one task after another (pseudo-features and hard pairs in
 * the loss, the fusion after fitting), and its state: a saved and reloaded method continues exactly
 * as the original. The run-level `--resume` equality is in src/run/lifecycle.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../engine/random.js';
import { leftSingularVectors } from '../../linalg/leftSingular.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { FeaturesSplit } from '../../data/types.js';
import type { Batch, TaskClasses, TaskInfo } from '../method.js';
import { createMethod } from '../registry.js';
import { tensorSource } from '../state.js';
import { fuseAdapters } from './fusion.js';
import { rapfOptions, RAPF_PRESET_VALUES } from './options.js';
import { createRapf, pseudoClassesOfBatch, RapfMethod } from './rapf.js';

describe('rapf options', () => {
  it("defaults to the authors' CIFAR-100 config; presets give ImageNet-R and CUB-200; keys override", () => {
    const d = rapfOptions({});
    assert.deepEqual({ beta: d.beta, k: d.classesPerBatch, theta: d.threshold, b: d.mixBias, shrink: d.shrinkage }, { beta: 2, k: 2, theta: 0.55, b: 0.6, shrink: false });
    assert.deepEqual({ epochs: d.epochs, lr: d.lr, milestones: d.milestones, gamma: d.gamma, margin: d.margin }, { epochs: 15, lr: 1e-3, milestones: [4, 10], gamma: 0.1, margin: 0.1 });
    const r = rapfOptions({ preset: 'imagenet-r' });
    assert.deepEqual([r.beta, r.classesPerBatch, r.threshold, r.mixBias, r.shrinkage], [1, 5, 0.65, 0.7, true]);
    const c = rapfOptions({ preset: 'cub200', mixBias: 0.5, milestones: [2] });
    assert.deepEqual([c.classesPerBatch, c.mixBias, c.milestones, c.threshold], [10, 0.5, [2], 0.65]);
    assert.deepEqual(RAPF_PRESET_VALUES.cifar100.milestones, [4, 10], 'the preset is not mutated');
  });

  it('refuses bad options with a message naming the option', () => {
    assert.throws(() => rapfOptions({ bogus: 1 }), /rapf: unknown option "bogus"/);
    assert.throws(() => rapfOptions({ preset: 'mnist' }), /option "preset" must be one of \[cifar100, imagenet-r, cub200\]/);
    assert.throws(() => rapfOptions({ beta: -1 }), /option "beta" must be a number >= 0/);
    assert.throws(() => rapfOptions({ classesPerBatch: 1.5 }), /option "classesPerBatch" must be an integer/);
    assert.throws(() => rapfOptions({ shrinkage: 'yes' }), /option "shrinkage" must be true or false/);
    assert.throws(() => rapfOptions({ milestones: 4 }), /option "milestones" must be an array/);
    assert.throws(() => rapfOptions({ lr: Number.NaN }), /option "lr"/);
    assert.throws(() => createRapf({ dim: 4, logitScale: 100, methodOptions: { jitter: 'x' } }), Clap4ClipError);
  });

  it('is in the registry, exemplar-free, trains on view 0 with Adam on a multi-step schedule', async () => {
    const m = await createMethod('rapf', { dim: 4, logitScale: 100, samples: 1, batchSize: 8, methodOptions: { epochs: 3 } });
    assert.deepEqual(m.traits, { sgd: { train: { epochs: 3, lr: 1e-3, shape: 'multistep', milestones: [4, 10], gamma: 0.1 }, finetune: null }, replay: false, views: 'first' });
  });
});

// A tiny world: D = 4, classes 0-1 (task 0) and 2-3 (task 1); class 3's text is close to class 0's
// (distance 0.2 < theta 0.55: one hard pair), class 2's is far from both old classes.
const D = 4;
const TEXT = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.98, 0, 0, Math.sqrt(1 - 0.98 ** 2)]];
const classesOf = (cs: number[], templates = 1): TaskClasses => ({ textPerTemplate: Float32Array.from(cs.flatMap((c) => Array.from({ length: templates }, () => TEXT[c]!).flat())), numTemplates: templates });
const task0: TaskInfo = { index: 0, classStart: 0, classEnd: 2 };
const task1: TaskInfo = { index: 1, classStart: 2, classEnd: 4 };

/** 10 samples per class around its text, two views (view 1 is far off: it must never be read). */
function world(): { split: FeaturesSplit; labels: Int32Array } {
  const rng = new Rng(5), n = 40, features = new Float32Array(n * 2 * D), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(i / 10);
    labels[i] = c;
    for (let j = 0; j < D; j++) {
      features[(i * 2) * D + j] = TEXT[c]![j]! + 0.2 * rng.normal();
      features[(i * 2 + 1) * D + j] = 100;
    }
  }
  return { split: { features, labels, n, views: 2, dim: D }, labels };
}

function batchOf(split: FeaturesSplit, labels: Int32Array, rows: number[]): Batch {
  const features = new Float32Array(rows.length * D);
  rows.forEach((r, i) => features.set(split.features.subarray(r * 2 * D, r * 2 * D + D), i * D));
  return { features, labels: Int32Array.from(rows, (r) => labels[r]!), size: rows.length };
}

/** beginTask, `steps` steps over the task's rows in two epochs, fit, endTask; the step losses. */
function learn(m: RapfMethod, task: TaskInfo, rng: Rng): Record<string, number>[] {
  const { split, labels } = world();
  const rows = Array.from({ length: 20 }, (_, i) => task.classStart * 10 + i);
  m.beginTask(task, classesOf([task.classStart, task.classStart + 1]), rng);
  const parts: Record<string, number>[] = [];
  for (let k = 0; k < 4; k++) {
    const r = m.trainStep(batchOf(split, labels, rows.slice((k % 2) * 10, (k % 2) * 10 + 10)), { lr: 1e-2, iteration: k, iterations: 4, epoch: Math.floor(k / 2) }, rng);
    parts.push(r.parts);
  }
  m.fit({ split, labels, indices: Int32Array.from(rows) }, rng);
  m.endTask();
  return parts;
}

const make = (): RapfMethod => createRapf({ dim: D, logitScale: 100 }) as RapfMethod;

describe('rapf pseudo-feature classes', () => {
  it("batch b takes order[(b k + j) mod n_o]: k = 2 over 4 old classes, and k larger than n_o", () => {
    const order = Int32Array.of(3, 0, 2, 1);
    assert.deepEqual([0, 1, 2].map((b) => pseudoClassesOfBatch(order, b, 2)), [[3, 0], [2, 1], [3, 0]]);
    assert.deepEqual(pseudoClassesOfBatch(Int32Array.of(1, 0), 1, 3), [0, 1, 0]);
  });
});

describe('rapf method', () => {
  it('task 0: CE only; task 1: CE + hinge from the hard pair, then A = the fusion of A_o and the trained A', () => {
    const m = make(), rng = new Rng(1);
    const first = learn(m, task0, rng);
    assert.ok(first.every((p) => Object.keys(p).join() === 'ce'));
    const state0 = m.saveState();
    assert.deepEqual(state0.tensors.map(([n, t]) => [n, t.shape]), [['text', [2, D]], ['adapter', [D, D]], ['means', [2, D]], ['covariances', [2, D, D]]]);
    // Statistics are of view 0: class 0's mean is near (1, 0, 0, 0), never near the views of 100.
    const means0 = state0.tensors[2]![1].data;
    assert.ok(Math.abs(means0[0]! - 1) < 0.2 && Math.abs(means0[1]!) < 0.2);

    // Task 1 by hand up to the fusion: the same steps, then check fit's fusion.
    const Ao = state0.tensors[1]![1].data.slice();
    const probe = make();
    probe.loadState({ tensors: tensorSource(state0.tensors), meta: state0.meta }, 'state 0');
    const rngA = new Rng(2), rngB = new Rng(2);
    const second = learn(m, task1, rngA);
    assert.ok(second.every((p) => p['hinge'] !== undefined && p['hinge'] >= 0), JSON.stringify(second));
    const { split, labels } = world();
    probe.beginTask(task1, classesOf([2, 3]), rngB);
    const rows = Array.from({ length: 20 }, (_, i) => 20 + i);
    for (let k = 0; k < 4; k++) probe.trainStep(batchOf(split, labels, rows.slice((k % 2) * 10, (k % 2) * 10 + 10)), { lr: 1e-2, iteration: k, iterations: 4, epoch: Math.floor(k / 2) }, rngB);
    const trained = probe.namedParameters()[0]![1].data.slice();
    const want = fuseAdapters(Ao, trained, leftSingularVectors(Ao, D, D).u, D, 0.6);
    assert.deepEqual(m.namedParameters()[0]![1].data, want);
    assert.notDeepEqual([...want], [...trained]);
  });

  it('a saved and reloaded method continues exactly: same losses, adapter, statistics and predictions', () => {
    const a = make();
    learn(a, task0, new Rng(1));
    const saved = a.saveState();
    const b = make();
    b.loadState({ tensors: tensorSource(saved.tensors), meta: saved.meta }, 'saved');
    const lossesA = learn(a, task1, new Rng(9)), lossesB = learn(b, task1, new Rng(9));
    assert.deepEqual(lossesB, lossesA);
    const sa = a.saveState(), sb = b.saveState();
    assert.deepEqual(sb.meta, sa.meta);
    sa.tensors.forEach(([name, t], i) => assert.deepEqual(sb.tensors[i]![1].data, t.data, name));
    const x = Float32Array.from({ length: 3 * D }, (_, i) => Math.sin(i));
    const pa = a.predict(x, 3), pb = b.predict(x, 3);
    assert.deepEqual(pb, pa);
    assert.equal(pa.classes, 4);
    assert.equal(pa.samples, 1);
  });

  it('refuses a state with a wrong shape, an extra tensor or bad metadata, naming the source', () => {
    const a = make();
    learn(a, task0, new Rng(1));
    const saved = a.saveState();
    const src = tensorSource(saved.tensors);
    const bad = new Map(src);
    bad.set('covariances', { shape: [2, D, D - 1], data: new Float32Array(2 * D * (D - 1)) });
    assert.throws(() => make().loadState({ tensors: bad, meta: saved.meta }, 'ckpt/params.safetensors'), (e: unknown) => e instanceof DataError && /ckpt\/params.safetensors.*"covariances" has shape \[2,4,3\]/.test(e.message));
    const extra = new Map(src);
    extra.set('memory', { shape: [1], data: new Float32Array(1) });
    assert.throws(() => make().loadState({ tensors: extra, meta: saved.meta }, 'f'), /holds tensor "memory"/);
    assert.throws(() => make().loadState({ tensors: src, meta: { classes: -1 } }, 'f'), /"classes" must be an integer >= 0/);
  });

  it('templateIndex picks one template of e[c, p]; out of range is refused', () => {
    const m = createRapf({ dim: D, logitScale: 100, methodOptions: { templateIndex: 2 } });
    assert.throws(() => m.beginTask(task0, classesOf([0, 1], 2), new Rng(1)), /"templateIndex" is 2, but the text features have 2 templates/);
    const one = createRapf({ dim: D, logitScale: 100, methodOptions: { templateIndex: 1 } });
    const text = classesOf([0, 1], 2);
    // Template 0 of class 0 points elsewhere: only template 1 (= TEXT[0]) may be read.
    text.textPerTemplate.set([0, 0, 0, 1], 0);
    one.beginTask(task0, text, new Rng(1));
    assert.deepEqual([...(one.saveState().tensors[0]![1].data.subarray(0, D))], [1, 0, 0, 0]);
  });

  it('refuses a task that does not follow the classes seen, and a class with fewer than 2 samples', () => {
    const m = make();
    assert.throws(() => m.beginTask(task1, classesOf([2, 3]), new Rng(1)), /does not follow the 0 classes seen/);
    m.beginTask(task0, classesOf([0, 1]), new Rng(1));
    const { split, labels } = world();
    assert.throws(() => m.fit({ split, labels, indices: Int32Array.of(0, 1, 10) }, new Rng(1)), /class 1 of task 0: RAPF needs at least 2 training samples per class for a covariance, got 1/);
    // A task ended without fit (as `params` does) leaves no statistics: training the next one is refused.
    const n = make();
    n.beginTask(task0, classesOf([0, 1]), new Rng(1));
    n.endTask();
    n.beginTask(task1, classesOf([2, 3]), new Rng(1));
    assert.throws(() => n.trainStep(batchOf(split, labels, [20, 30]), { lr: 1e-3, iteration: 0, iterations: 1, epoch: 0 }, new Rng(1)), /statistics of 0 of the 2 old classes \(fit was not called/);
  });
});
