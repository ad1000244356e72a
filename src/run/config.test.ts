import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RUN_CONFIG, didYouMean, flagOf, resolveRunConfig } from './config.js';

test('defaults are the reference values', () => {
  const c = resolveRunConfig({});
  assert.equal(c.batchSize, 32);
  assert.equal(c.samples, 20);
  assert.equal(c.memoryKind, 'total');
  assert.equal(c.memorySize, 2000);
  assert.equal(c.increment, 10);
  assert.equal(c.classOrder, 'reference');
  assert.equal(c.selector, 'random');
  assert.equal(c.evalBatching, 'per-task');
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
  assert.throws(() => resolveRunConfig({ method: 'clop' }), /"method" must be one of \[clap, clap-deterministic, zeroshot, clip-adapter\], got "clop"/);
  assert.throws(() => resolveRunConfig({ classOrder: 'random' }), /"classOrder" must be "reference", "identity" or a list/);
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
