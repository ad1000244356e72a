import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METHOD_NAMES } from '../methods/registry.js';
import { DEFAULT_RUN_CONFIG, didYouMean, flagOf, resolveRunConfig } from './config.js';

test('defaults are the reference values (but mixed test batches, and detection on synthetic data)', () => {
  const c = resolveRunConfig({});
  assert.equal(c.batchSize, 32);
  assert.equal(c.samples, 20);
  assert.equal(c.memoryKind, 'total');
  assert.equal(c.memorySize, 2000);
  assert.equal(c.increment, 10);
  assert.equal(c.classOrder, 'reference');
  assert.equal(c.selector, 'random');
  assert.equal(c.evalBatching, 'mixed');
  assert.equal(c.novelty, true);
  assert.equal(c.runs, 1);
  assert.deepEqual(c, { ...DEFAULT_RUN_CONFIG });
});

test('unknown keys get a did-you-mean suggestion', () => {
  assert.throws(() => resolveRunConfig({ epoch: 3 }), /config: unknown key "epoch" \(did you mean "epochs"\?\)/);
  assert.throws(() => resolveRunConfig({ memroySize: 3 }), /did you mean "memorySize"/);
  assert.throws(() => resolveRunConfig({ zzzzzzzz: 1 }), (e: Error) => /unknown key "zzzzzzzz"$/.test(e.message));
  assert.equal(didYouMean('--finetune-epoch', ['--finetune-epochs', '--epochs']), '--finetune-epochs');
});

test('wrong types and out-of-range values are named precisely', () => {
  assert.throws(() => resolveRunConfig({ batchSize: '32' }), /"batchSize" must be an integer, got "32"/);
  assert.throws(() => resolveRunConfig({ batchSize: 0 }), /"batchSize" must be >= 1, got 0/);
  assert.throws(() => resolveRunConfig({ samples: 2.5 }), /"samples" must be an integer/);
  assert.throws(() => resolveRunConfig({ lr: -1 }), /"lr" must be > 0, got -1/);
  assert.throws(() => resolveRunConfig({ method: 'clop' }), new RegExp(`"method" must be one of \\[${METHOD_NAMES.join(', ')}\\], got "clop"`));
  assert.throws(() => resolveRunConfig({ classOrder: 'random' }), /"classOrder" must be "reference", "identity", a list of integer labels or a class-order file, got "random"/);
  assert.throws(() => resolveRunConfig({ methodOptions: [1] }), /"methodOptions" must be a JSON object, got an array/);
  assert.throws(() => resolveRunConfig([]), /expected a JSON object/);
  assert.throws(() => resolveRunConfig({ data: '/some/dir', syntheticPreset: 'tiny' }), /only apply when "data" is "synthetic"/);
});

test('nullable fields, few-shot shorthand and explicit values', () => {
  const c = resolveRunConfig({ epochs: null, lr: 0.01, classOrder: [1, 0] });
  assert.equal(c.epochs, null);
  assert.equal(c.lr, 0.01);
  assert.deepEqual(c.classOrder, [1, 0]);
  const fs = resolveRunConfig({ fewShot: true });
  assert.deepEqual([fs.baseClasses, fs.increment, fs.shots], [60, 5, 5]);
  const fs2 = resolveRunConfig({ fewShot: true, shots: 1 });
  assert.equal(fs2.shots, 1);
});

test('flags are the kebab-case keys', () => {
  assert.equal(flagOf('finetuneEpochs'), '--finetune-epochs');
  assert.equal(flagOf('seed'), '--seed');
});

test('new keys: selector, evalBatching, novelty (default on for synthetic data only), runs', () => {
  for (const selector of ['random', 'first', 'herding', 'entropy', 'distance', 'energy', 'variance', 'var-entropy']) assert.equal(resolveRunConfig({ selector }).selector, selector);
  assert.throws(() => resolveRunConfig({ selector: 'herd' }), /"selector" must be one of \[random, first, herding, entropy, distance, energy, variance, var-entropy\], got "herd"/);
  for (const evalBatching of ['per-task', 'mixed', 'single']) assert.equal(resolveRunConfig({ evalBatching }).evalBatching, evalBatching);
  assert.throws(() => resolveRunConfig({ evalBatching: 'shuffled' }), /"evalBatching" must be one of \[per-task, mixed, single\], got "shuffled"/);
  assert.equal(resolveRunConfig({ data: '/some/features' }).novelty, false, 'off on real features');
  assert.equal(resolveRunConfig({ data: '/some/features', novelty: true }).novelty, true);
  assert.equal(resolveRunConfig({ novelty: false }).novelty, false);
  assert.throws(() => resolveRunConfig({ novelty: 'yes' }), /"novelty" must be true or false, got "yes"/);
  assert.equal(resolveRunConfig({ runs: 3 }).runs, 3);
  assert.throws(() => resolveRunConfig({ runs: 0 }), /"runs" must be in \[1, 1000\], got 0/);
  assert.throws(() => resolveRunConfig({ runs: 1.5 }), /"runs" must be an integer/);
  assert.throws(() => resolveRunConfig({ seed: 2 ** 31 - 1993, runs: 2 }), /"runs" 2 from seed 2147481655 goes past the largest seed/);
  assert.equal(flagOf('evalBatching'), '--eval-batching');
});
