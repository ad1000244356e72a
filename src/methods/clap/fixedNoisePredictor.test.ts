/**
 * CLAP's fixed-noise predictor (one evaluation's predictions): the noise and the VGA's query block
 * are computed once, and every prediction must still equal `predict` with a generator started
 * from the same state, bit for bit, until something may change the model; then it recomputes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SGD } from '../../engine/optim.js';
import { Rng } from '../../engine/random.js';
import type { ClapConfigInput } from './config.js';
import { buildClapMethod, createClap, type ClapMethod } from './clap.js';
import { validateClapConfig } from './config.js';
import { exportReferenceTensors, loadReferenceTensors } from '../../interchange/referenceNames.js';
import { stepAt, tinyProblem, type TinyProblem } from './testFixtures.js';

const tasks = [
  { index: 0, classStart: 0, classEnd: 3 },
  { index: 1, classStart: 3, classEnd: 6 },
];

/**
 * A CLAP trained one step on each of two tasks. D = 32 and 6 classes put the VGA's products,
 * LayerNorms and the encoders above the onnxruntime thresholds (the native paths are exercised).
 */
function trained(config: ClapConfigInput, deterministic = false): { clap: ClapMethod; prob: TinyProblem } {
  const prob = tinyProblem({ seed: 5, classes: 6, dim: 32, logitScale: 50 });
  const full = { samples: 3, vga: { ffDim: 64 }, ...config };
  const clap = deterministic ? buildClapMethod('det', prob.setup, validateClapConfig(full), true) : createClap(prob.setup, full);
  for (const task of tasks) {
    prob.begin(clap, task);
    clap.trainStep(prob.batch(5, [task.classStart, task.classStart + 1], new Rng(task.index)), stepAt(1e-2), prob.rng);
    clap.endTask(task, prob.rng);
  }
  return { clap, prob };
}

function assertSameAsPredict(clap: ClapMethod, predictor: (f: Float32Array, n: number) => unknown, prob: TinyProblem, noise: ReturnType<Rng['state']>, sizes: number[], label: string): void {
  sizes.forEach((n, i) => {
    const x = prob.batch(n, [0, 2, 4, 5], new Rng(100 + i));
    const reference = clap.predict(x.features, n, Rng.fromState(noise));
    assert.deepEqual(predictor(x.features, n), reference, `${label}: batch ${i} (n = ${n})`);
  });
}

const configs: [string, ClapConfigInput, boolean][] = [
  ['default', {}, false],
  ['task tokens', { taskTokens: true }, false],
  ['hierarchical (global noise too)', { hierarchical: { enabled: true, globalSamples: 2 } }, false],
  ['deterministic (no noise)', {}, true],
];

for (const [label, config, deterministic] of configs) {
  test(`fixed-noise predictor equals predict from the same generator state, batch after batch: ${label}`, () => {
    const { clap, prob } = trained(config, deterministic);
    const noise = new Rng(77).state();
    const predictor = clap.fixedNoisePredictor(noise);
    // Batches of different sizes reuse the same constants; a repeat of the first must not drift.
    assertSameAsPredict(clap, predictor, prob, noise, [4, 1, 7, 4], label);
  });
}

test('fixed-noise predictor: another noise state gives other logits (the noise is not frozen across predictors)', () => {
  const { clap, prob } = trained({});
  const x = prob.batch(4, [0, 3], new Rng(9));
  const a = clap.fixedNoisePredictor(new Rng(1).state())(x.features, 4);
  const b = clap.fixedNoisePredictor(new Rng(2).state())(x.features, 4);
  assert.ok(a.logits.some((v, i) => v !== b.logits[i]));
});

