import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClapConfigError, DEFAULT_CLAP_CONFIG, validateClapConfig } from './config.js';

test('defaults are the reference values, all optional components off', () => {
  const c = validateClapConfig();
  assert.deepEqual(c, DEFAULT_CLAP_CONFIG);
  assert.equal(c.samples, 20);
  assert.equal(c.laspWeight, 15);
  assert.equal(c.klWeight, 0.001);
  assert.ok(Math.abs(c.lr - 1.6e-3) < 1e-15);
  assert.equal(c.epochs, 5);
  assert.equal(c.finetuneEpochs, 2);
  assert.equal(c.finetuneLrFactor, 0.1);
  assert.deepEqual(c.vga, { heads: 1, ffDim: 2048, dropout: 0.1 });
  assert.equal(c.taskTokens, false);
  assert.equal(c.hierarchical.enabled, false);
  assert.equal(c.hierarchical.distillWeight, 0.3);
  assert.equal(c.orthoLoss.enabled, false);
  assert.equal(c.orthoLoss.weight, 5);
  assert.deepEqual(c.prior, { kind: 'standard' });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.vga));
});

test('partial configs merge into the defaults; lr follows the batch size unless given', () => {
  const c = validateClapConfig({ batchSize: 64, vga: { ffDim: 16 }, prior: { kind: 'dataDriven' } });
  assert.ok(Math.abs(c.lr - 3.2e-3) < 1e-15);
  assert.deepEqual(c.vga, { heads: 1, ffDim: 16, dropout: 0.1 });
  assert.deepEqual(c.prior, { kind: 'dataDriven', contextSize: 0.67 });
  assert.equal(validateClapConfig({ batchSize: 64, lr: 0.01 }).lr, 0.01);
});

test('unknown keys fail with a suggestion', () => {
  assert.throws(() => validateClapConfig({ sampels: 10 }), (e: unknown) => e instanceof ClapConfigError && e.path === 'sampels' && /did you mean "samples"/.test(e.message));
  assert.throws(() => validateClapConfig({ vga: { dropuot: 0 } }), /vga\.dropuot: unknown key \(did you mean "dropout"\?\)/);
  assert.throws(() => validateClapConfig({ prior: { kind: 'dataDriven', contextsize: 0.5 } }), /did you mean "contextSize"/);
  assert.throws(() => validateClapConfig({ prior: { kind: 'frozn' } }), /prior\.kind: must be one of \[standard, dataDriven, frozen\], got "frozn" \(did you mean "frozen"\?\)/);
  assert.throws(() => validateClapConfig({ zzzzzzzz: 1 }), (e: unknown) => e instanceof ClapConfigError && !/did you mean/.test(e.message));
});

test('wrong types and out-of-range values fail with the key and the value', () => {
  assert.throws(() => validateClapConfig({ samples: '20' }), /samples: must be an integer, got "20"/);
  assert.throws(() => validateClapConfig({ samples: 0 }), /samples: must be in \[1, 10000\], got 0/);
  assert.throws(() => validateClapConfig({ samples: 2.5 }), /samples: must be an integer/);
  assert.throws(() => validateClapConfig({ lr: 0 }), /lr: must be in \(0, 10\]/);
  assert.throws(() => validateClapConfig({ vga: { dropout: 1 } }), /vga\.dropout: must be in \[0, 1\), got 1/);
  assert.throws(() => validateClapConfig({ taskTokens: 1 }), /taskTokens: must be a boolean, got 1/);
  assert.throws(() => validateClapConfig({ hierarchical: true }), /hierarchical: must be an object, got true/);
  assert.throws(() => validateClapConfig({ prior: { kind: 'dataDriven', contextSize: 0 } }), /prior\.contextSize: must be in \(0, 1\]/);
  assert.throws(() => validateClapConfig({ prior: { kind: 'frozen', contextSize: 0.5 } }), /prior\.contextSize: unknown key/);
  assert.throws(() => validateClapConfig({ klWeight: Number.NaN }), /klWeight: must be a finite number, got NaN/);
});
