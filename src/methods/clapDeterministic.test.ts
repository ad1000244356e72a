import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namedParameters } from '../engine/nn/parameters.js';
import { Rng } from '../engine/random.js';
import { gradCheck } from '../engine/testing/gradCheck.js';
import { createClapDeterministic } from './clapDeterministic.js';
import { accuracyOfMeanLogits, stepAt, tinyProblem } from './clap/testFixtures.js';

const task0 = { index: 0, classStart: 0, classEnd: 2 };
const task1 = { index: 1, classStart: 2, classEnd: 4 };

test('deterministic ablation: one sample, mu-only encoders, loss = CE + beta LASP (no KL)', () => {
  const prob = tinyProblem({ classes: 4, dim: 4 });
  const clap = createClapDeterministic(prob.setup, { vga: { ffDim: 8 } });
  assert.equal(clap.name, 'clap-deterministic');
  prob.begin(clap, task0);
  clap.endTask(task0, prob.rng);
  prob.begin(clap, task1);
  assert.deepEqual(clap.model.encoders[1]!.weight.shape, [4, 4]);
  const step = clap.trainStep(prob.batch(4, [0, 1, 2, 3]), stepAt(1e-3), prob.rng);
  assert.deepEqual(Object.keys(step.parts).sort(), ['ce', 'lasp']);
  assert.ok(Math.abs(step.parts['ce']! + step.parts['lasp']! - step.loss) < 1e-4);
  const x = prob.batch(3, [0, 3], new Rng(1));
  const p = clap.predict(x.features, 3, prob.rng);
  assert.deepEqual([p.samples, p.n, p.classes], [1, 3, 4]);
  // No noise and no dropout: predicting draws nothing and repeats exactly.
  const state = prob.rng.state();
  assert.deepEqual(clap.predict(x.features, 3, prob.rng).logits, p.logits);
  assert.deepEqual(prob.rng.state(), state);
});

test('deterministic ablation: gradient check w.r.t. the VGA and the newest mu map', () => {
  const prob = tinyProblem({ classes: 4, dim: 4, logitScale: 20 });
  const clap = createClapDeterministic(prob.setup, { vga: { ffDim: 8 } });
  prob.begin(clap, task0);
  prob.begin(clap, task1);
  const m = clap.model;
  const batch = prob.batch(3, [0, 2, 3]);
  const inputs = [...namedParameters(m.vga).map(([, t]) => t), m.encoders[1]!.weight, m.encoders[1]!.bias];
  gradCheck(() => m.forward(batch.features, 3, { phase: 'train', training: false, labels: batch.labels, rng: prob.rng }).loss!, inputs, { rtol: 3e-2, atol: 3e-3 });
});

test('deterministic ablation learns the tiny problem and rejects sampling-only options', () => {
  const prob = tinyProblem({ seed: 3, classes: 6, dim: 16, anchorShare: 0.3, imageNoise: 0.15 });
  const clap = createClapDeterministic(prob.setup, { vga: { ffDim: 32 } });
  prob.begin(clap, { index: 0, classStart: 0, classEnd: 6 });
  const rng = new Rng(8);
  for (let k = 0; k < 150; k++) clap.trainStep(prob.batch(12, [0, 1, 2, 3, 4, 5], rng), stepAt(clap.config.lr), prob.rng);
  const x = prob.batch(12, [0, 1, 2, 3, 4, 5], new Rng(77));
  const p = clap.predict(x.features, 12, prob.rng);
  assert.ok(accuracyOfMeanLogits(p.logits, 1, 12, 6, x.labels) >= 0.9);
  assert.throws(() => createClapDeterministic(prob.setup, { hierarchical: { enabled: true } }), /needs sampling/);
  assert.throws(() => createClapDeterministic(prob.setup, { prior: { kind: 'frozen' } }), /no KL term/);
});