test('fixed-noise predictor recomputes after training, a new task, a phase change, loadState and parameter writes', () => {
  const { clap, prob } = trained({});
  const noise = new Rng(3).state();
  const predictor = clap.fixedNoisePredictor(noise);
  const check = (what: string) => assertSameAsPredict(clap, predictor, prob, noise, [4], what);
  check('before any change');

  clap.trainStep(prob.batch(5, [3, 4]), stepAt(5e-2), prob.rng);
  check('after a train step');

  clap.setPhase('finetune');
  clap.trainStep(prob.batch(5, [0, 4]), stepAt(5e-2), prob.rng);
  check('after a finetune step');

  // A write through the tensors handed out, into the query block the predictor keeps.
  const [, vgaWeight] = clap.namedParameters().find(([k]) => k === 'vga.selfAttn.inProjWeight')!;
  vgaWeight.data.forEach((v, i) => { vgaWeight.data[i] = v * 1.5; });
  check('after writing the self-attention weights of the VGA in place');

  // Restoring another state into a fresh method, and predicting with a predictor made before.
  const other = trained({});
  other.clap.trainStep(other.prob.batch(5, [1, 5]), stepAt(0.2), other.prob.rng);
  const restored = createClap(prob.setup, { samples: 3, vga: { ffDim: 64 } });
  const early = restored.fixedNoisePredictor(noise);
  const saved = other.clap.saveState();
  restored.loadState({ tensors: new Map(saved.tensors), meta: saved.meta }, 'test state');
  assertSameAsPredict(restored, early, prob, noise, [3], 'after loadState');
  assertSameAsPredict(other.clap, early, prob, noise, [3], 'after loadState (the saved model)');

  // A third task: more classes in the logits.
  const more = tinyProblem({ seed: 5, classes: 8, dim: 32, logitScale: 50 });
  more.begin(clap, { index: 2, classStart: 6, classEnd: 8 });
  const after = predictor(more.batch(2, [6, 7]).features, 2);
  assert.equal(after.classes, 8);
  assertSameAsPredict(clap, predictor, more, noise, [2], 'after a new task');
});

test('fixed-noise predictor: an empty batch and a prediction before the first task', () => {
  const { clap } = trained({});
  const empty = clap.fixedNoisePredictor(new Rng(1).state())(new Float32Array(0), 0);
  assert.deepEqual(empty, clap.predict(new Float32Array(0), 0, new Rng(1)));
  const prob = tinyProblem({ seed: 5, classes: 6, dim: 32 });
  const fresh = createClap(prob.setup, {});
  assert.throws(() => fresh.fixedNoisePredictor(new Rng(1).state())(prob.batch(2, [0]).features, 2), /before the first task/);
  assert.throws(() => fresh.fixedNoisePredictor(new Rng(1).state())(new Float32Array(5), 2), /before the first task|feature values/);
});

test('fixed-noise predictor rejects a batch of the wrong width like predict does', () => {
  const { clap } = trained({});
  assert.throws(() => clap.fixedNoisePredictor(new Rng(1).state())(new Float32Array(33), 1), /33 feature values for n = 1, D = 32/);
});

test('finetuning reuses the frozen VGA\'s query block: the same numbers as a fresh block at every step', () => {
  // Two identical methods; one is made to recompute at every step (handing out the parameters
  // invalidates what is cached). Losses and every parameter must agree bit for bit.
  const runs = [false, true].map((recompute) => {
    const { clap, prob } = trained({});
    clap.setPhase('finetune');
    const losses: number[] = [];
    for (let k = 0; k < 4; k++) {
      if (recompute) clap.namedParameters();
      losses.push(clap.trainStep(prob.batch(6, [0, 2, 3, 5], new Rng(40 + k)), stepAt(5e-2), prob.rng).loss);
    }
    return { losses, params: clap.saveState().tensors.map(([k, t]) => [k, Array.from(t.data)] as const) };
  });
  assert.deepEqual(runs[0]!.losses, runs[1]!.losses);
  assert.deepEqual(runs[0]!.params, runs[1]!.params);
});

