import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../engine/random.js';
import { createClipAdapter } from './clipAdapter.js';
import type { MethodContext } from './method.js';
import { createMethod, getMethodEntry } from './registry.js';
import { classTextFeatures, createZeroShot } from './zeroShot.js';

/** e[c, p] for C = 3, P = 2, D = 2 (unit rows). */
function smallContext(): MethodContext {
  const text = Float32Array.from([
    1, 0, 0, 1, //   class 0: mean (0.5, 0.5) -> t0 = (s, s)
    1, 0, 1, 0, //   class 1: t1 = (1, 0)
    0, -1, 0, -1, // class 2: t2 = (0, -1)
  ]);
  return { dim: 2, textPerTemplate: text, numClasses: 3, numTemplates: 2, logitScale: 100, rng: new Rng(0) };
}

test('class text features: normalize(mean_p e)', () => {
  const t = classTextFeatures(smallContext().textPerTemplate, 3, 2, 2);
  const s = Math.SQRT1_2;
  const want = [s, s, 1, 0, 0, -1];
  want.forEach((v, i) => assert.ok(Math.abs(t[i]! - v) < 1e-6, `t[${i}] = ${t[i]}, want ${v}`));
});

test('zero-shot logits = 100 f t^T over the seen classes, computed by hand', () => {
  const m = createZeroShot(smallContext());
  m.beginTask({ index: 0, classStart: 0, classEnd: 2 });
  const f = Float32Array.from([1, 0, 0.6, -0.8]);
  const p = m.predict(f, 2);
  assert.deepEqual([p.samples, p.n, p.classes], [1, 2, 2]);
  const s = Math.SQRT1_2;
  const want = [100 * s, 100, 100 * (0.6 * s - 0.8 * s), 60];
  want.forEach((v, i) => assert.ok(Math.abs(p.logits[i]! - v) < 1e-4, `logit ${i} = ${p.logits[i]}, want ${v}`));
  m.beginTask({ index: 1, classStart: 2, classEnd: 3 });
  const q = m.predict(f, 2);
  assert.equal(q.classes, 3);
  assert.ok(Math.abs(q.logits[5]! - 80) < 1e-4);
  assert.equal(m.trainable, false);
});

test('clip-adapter trains: the loss decreases on a fixed batch, and every task starts a fresh adapter', () => {
  const D = 16;
  const C = 4;
  const rng = new Rng(1);
  const text = new Float32Array(C * D);
  rng.fillNormal(text);
  const ctx: MethodContext = { dim: D, textPerTemplate: text, numClasses: C, numTemplates: 1, logitScale: 100, rng: new Rng(2) };
  const m = createClipAdapter(ctx);
  m.beginTask({ index: 0, classStart: 0, classEnd: C });
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
  const first = m.trainStep(batch, 1e-3).loss;
  let last = first;
  for (let k = 0; k < 30; k++) last = m.trainStep(batch, 1e-3).loss;
  assert.ok(last < first - 0.05, `loss ${first} -> ${last}`);
  const w = m.namedParameters()[0]![1];
  m.beginTask({ index: 1, classStart: C, classEnd: C });
  assert.notEqual(m.namedParameters()[0]![1], w, 'a fresh adapter per task');
  assert.deepEqual(m.schedule, { epochs: 5, lr: 1e-3, warmup: false, finetuneEpochs: 2, finetuneLr: 1e-4 });
});

test('registry: known names build methods, unknown names list the choices', async () => {
  const zs = await createMethod('zeroshot', smallContext(), { samples: 20, batchSize: 32, methodOptions: {} });
  assert.equal(zs.name, 'zeroshot');
  assert.throws(() => getMethodEntry('clop'), /unknown method "clop": must be one of \[clap, clap-deterministic, zeroshot, clip-adapter\]/);
  await assert.rejects(createMethod('clip-adapter', smallContext(), { samples: 1, batchSize: 32, methodOptions: { ratoi: 0.1 } }), /unknown option "ratoi"/);
  await assert.rejects(createMethod('zeroshot', smallContext(), { samples: 1, batchSize: 32, methodOptions: { beta: 1 } }), /takes no method options/);
});
