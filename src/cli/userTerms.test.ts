/** Errors in the user's own terms: flags, implied flags, files; numbers as numbers; library syntax replaced by flags. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClassifier } from '../api/classifier.js';
import { CLASSIFIER_FORMAT, CLASSIFIER_VERSION, parseStateFile } from '../api/persist.js';
import { resolveRunConfig } from '../run/config.js';
import { Clap4ClipError, ConfigError, DataError, shown } from '../util/errors.js';
import { UsageError } from './args.js';
import { inFlagTerms, inUserTerms, keysAsFlags, type SettingSources } from './userTerms.js';

const none: SettingSources = { command: 'run', flags: {}, configFile: null, fileKeys: new Set() };
const caught = (f: () => unknown): unknown => {
  try {
    f();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
};

test('a bad setting names the flag it was given by, the flag that implied it, or the config file', () => {
  const range = caught(() => resolveRunConfig({ increment: 0 }));
  assert.ok(range instanceof ConfigError && range.key === 'increment');
  const byFlag = inUserTerms(range, { ...none, flags: { increment: '0' } });
  assert.ok(byFlag instanceof UsageError);
  assert.equal((byFlag as Error).message, 'run: --increment must be >= 1, got 0');
  const byFile = inUserTerms(range, { ...none, configFile: 'my.json', fileKeys: new Set(['increment']) }) as Clap4ClipError;
  assert.deepEqual([byFile instanceof UsageError, byFile.file, byFile.message], [false, 'my.json', 'my.json: "increment" must be >= 1, got 0']);
  const implied = inUserTerms(new ConfigError('baseClasses', 'scenario: base task size must be an integer in [1, 10], got 60'), { ...none, implied: { baseClasses: '--few-shot (a first task of 60 classes)' } });
  assert.equal((implied as Error).message, 'run: --few-shot (a first task of 60 classes): base task size must be an integer in [1, 10], got 60');
  const split = inUserTerms(new ConfigError('increment', 'scenario: 10 classes do not split'), { ...none, flags: { increment: '7' } });
  assert.equal((split as Error).message, 'run: --increment 7: 10 classes do not split');
  const orderFile = inUserTerms(new ConfigError('classOrder', 'scenario: the class order lists 3 labels'), { ...none, flags: { classOrder: 'order.txt' } }) as Clap4ClipError;
  assert.deepEqual([orderFile.file, orderFile.message], ['order.txt', 'order.txt: class-order file: the class order lists 3 labels']);
  const byDefault = inUserTerms(new ConfigError('increment', 'scenario: 15 classes do not split'), none);
  assert.equal((byDefault as Error).message, 'run: 15 classes do not split (set --increment)');
  const other = new Error('not a setting');
  assert.equal(inUserTerms(other, none), other);
});

test('numbers are printed as numbers: NaN is NaN, not null', async () => {
  assert.deepEqual([shown(NaN), shown(-Infinity), shown(3), shown('3'), shown([1, NaN]), shown(null)], ['NaN', '-Infinity', '3', '"3"', '[1,"NaN"]', 'null']);
  assert.throws(() => resolveRunConfig({ lr: NaN }), /"lr" must be a finite number or null, got NaN$/);
  await assert.rejects(createClassifier({ dim: NaN }), /"dim" must be an integer >= 1, got NaN/);
});

test("the library's syntax becomes the flag; a saved classifier naming an unknown method names its state.json", () => {
  const lib = new DataError('out/dir', 'already contains a features dataset (manifest.json); pass { overwrite: true } to replace it');
  const cli = inFlagTerms(lib, '{ overwrite: true }', '--overwrite') as Clap4ClipError;
  assert.equal(cli.message, 'out/dir: already contains a features dataset (manifest.json); give --overwrite to replace it');
  const state = { format: CLASSIFIER_FORMAT, version: CLASSIFIER_VERSION, settings: { method: 'clapp' } };
  assert.throws(() => parseStateFile(state, 'saved/state.json'), (e: unknown) => e instanceof DataError && e.file === 'saved/state.json' && /settings\.method "clapp" is not a method of this clap4clip \(one of \[clap, /.test(e.message));
});

test('a run directory holding other settings names them as flags', () => {
  assert.equal(
    keysAsFlags('holds a run with a different config; differing keys: memorySize (1000 -> 5), method ("clap" -> "zeroshot") (choose another --out, or --force to replace that run)'),
    'holds a run with a different config; differing keys: --memory-size (1000 -> 5), --method ("clap" -> "zeroshot") (choose another --out, or --force to replace that run)',
  );
  assert.equal(keysAsFlags('cannot resume with a changed config; differing keys: method, seed'), 'cannot resume with a changed config; differing keys: --method, --seed');
  const err = inUserTerms(new Clap4ClipError('holds a run with a different config; differing keys: increment (5 -> 2)', { file: 'runs/x' }), none) as Clap4ClipError;
  assert.deepEqual([err.file, err.message], ['runs/x', 'runs/x: holds a run with a different config; differing keys: --increment (5 -> 2)']);
});