test('the query block counts as frozen only while finetuning without task tokens (tokens train then)', () => {
  const plain = trained({}).clap;
  assert.equal(plain.model.queryBlockFrozen(), false, 'learning a task trains the VGA');
  plain.setPhase('finetune');
  assert.equal(plain.model.queryBlockFrozen(), true);
  const tokens = trained({ taskTokens: true }).clap;
  tokens.setPhase('finetune');
  assert.equal(tokens.model.queryBlockFrozen(), false);
});

test('learning a third task with the earlier encoders baked in gives the same numbers as feeding them (manual SGD steps as reference)', () => {
  // Two identical methods after two tasks; a third task is learned by the method's own trainStep
  // (earlier encoders baked into the native graphs) and by forward + SGD by hand (all fed).
  const third = { index: 2, classStart: 6, classEnd: 9 };
  const runs = [true, false].map((own) => {
    const { clap, prob } = trained({});
    const more = tinyProblem({ seed: 5, classes: 9, dim: 32, logitScale: 50 });
    more.rng = prob.rng;
    more.begin(clap, third);
    const sgd = new SGD(clap.model.namedParameters().filter(([, p]) => p.requiresGrad).map(([, p]) => p), { lr: 5e-2 });
    const losses: number[] = [];
    for (let k = 0; k < 3; k++) {
      const batch = more.batch(6, [0, 4, 6, 7, 8], new Rng(60 + k));
      if (own) {
        losses.push(clap.trainStep(batch, stepAt(5e-2), more.rng).loss);
      } else {
        sgd.zeroGrad();
        const out = clap.model.forward(batch.features, batch.size, { phase: 'train', training: true, labels: batch.labels, rng: more.rng });
        losses.push(out.loss!.item());
        sgd.backwardStep(out.loss!, 5e-2);
        sgd.zeroGrad();
      }
    }
    return { losses, params: clap.saveState().tensors.map(([k, t]) => [k, Array.from(t.data)] as const) };
  });
  assert.deepEqual(runs[0]!.losses, runs[1]!.losses);
  assert.deepEqual(runs[0]!.params, runs[1]!.params);
});

test('a write that reaches the model without the method (the reference interchange) is seen by the predictor and by the packed encoders', () => {
  // Weights of another model whose every encoder and the VGA moved (a finetuning and a learning
  // step), written by loadReferenceTensors into this one after its predictor computed its
  // constants and its train step packed the earlier encoder.
  const other = trained({});
  other.clap.setPhase('finetune');
  other.clap.trainStep(other.prob.batch(5, [1, 4]), stepAt(0.3), other.prob.rng);
  other.clap.setPhase('train');
  other.clap.trainStep(other.prob.batch(5, [2, 5]), stepAt(0.3), other.prob.rng);
  const weights = exportReferenceTensors(other.clap.model);
  const { clap, prob } = trained({});
  assert.notDeepEqual(clap.model.encoders[0]!.weight.data, other.clap.model.encoders[0]!.weight.data, 'the write must change the packed encoder');
  const noise = new Rng(8).state();
  const predictor = clap.fixedNoisePredictor(noise);
  const x = prob.batch(4, [0, 5], new Rng(3));
  clap.trainStep(prob.batch(5, [3, 4], new Rng(4)), stepAt(1e-2), new Rng(5));
  predictor(x.features, 4);
  loadReferenceTensors(clap.model, weights, 'test weights');
  assert.deepEqual(predictor(x.features, 4), clap.predict(x.features, 4, Rng.fromState(noise)), 'predictor after the write');
  assert.deepEqual(predictor(x.features, 4).logits, other.clap.predict(x.features, 4, Rng.fromState(noise)).logits, 'the written model predicts as its source');
  // The next train step reads the written encoders: the same loss as the source model's step.
  const batch = prob.batch(5, [0, 3, 5], new Rng(6));
  assert.equal(clap.trainStep(batch, stepAt(1e-2), new Rng(7)).loss, other.clap.trainStep(batch, stepAt(1e-2), new Rng(7)).loss);
});
