import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { energyScore, mspScore, predictiveEntropy } from '../eval/novelty.js';
import type { TaskData } from './method.js';
import { createMethod } from './registry.js';
import { createSimpleCil, SimpleCil } from './simplecil.js';
import { tensorSource } from './state.js';

/** A fit's data: rows [n, 2 views, D], view 1 deliberately far from view 0 (SimpleCIL reads view 0 only). */
function taskData(view0: number[][], labels: number[]): TaskData {
  const D = view0[0]!.length;
  const features = new Float32Array(view0.length * 2 * D);
  view0.forEach((row, i) => {
    features.set(row, i * 2 * D);
    features.set(row.map((x) => -x + 5), (i * 2 + 1) * D);
  });
  const n = view0.length;
  return { split: { features, labels: Int32Array.from(labels), n, views: 2, dim: D }, indices: Int32Array.from({ length: n }, (_, i) => i), labels: Int32Array.from(labels) };
}
const rng = new Rng(0);
const near = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol;

test('simplecil hand case: class means, cosine logits at s = 1, softmax, energy and entropy', () => {
  const m = createSimpleCil({ dim: 2 });
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 }, { textPerTemplate: new Float32Array(4), numTemplates: 1 }, rng);
  // Class 0 = {(1,0), (0,1)} (mean (0.5, 0.5)), class 1 = {(-1,0)}.
  m.fit!(taskData([[1, 0], [-1, 0], [0, 1]], [0, 1, 0]), rng);
  const p = m.predict(Float32Array.of(1, 0), 1, rng);
  assert.deepEqual([p.samples, p.n, p.classes], [1, 1, 2]);
  assert.ok(near(p.logits[0]!, 0.70711) && near(p.logits[1]!, -1), `logits ${[...p.logits]}`);
  assert.ok(near(mspScore(p.logits, 1, 2)[0]!, 0.84646), 'p0');
  assert.ok(near(energyScore(p.logits, 1, 2)[0]!, 0.8738), 'energy = logsumexp');
  assert.ok(near(predictiveEntropy(p.logits, 1, 2)[0]!, 0.4288), 'entropy');
  // The logit scale is an option; the features' norm does not matter (cosine).
  const scaled = createSimpleCil({ dim: 2, methodOptions: { logitScale: 10 } });
  scaled.beginTask({ index: 0, classStart: 0, classEnd: 2 }, { textPerTemplate: new Float32Array(4), numTemplates: 1 }, rng);
  scaled.fit!(taskData([[1, 0], [-1, 0], [0, 1]], [0, 1, 0]), rng);
  const q = scaled.predict(Float32Array.of(3, 0), 1, rng);
  assert.ok(near(q.logits[0]!, 7.0711, 1e-4) && near(q.logits[1]!, -10, 1e-4));
  assert.deepEqual(m.traits, { sgd: { train: null, finetune: null }, replay: false });
});

test('simplecil: a new task adds prototypes and leaves the old ones; its state round-trips', () => {
  const m = new SimpleCil(2);
  m.beginTask({ index: 0, classStart: 0, classEnd: 1 });
  m.fit(taskData([[0, 2], [0, 4]], [0, 0]));
  const before = m.saveState();
  m.beginTask({ index: 1, classStart: 1, classEnd: 2 });
  assert.throws(() => m.predict(Float32Array.of(1, 0), 1), /fit was not called/);
  assert.throws(() => m.saveState(), /not fitted/);
  m.fit(taskData([[3, 0]], [1]));
  const saved = m.saveState();
  assert.deepEqual([...saved.tensors[0]![1].data], [0, 3, 3, 0], 'mu_0 = (0, 3) unchanged, mu_1 = (3, 0)');
  assert.deepEqual(before.tensors[0]![1].shape, [1, 2]);
  assert.deepEqual(saved.meta['tasks'], [{ index: 0, classStart: 0, classEnd: 1 }, { index: 1, classStart: 1, classEnd: 2 }]);

  const again = new SimpleCil(2);
  again.loadState({ tensors: tensorSource(saved.tensors), meta: saved.meta }, 'state.safetensors');
  const f = Float32Array.of(0.6, 0.8, -1, 0.2);
  assert.deepEqual(again.predict(f, 2).logits, m.predict(f, 2).logits);
  // It continues where it was: the next task must be task 2.
  assert.throws(() => again.beginTask({ index: 1, classStart: 1, classEnd: 2 }), /does not follow the 2 tasks and 2 classes seen/);
  assert.throws(() => new SimpleCil(3).loadState({ tensors: tensorSource(saved.tensors), meta: saved.meta }, 'state.safetensors'), /state\.safetensors: tensor "prototypes" has shape \[2,2\], simplecil expects \[2,3\]/);
  assert.throws(() => new SimpleCil(2, { logitScale: 5 }).loadState({ tensors: tensorSource(saved.tensors), meta: saved.meta }, 'f'), /saved with options \{"logitScale":1\}/);
});

test('simplecil refuses bad options, rows of other classes and classes without samples', async () => {
  await assert.rejects(createMethod('simplecil', { dim: 2, logitScale: 100, samples: 1, batchSize: 8, methodOptions: { scale: 2 } }), /simplecil: unknown option "scale": must be one of \[logitScale\]/);
  assert.throws(() => createSimpleCil({ dim: 2, methodOptions: { logitScale: -1 } }), /option "logitScale" must be a number in \(0, 10000\], got -1/);
  assert.throws(() => createSimpleCil({ dim: 2, methodOptions: { logitScale: '2' } }), /got "2"/);
  const m = new SimpleCil(2);
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 });
  assert.throws(() => m.fit(taskData([[1, 0]], [2])), /row 0 has label 2, not one of the task's classes \[0, 2\)/);
  assert.throws(() => m.fit(taskData([[1, 0]], [0])), /class 1 has no training sample/);
  assert.throws(() => m.trainStep(), /trains nothing/);
});
