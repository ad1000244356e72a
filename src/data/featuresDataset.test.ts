import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DataError } from '../util/errors.js';
import { loadFeaturesDataset, validateFeaturesDataset, writeFeaturesDataset } from './featuresDataset.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from './safetensors.js';
import type { FeaturesDataset, FeaturesSplit } from './types.js';

const REQUIRED = 'a features dataset directory needs manifest.json, text.safetensors, train.safetensors and test.safetensors';

/** Deterministic unit-norm rows (LCG, so tests do not depend on Math.random). */
function unitRows(rows: number, d: number, seed: number): Float32Array {
  const out = new Float32Array(rows * d);
  let s = seed >>> 0;
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let k = 0; k < d; k++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const v = s / 2 ** 32 - 0.5;
      out[r * d + k] = v;
      sq += v * v;
    }
    for (let k = 0; k < d; k++) out[r * d + k]! /= Math.sqrt(sq);
  }
  return out;
}

function makeSplit(n: number, views: number, dim: number, numClasses: number, seed: number): FeaturesSplit {
  const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
  return { features: unitRows(n * views, dim, seed), labels, n, views, dim };
}

/** C = 3 classes, P = 2 templates, D = 4, V = 2 views, 5 train and 4 test examples. */
function makeDataset(): FeaturesDataset {
  const C = 3;
  const P = 2;
  const D = 4;
  return {
    manifest: {
      format: 'clap4clip-features',
      version: 1,
      encoder: 'synthetic',
      dim: D,
      logitScale: 100,
      classNames: ['cat', 'dog', 'ünïcorn'],
      templates: ['a photo of a {}.', 'a drawing of a {}.'],
      extra: { synthetic: true, seed: 7, nested: { a: [1, 2] } },
    },
    text: unitRows(C * P, D, 1),
    numClasses: C,
    numTemplates: P,
    train: makeSplit(5, 2, D, C, 2),
    test: makeSplit(4, 2, D, C, 3),
  };
}

function splitTensors(s: FeaturesSplit): Record<string, SafeTensor> {
  return {
    features: { dtype: 'F32', shape: [s.n, s.views, s.dim], data: s.features },
    labels: { dtype: 'I32', shape: [s.n], data: s.labels },
  };
}

