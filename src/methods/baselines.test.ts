import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { createClipAdapter } from './clipAdapter.js';
import type { StepAt, TaskClasses } from './method.js';
import { createMethod, getMethodEntry, METHOD_NAMES } from './registry.js';
import { classTextFeatures, createZeroShot } from './zeroShot.js';

/** e[c, p] for C = 3, P = 2, D = 2 (unit rows). */
const SMALL_TEXT = Float32Array.from([
  1, 0, 0, 1, //   class 0: mean (0.5, 0.5) -> t0 = (s, s)
  1, 0, 1, 0, //   class 1: t1 = (1, 0)
  0, -1, 0, -1, // class 2: t2 = (0, -1)
]);
const smallSetup = { dim: 2, logitScale: 100, samples: 20, batchSize: 32, methodOptions: {} };
/** The text of classes [start, end) of SMALL_TEXT (P = 2, D = 2). */
const smallClasses = (start: number, end: number): TaskClasses => ({ textPerTemplate: SMALL_TEXT.slice(start * 4, end * 4), numTemplates: 2 });
const at = (lr: number): StepAt => ({ lr, iteration: 0, iterations: 1, epoch: 0 });

test('class text features: normalize(mean_p e)', () => {
  const t = classTextFeatures(SMALL_TEXT, 3, 2, 2);
  const s = Math.SQRT1_2;
  const want = [s, s, 1, 0, 0, -1];
  want.forEach((v, i) => assert.ok(Math.abs(t[i]! - v) < 1e-6, `t[${i}] = ${t[i]}, want ${v}`));
});

test('zero-shot logits = 100 f t^T over the seen classes, computed by hand', () => {
  const m = createZeroShot(smallSetup);
  const rng = new Rng(0);
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 }, smallClasses(0, 2), rng);
  const f = Float32Array.from([1, 0, 0.6, -0.8]);
  const p = m.predict(f, 2, rng);
  assert.deepEqual([p.samples, p.n, p.classes], [1, 2, 2]);
  const s = Math.SQRT1_2;
  const want = [100 * s, 100, 100 * (0.6 * s - 0.8 * s), 60];
  want.forEach((v, i) => assert.ok(Math.abs(p.logits[i]! - v) < 1e-4, `logit ${i} = ${p.logits[i]}, want ${v}`));
  m.beginTask({ index: 1, classStart: 2, classEnd: 3 }, smallClasses(2, 3), rng);
  const q = m.predict(f, 2, rng);
  assert.equal(q.classes, 3);
  assert.ok(Math.abs(q.logits[5]! - 80) < 1e-4);
  assert.deepEqual(m.traits, { sgd: { train: null, finetune: null }, replay: false });
  // Its state is the text head: a fresh zero-shot loaded from it predicts the same.
  const saved = m.saveState();
  const again = createZeroShot(smallSetup);
  again.loadState({ tensors: new Map(saved.tensors.map(([k, t]) => [k, { shape: t.shape, data: t.data }])), meta: saved.meta }, 'test');
  assert.deepEqual(again.predict(f, 2, rng).logits, q.logits);
  assert.throws(() => m.beginTask({ index: 2, classStart: 4, classEnd: 5 }, smallClasses(0, 1), rng), /does not follow the 3 classes seen/);
});

test('clip-adapter trains: the loss decreases on a fixed batch, and every task starts a fresh adapter', () => {
  const D = 16;
  const C = 4;
  const rng = new Rng(1);
  const text = new Float32Array(C * D);
  rng.fillNormal(text);
  const methodRng = new Rng(2);
  const m = createClipAdapter({ dim: D, logitScale: 100 });
  m.beginTask({ index: 0, classStart: 0, classEnd: C }, { textPerTemplate: text, numTemplates: 1 }, methodRng);
  assert.deepEqual(m.namedParameters().map(([n, p]) => [n, p.shape]), [['adapter.fc1.weight', [4, 16]], ['adapter.fc2.weight', [16, 4]]]);
  const n = 32;
  const features = new Float32Array(n * D);
  rng.fillNormal(features);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < D; j++) s += features[i * D + j]! ** 2;
    for (let j = 0; j < D; j++) features[i * D + j]! /= Math.sqrt(s);
  }
  const labels = Int32Array.from({ length: n }, (_, i) => i % C);
  const batch = { features, labels, size: n };
  const first = m.trainStep(batch, at(1e-3), methodRng).loss;
  let last = first;
  for (let k = 0; k < 30; k++) last = m.trainStep(batch, at(1e-3), methodRng).loss;
  assert.ok(last < first - 0.05, `loss ${first} -> ${last}`);
  const w = m.namedParameters()[0]![1];
  // State round trip: a fresh adapter loaded from the state predicts exactly the same.
  const saved = m.saveState();
  const again = createClipAdapter({ dim: D, logitScale: 100 });
  again.loadState({ tensors: new Map(saved.tensors.map(([k, t]) => [k, { shape: t.shape, data: t.data }])), meta: saved.meta }, 'test');
  assert.deepEqual(again.predict(features, n, methodRng).logits, m.predict(features, n, methodRng).logits);
  m.beginTask({ index: 1, classStart: C, classEnd: C + 1 }, { textPerTemplate: text.slice(0, D), numTemplates: 1 }, methodRng);
  assert.notEqual(m.namedParameters()[0]![1], w, 'a fresh adapter per task');
  assert.deepEqual(m.traits, { sgd: { train: { epochs: 5, lr: 1e-3, shape: 'cosine' }, finetune: { epochs: 2, lr: 1e-4, shape: 'cosine' } }, replay: true });
});

test('registry: known names build methods, unknown names list the choices', async () => {
  const zs = await createMethod('zeroshot', smallSetup);
  assert.equal(zs.name, 'zeroshot');
  assert.throws(() => getMethodEntry('clop'), new RegExp(`unknown method "clop": must be one of \\[${METHOD_NAMES.join(', ')}\\]`));
  await assert.rejects(createMethod('clip-adapter', { ...smallSetup, methodOptions: { ratoi: 0.1 } }), /unknown option "ratoi"/);
  await assert.rejects(createMethod('zeroshot', { ...smallSetup, methodOptions: { beta: 1 } }), /takes no method options/);
});