async function expectLoadError(dir: string, message: string | RegExp, opts?: { checkNorm?: boolean }): Promise<void> {
  await assert.rejects(loadFeaturesDataset(dir, opts), (err: unknown) => {
    assert.ok(err instanceof DataError, `expected DataError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('features dataset directory', () => {
  let root = '';
  let dir = '';
  let counter = 0;
  const at = (f: string) => path.join(dir, f);

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'clap4clip-fd-'));
  });
  // Each test gets a freshly written valid dataset in its own folder.
  beforeEach(async () => {
    dir = path.join(root, `ds${counter++}`);
    await writeFeaturesDataset(dir, makeDataset());
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('round-trips through disk exactly, with the four files and a pretty manifest', async () => {
    const ds = makeDataset();
    assert.deepEqual(await loadFeaturesDataset(dir), ds);
    assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'test.safetensors', 'text.safetensors', 'train.safetensors']);
    const manifestText = await readFile(at('manifest.json'), 'utf8');
    assert.equal(manifestText, JSON.stringify(ds.manifest, null, 2) + '\n');
    const train = await readSafetensors(at('train.safetensors'));
    assert.deepEqual(train.tensors['labels'], { dtype: 'I32', shape: [5], data: ds.train.labels });
    assert.deepEqual(train.tensors['features']!.shape, [5, 2, 4]);
  });

  it('refuses to overwrite an existing dataset unless asked, then replaces it', async () => {
    const ds = makeDataset();
    ds.manifest.encoder = 'other';
    await assert.rejects(writeFeaturesDataset(dir, ds), {
      name: 'DataError',
      message: `${dir}: already contains a features dataset (manifest.json); pass { overwrite: true } to replace it`,
    });
    assert.equal((await loadFeaturesDataset(dir)).manifest.encoder, 'synthetic');
    await writeFeaturesDataset(dir, ds, { overwrite: true });
    assert.deepEqual(await loadFeaturesDataset(dir), ds);
  });

  it('writes the manifest last: a write that fails part-way leaves no manifest', async () => {
    const fresh = path.join(root, `fail${counter++}`);
    await mkdir(path.join(fresh, 'test.safetensors'), { recursive: true }); // rename onto a directory fails
    await assert.rejects(writeFeaturesDataset(fresh, makeDataset()), { message: /test\.safetensors: atomic write failed: / });
    assert.deepEqual((await readdir(fresh)).sort(), ['test.safetensors', 'text.safetensors', 'train.safetensors']);
    await expectLoadError(fresh, `${path.join(fresh, 'manifest.json')}: file not found; ${REQUIRED}`);

    // Overwriting: the old manifest goes first, so no mix of old and new files looks complete.
    await rm(at('test.safetensors'));
    await mkdir(at('test.safetensors'));
    await assert.rejects(writeFeaturesDataset(dir, makeDataset(), { overwrite: true }));
    await expectLoadError(dir, `${at('manifest.json')}: file not found; ${REQUIRED}`);
  });

  it('validates before writing anything', async () => {
    const target = path.join(root, `never${counter++}`);
    const ds = makeDataset();
    ds.train.labels[2] = 3;
    await assert.rejects(writeFeaturesDataset(target, ds), {
      message: `${path.join(target, 'train.safetensors')}: tensor "labels" value 3 at index 2 is outside [0, 3) (manifest.json has 3 classNames)`,
    });
    await assert.rejects(readdir(target), { code: 'ENOENT' });
  });

  it('reports a missing or non-directory path', async () => {
    const missing = path.join(root, 'does-not-exist');
    await expectLoadError(missing, `${missing}: features dataset directory not found`);
    await expectLoadError(at('manifest.json'), `${at('manifest.json')}: not a directory`);
  });

  for (const file of ['manifest.json', 'text.safetensors', 'train.safetensors', 'test.safetensors']) {
    it(`reports which file is missing: ${file}`, async () => {
      await rm(at(file));
      await expectLoadError(dir, `${at(file)}: file not found; ${REQUIRED}`);
    });
  }

  it('rejects a manifest that is not JSON', async () => {
    await writeFile(at('manifest.json'), '{"format": "clap4clip-features",');
    await expectLoadError(dir, new RegExp(`^${at('manifest.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(.+\\)$`));
  });

  const manifestCases: Array<[string, (m: Record<string, unknown>) => unknown, string]> = [
    ['not an object', () => [1], 'manifest must be a JSON object, got array'],
    ['missing key', (m) => (delete m['encoder'], m), 'missing key "encoder"'],
    ['wrong format', (m) => ({ ...m, format: 'other' }), '"format" is "other", expected "clap4clip-features"'],
    ['wrong version', (m) => ({ ...m, version: 2 }), 'unsupported "version" 2, expected 1'],
    ['encoder type', (m) => ({ ...m, encoder: 5 }), '"encoder" must be a string, got number'],
    ['dim type', (m) => ({ ...m, dim: '4' }), '"dim" must be a positive integer, got "4"'],
    ['dim zero', (m) => ({ ...m, dim: 0 }), '"dim" must be a positive integer, got 0'],
    ['dim fraction', (m) => ({ ...m, dim: 1.5 }), '"dim" must be a positive integer, got 1.5'],
    ['logitScale', (m) => ({ ...m, logitScale: -1 }), '"logitScale" must be a positive finite number, got -1'],
    ['classNames type', (m) => ({ ...m, classNames: 'cat' }), '"classNames" must be an array of strings, got string'],
    ['classNames element', (m) => ({ ...m, classNames: ['a', 3, 'c'] }), '"classNames"[1] must be a non-empty string, got 3'],
    ['classNames empty', (m) => ({ ...m, classNames: [] }), '"classNames" is empty; a dataset needs at least one class'],
    ['classNames duplicate', (m) => ({ ...m, classNames: ['a', 'b', 'a'] }), '"classNames" has duplicate "a" at indices 0 and 2'],
    ['templates empty', (m) => ({ ...m, templates: [] }), '"templates" is empty; text.safetensors needs at least one template per class'],
    ['extra type', (m) => ({ ...m, extra: [1] }), '"extra" must be a JSON object, got array'],
    ['unknown key', (m) => ({ ...m, classnames: [] }), 'unknown key "classnames" (put free-form facts under "extra")'],
  ];
  for (const [name, mutate, problem] of manifestCases) {
    it(`rejects a bad manifest: ${name}`, async () => {
      const m = JSON.parse(await readFile(at('manifest.json'), 'utf8')) as Record<string, unknown>;
      await writeFile(at('manifest.json'), JSON.stringify(mutate(m)));
      await expectLoadError(dir, `${at('manifest.json')}: ${problem}`);
    });
  }

  it('checks text.safetensors dtype, rank and shape against the manifest', async () => {
    const ds = makeDataset();
    const file = at('text.safetensors');
    await writeSafetensors(file, { e: { dtype: 'F64', shape: [3, 2, 4], data: Float64Array.from(ds.text) } });
    await expectLoadError(dir, `${file}: tensor "e" has dtype F64, expected F32`);
    await writeSafetensors(file, { e: { dtype: 'F32', shape: [6, 4], data: ds.text } });
    await expectLoadError(dir, `${file}: tensor "e" has shape [6, 4] (rank 2), expected rank 3 [C, P, D]`);
    await writeSafetensors(file, { e: { dtype: 'F32', shape: [3, 1, 8], data: ds.text } });
    await expectLoadError(dir, `${file}: tensor "e" has D = 8 (shape [3, 1, 8]) but manifest.json dim is 4`);
    await writeSafetensors(file, { e: { dtype: 'F32', shape: [2, 3, 4], data: ds.text } });
    await expectLoadError(dir, `${file}: tensor "e" has C = 2 classes (shape [2, 3, 4]) but manifest.json lists 3 classNames`);
    await writeSafetensors(file, { e: { dtype: 'F32', shape: [3, 1, 4], data: ds.text.subarray(0, 12) } });
    await expectLoadError(dir, `${file}: tensor "e" has P = 1 templates (shape [3, 1, 4]) but manifest.json lists 2 templates`);
    await writeSafetensors(file, { f: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
    await expectLoadError(dir, `${file}: unexpected tensor "f" (expected only "e")`);
    await writeSafetensors(file, {});
    await expectLoadError(dir, `${file}: missing tensor "e" (found: none)`);
  });

  it('checks split tensors: dtype, rank, D, label count, N = 0, extra tensors', async () => {
    const s = makeDataset().train;
    const file = at('train.safetensors');
    const good = splitTensors(s);
    await writeSafetensors(file, { ...good, labels: { dtype: 'F32', shape: [5], data: Float32Array.from(s.labels) } });
    await expectLoadError(dir, `${file}: tensor "labels" has dtype F32, expected I32`);
    await writeSafetensors(file, { ...good, features: { dtype: 'F32', shape: [10, 4], data: s.features } });
    await expectLoadError(dir, `${file}: tensor "features" has shape [10, 4] (rank 2), expected rank 3 [N, V, D]`);
    await writeSafetensors(file, { ...good, features: { dtype: 'F32', shape: [5, 1, 8], data: s.features } });
    await expectLoadError(dir, `${file}: tensor "features" has D = 8 (shape [5, 1, 8]) but manifest.json dim is 4`);
    await writeSafetensors(file, { ...good, labels: { dtype: 'I32', shape: [4], data: s.labels.subarray(0, 4) } });
    await expectLoadError(dir, `${file}: tensor "labels" has 4 entries but tensor "features" has N = 5 (shape [5, 2, 4])`);
    await writeSafetensors(file, splitTensors({ ...s, n: 0, features: new Float32Array(0), labels: new Int32Array(0) }));
    await expectLoadError(dir, `${file}: split has N = 0 examples (tensor "features" shape [0, 2, 4]); every split needs at least one`);
    await writeSafetensors(file, { features: good['features']! });
    await expectLoadError(dir, `${file}: missing tensor "labels" (found: "features")`);
    await writeSafetensors(file, { ...good, extra: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } });
    await expectLoadError(dir, `${file}: unexpected tensor "extra" (expected only "features" and "labels")`);
  });

  it('rejects labels out of range', async () => {
    const s = makeDataset().test;
    const file = at('test.safetensors');
    for (const [index, bad] of [[1, -1], [3, 3]] as const) {
      const labels = Int32Array.from(s.labels);
      labels[index] = bad;
      await writeSafetensors(file, splitTensors({ ...s, labels }));
      await expectLoadError(dir, `${file}: tensor "labels" value ${bad} at index ${index} is outside [0, 3) (manifest.json has 3 classNames)`);
    }
  });

  it('reports the first non-finite value with its index', async () => {
    const ds = makeDataset();
    const features = Float32Array.from(ds.train.features);
    features[13] = NaN; // n = 1, v = 1, d = 1 with V = 2, D = 4
    features[20] = Infinity;
    await writeSafetensors(at('train.safetensors'), splitTensors({ ...ds.train, features }));
    await expectLoadError(dir, `${at('train.safetensors')}: tensor "features" has a non-finite value (NaN) at index 13 [1, 1, 1]`);
    const text = Float32Array.from(ds.text);
    text[22] = -Infinity;
    await writeSafetensors(at('text.safetensors'), { e: { dtype: 'F32', shape: [3, 2, 4], data: text } });
    await expectLoadError(dir, `${at('text.safetensors')}: tensor "e" has a non-finite value (-Infinity) at index 22 [2, 1, 2]`);
  });

  it('checks unit norms by default and skips them with checkNorm: false', async () => {
    const ds = makeDataset();
    const features = Float32Array.from(ds.test.features);
    for (let k = 20; k < 24; k++) features[k]! *= 2; // row n = 2, v = 1
    await writeSafetensors(at('test.safetensors'), splitTensors({ ...ds.test, features }));
    await expectLoadError(
      dir,
      `${at('test.safetensors')}: tensor "features" row [2, 1] has L2 norm 2.00000, expected 1 (tolerance 0.001); pass checkNorm: false to skip this check`,
    );
    const loaded = await loadFeaturesDataset(dir, { checkNorm: false });
    assert.deepEqual(loaded.test.features, features);

    const text = Float32Array.from(ds.text);
    for (let k = 4; k < 8; k++) text[k]! *= 1.002; // row c = 0, p = 1: just outside the tolerance
    await writeSafetensors(at('text.safetensors'), { e: { dtype: 'F32', shape: [3, 2, 4], data: text } });
    await expectLoadError(dir, /text\.safetensors: tensor "e" row \[0, 1\] has L2 norm 1\.00200, expected 1/);
  });

  it('names the file when a safetensors file is truncated', async () => {
    const file = at('train.safetensors');
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, bytes.length - 4));
    await expectLoadError(dir, `${file}: tensor "labels" data_offsets [160, 180] out of bounds (data buffer is 176 bytes; file truncated?)`);
  });
});

describe('validateFeaturesDataset (in memory)', () => {
  it('accepts a valid dataset and names bare files when no dir is given', () => {
    validateFeaturesDataset(makeDataset());
    const ds = makeDataset();
    ds.numClasses = 4;
    assert.throws(() => validateFeaturesDataset(ds), { message: 'text.safetensors: numClasses is 4 but manifest.json lists 3 classNames' });
  });

  it('checks array types and sizes', () => {
    const cases: Array<[(ds: FeaturesDataset) => void, string]> = [
      [(ds) => (ds.text = new Float32Array(5)), 'text.safetensors: tensor "e" has 5 values, expected C*P*D = 3*2*4 = 24'],
      [(ds) => (ds.train.features = new Float32Array(39)), 'train.safetensors: tensor "features" has 39 values, expected N*V*D = 5*2*4 = 40'],
      [(ds) => (ds.test.labels = new Float32Array(4) as unknown as Int32Array), 'test.safetensors: tensor "labels" must be an Int32Array (I32), got Float32Array'],
      [(ds) => (ds.test.labels = new Int32Array(3)), 'test.safetensors: tensor "labels" has 3 entries, expected N = 4'],
      [(ds) => (ds.train.dim = 5), 'train.safetensors: split dim is 5 but manifest.json dim is 4'],
      [(ds) => (ds.test.n = 0), 'test.safetensors: split has N = 0 examples; every split needs at least one'],
      [(ds) => (ds.train.views = 1.5), 'train.safetensors: split "views" must be a non-negative integer, got 1.5'],
    ];
    for (const [mutate, message] of cases) {
      const ds = makeDataset();
      mutate(ds);
      assert.throws(() => validateFeaturesDataset(ds), { name: 'DataError', message });
    }
  });

  it('uses the dir option to name files', () => {
    const ds = makeDataset();
    ds.manifest.classNames = ['a', 'a', 'b'];
    assert.throws(() => validateFeaturesDataset(ds, { dir: '/data/x' }), {
      message: `${path.join('/data/x', 'manifest.json')}: "classNames" has duplicate "a" at indices 0 and 1`,
    });
  });
});
