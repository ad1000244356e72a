/**
 * Read/write a features dataset directory:
 *   manifest.json      format, version, encoder, dim D, logitScale, classNames (C), templates (P), extra?
 *   text.safetensors   "e": F32 [C, P, D], unit-norm rows
 *   train.safetensors  "features": F32 [N, V, D] (unit norm per view), "labels": I32 [N]
 *   test.safetensors   same as train
 * The manifest is written last, so a directory with a manifest is a complete dataset.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { withDirLock } from '../util/dirLock.js';
import { readInputText } from '../util/inputFile.js';
import { readSafetensors, writeSafetensors, type SafeDType, type SafeTensor, type SafetensorsContent } from './safetensors.js';
import type { FeaturesDataset, FeaturesManifest, FeaturesSplit } from './types.js';

export const MANIFEST_FILE = 'manifest.json';
export const TEXT_FILE = 'text.safetensors';
export const TRAIN_FILE = 'train.safetensors';
export const TEST_FILE = 'test.safetensors';
const REQUIRED_FILES = 'manifest.json, text.safetensors, train.safetensors and test.safetensors';

/** Allowed |‖x‖ − 1| for rows that must be unit norm (float32 round-off is ~1e-7). */
export const NORM_TOLERANCE = 1e-3;

export interface ValidateOptions {
  /** Check that every text/feature row has unit L2 norm (default true). */
  checkNorm?: boolean;
  /** Directory used to name files in error messages (default: bare file names). */
  dir?: string;
}

export interface WriteOptions {
  /** Replace a dataset already in `dir` (default false: refuse, so nothing is lost by accident). */
  overwrite?: boolean;
  /** Check unit norms before writing (default true). */
  checkNorm?: boolean;
}

type SplitName = 'train' | 'test';

function filesIn(dir: string | undefined) {
  const at = (f: string) => (dir === undefined ? f : path.join(dir, f));
  return { manifest: at(MANIFEST_FILE), text: at(TEXT_FILE), train: at(TRAIN_FILE), test: at(TEST_FILE) };
}

function typeName(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'array';
  if (ArrayBuffer.isView(x)) return x.constructor.name;
  return typeof x;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Manifest

const MANIFEST_KEYS = new Set(['format', 'version', 'encoder', 'dim', 'logitScale', 'classNames', 'templates', 'extra']);

/** Check an untrusted manifest value and return a clean copy. Errors name `file`. */
export function parseManifest(raw: unknown, file: string): FeaturesManifest {
  const fail = (problem: string): never => {
    throw new DataError(file, problem);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(`manifest must be a JSON object, got ${typeName(raw)}`);
  const m = raw as Record<string, unknown>;
  const need = (key: string): unknown => (key in m ? m[key] : fail(`missing key "${key}"`));

  const format = need('format');
  if (format !== 'clap4clip-features') fail(`"format" is ${JSON.stringify(format)}, expected "clap4clip-features"`);
  const version = need('version');
  if (version !== 1) fail(`unsupported "version" ${JSON.stringify(version)}, expected 1`);
  const encoder = need('encoder');
  if (typeof encoder !== 'string') return fail(`"encoder" must be a string, got ${typeName(encoder)}`);
  const dim = need('dim');
  if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim <= 0) {
    return fail(`"dim" must be a positive integer, got ${JSON.stringify(dim)}`);
  }
  const logitScale = need('logitScale');
  if (typeof logitScale !== 'number' || !Number.isFinite(logitScale) || logitScale <= 0) {
    return fail(`"logitScale" must be a positive finite number, got ${JSON.stringify(logitScale)}`);
  }
  const classNames = stringList(need('classNames'), 'classNames', fail);
  if (classNames.length === 0) fail('"classNames" is empty; a dataset needs at least one class');
  const firstIndex = new Map<string, number>();
  classNames.forEach((name, i) => {
    const j = firstIndex.get(name);
    if (j !== undefined) fail(`"classNames" has duplicate ${JSON.stringify(name)} at indices ${j} and ${i}`);
    firstIndex.set(name, i);
  });
  const templates = stringList(need('templates'), 'templates', fail);
  if (templates.length === 0) fail('"templates" is empty; text.safetensors needs at least one template per class');
  const extra = m['extra'];
  if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra))) {
    fail(`"extra" must be a JSON object, got ${typeName(extra)}`);
  }
  for (const key of Object.keys(m)) {
    if (!MANIFEST_KEYS.has(key)) fail(`unknown key ${JSON.stringify(key)} (put free-form facts under "extra")`);
  }

  const out: FeaturesManifest = { format: 'clap4clip-features', version: 1, encoder, dim, logitScale, classNames, templates };
  if (extra !== undefined) out.extra = structuredClone(extra as Record<string, unknown>);
  return out;
}

function stringList(value: unknown, key: string, fail: (problem: string) => never): string[] {
  if (!Array.isArray(value)) return fail(`"${key}" must be an array of strings, got ${typeName(value)}`);
  value.forEach((v, i) => {
    if (typeof v !== 'string' || v.length === 0) fail(`"${key}"[${i}] must be a non-empty string, got ${JSON.stringify(v)}`);
  });
  return (value as string[]).slice();
}

// ---------------------------------------------------------------------------------------------
// Value checks shared by load and write. `file`/`tensor` name where the values live on disk.

/** Row-major index -> "[i, j, k]" for error messages. */
function coords(flat: number, shape: readonly number[]): string {
  const out: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k]!;
    out.unshift(flat % d);
    flat = Math.floor(flat / d);
  }
  return fmtShape(out);
}

function checkFinite(file: string, tensor: string, data: Float32Array, shape: readonly number[]): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) {
      throw new DataError(file, `tensor "${tensor}" has a non-finite value (${v}) at index ${i} ${coords(i, shape)}`);
    }
  }
}

function checkUnitRows(file: string, tensor: string, data: Float32Array, shape: readonly number[]): void {
  const d = shape[shape.length - 1]!;
  for (let row = 0; row * d < data.length; row++) {
    let sq = 0;
    for (let k = row * d; k < (row + 1) * d; k++) sq += data[k]! * data[k]!;
    const norm = Math.sqrt(sq);
    if (Math.abs(norm - 1) > NORM_TOLERANCE) {
      const where = coords(row * d, shape).replace(/, 0\]$/, ']');
      throw new DataError(
        file,
        `tensor "${tensor}" row ${where} has L2 norm ${norm.toPrecision(6)}, expected 1 (tolerance ${NORM_TOLERANCE}); pass checkNorm: false to skip this check`,
      );
    }
  }
}

function checkLabels(file: string, labels: Int32Array, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (y < 0 || y >= numClasses) {
      throw new DataError(file, `tensor "labels" value ${y} at index ${i} is outside [0, ${numClasses}) (manifest.json has ${numClasses} classNames)`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// In-memory validation

/**
 * Check a dataset completely: manifest, array types and sizes, finite values, label range and
 * (unless `checkNorm: false`) unit norms. Throws a DataError naming the file the bad part belongs to.
 */
export function validateFeaturesDataset(ds: FeaturesDataset, opts: ValidateOptions = {}): void {
  const files = filesIn(opts.dir);
  const checkNorm = opts.checkNorm ?? true;
  const manifest = parseManifest(ds.manifest, files.manifest);
  const C = manifest.classNames.length;
  const P = manifest.templates.length;
  const D = manifest.dim;

  if (ds.numClasses !== C) throw new DataError(files.text, `numClasses is ${ds.numClasses} but manifest.json lists ${C} classNames`);
  if (ds.numTemplates !== P) throw new DataError(files.text, `numTemplates is ${ds.numTemplates} but manifest.json lists ${P} templates`);
  if (!(ds.text instanceof Float32Array)) throw new DataError(files.text, `tensor "e" must be a Float32Array (F32), got ${typeName(ds.text)}`);
  if (ds.text.length !== C * P * D) {
    throw new DataError(files.text, `tensor "e" has ${ds.text.length} values, expected C*P*D = ${C}*${P}*${D} = ${C * P * D}`);
  }
  checkFinite(files.text, 'e', ds.text, [C, P, D]);
  if (checkNorm) checkUnitRows(files.text, 'e', ds.text, [C, P, D]);

  for (const name of ['train', 'test'] as const) validateSplit(files[name], ds[name], D, C, checkNorm);
}

function validateSplit(file: string, split: FeaturesSplit, D: number, C: number, checkNorm: boolean): void {
  const fail = (problem: string): never => {
    throw new DataError(file, problem);
  };
  const { n, views, dim } = split;
  for (const [key, v] of [['n', n], ['views', views], ['dim', dim]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) fail(`split "${key}" must be a non-negative integer, got ${v}`);
  }
  if (n === 0) fail('split has N = 0 examples; every split needs at least one');
  if (views === 0) fail('split has V = 0 views per example; need at least one');
  if (dim !== D) fail(`split dim is ${dim} but manifest.json dim is ${D}`);
  if (!(split.features instanceof Float32Array)) fail(`tensor "features" must be a Float32Array (F32), got ${typeName(split.features)}`);
  if (!(split.labels instanceof Int32Array)) fail(`tensor "labels" must be an Int32Array (I32), got ${typeName(split.labels)}`);
  if (split.features.length !== n * views * D) {
    fail(`tensor "features" has ${split.features.length} values, expected N*V*D = ${n}*${views}*${D} = ${n * views * D}`);
  }
  if (split.labels.length !== n) fail(`tensor "labels" has ${split.labels.length} entries, expected N = ${n}`);
  checkLabels(file, split.labels, C);
  checkFinite(file, 'features', split.features, [n, views, D]);
  if (checkNorm) checkUnitRows(file, 'features', split.features, [n, views, D]);
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Fetch tensor `name`, checking presence, dtype and rank. */
function getTensor(content: SafetensorsContent, file: string, name: string, dtype: SafeDType, dims: string[]): SafeTensor {
  const t = content.tensors[name];
  if (t === undefined) {
    const found = Object.keys(content.tensors).map((k) => JSON.stringify(k)).join(', ') || 'none';
    throw new DataError(file, `missing tensor "${name}" (found: ${found})`);
  }
  if (t.dtype !== dtype) throw new DataError(file, `tensor "${name}" has dtype ${t.dtype}, expected ${dtype}`);
  if (t.shape.length !== dims.length) {
    throw new DataError(file, `tensor "${name}" has shape ${fmtShape(t.shape)} (rank ${t.shape.length}), expected rank ${dims.length} [${dims.join(', ')}]`);
  }
  return t;
}

/** Reject tensors we would silently drop on a load/write round trip. */
function noOtherTensors(content: SafetensorsContent, file: string, expected: string[]): void {
  for (const name of Object.keys(content.tensors)) {
    if (!expected.includes(name)) {
      throw new DataError(file, `unexpected tensor ${JSON.stringify(name)} (expected only ${expected.map((e) => `"${e}"`).join(' and ')})`);
    }
  }
}

function loadText(content: SafetensorsContent, file: string, m: FeaturesManifest): Float32Array {
  noOtherTensors(content, file, ['e']);
  const e = getTensor(content, file, 'e', 'F32', ['C', 'P', 'D']);
  const [c, p, d] = e.shape as [number, number, number];
  const shape = fmtShape(e.shape);
  if (d !== m.dim) throw new DataError(file, `tensor "e" has D = ${d} (shape ${shape}) but manifest.json dim is ${m.dim}`);
  if (c !== m.classNames.length) {
    throw new DataError(file, `tensor "e" has C = ${c} classes (shape ${shape}) but manifest.json lists ${m.classNames.length} classNames`);
  }
  if (p !== m.templates.length) {
    throw new DataError(file, `tensor "e" has P = ${p} templates (shape ${shape}) but manifest.json lists ${m.templates.length} templates`);
  }
  return e.data as Float32Array;
}

function loadSplit(content: SafetensorsContent, file: string, m: FeaturesManifest): FeaturesSplit {
  noOtherTensors(content, file, ['features', 'labels']);
  const features = getTensor(content, file, 'features', 'F32', ['N', 'V', 'D']);
  const labels = getTensor(content, file, 'labels', 'I32', ['N']);
  const [n, views, dim] = features.shape as [number, number, number];
  const shape = fmtShape(features.shape);
  if (dim !== m.dim) throw new DataError(file, `tensor "features" has D = ${dim} (shape ${shape}) but manifest.json dim is ${m.dim}`);
  if (n === 0) throw new DataError(file, `split has N = 0 examples (tensor "features" shape ${shape}); every split needs at least one`);
  if (labels.shape[0] !== n) {
    throw new DataError(file, `tensor "labels" has ${labels.shape[0]} entries but tensor "features" has N = ${n} (shape ${shape})`);
  }
  return { features: features.data as Float32Array, labels: labels.data as Int32Array, n, views, dim };
}

/** The manifest of a features dataset, read and checked (errors name the file). */
export async function readManifestFile(file: string): Promise<FeaturesManifest> {
  const text = await readInputText(file, 'features dataset manifest');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DataError(file, `not valid JSON (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  return parseManifest(raw, file);
}

async function assertDirectory(dir: string, missingIsError: boolean): Promise<boolean> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new DataError(dir, 'not a directory');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (missingIsError) throw new DataError(dir, 'features dataset directory not found', { cause: err });
    return false;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new DataError(file, `cannot access file (${(err as Error).message})`, { cause: err });
  }
}

/** Load and fully validate a features dataset directory (unit-norm check on unless `checkNorm: false`). */
export async function loadFeaturesDataset(dir: string, opts: { checkNorm?: boolean } = {}): Promise<FeaturesDataset> {
  await assertDirectory(dir, true);
  const files = filesIn(dir);
  for (const file of [files.manifest, files.text, files.train, files.test]) {
    if (!(await exists(file))) throw new DataError(file, `file not found; a features dataset directory needs ${REQUIRED_FILES}`);
  }
  const manifest = await readManifestFile(files.manifest);
  const text = loadText(await readSafetensors(files.text), files.text, manifest);
  const splits = {} as Record<SplitName, FeaturesSplit>;
  for (const name of ['train', 'test'] as const) splits[name] = loadSplit(await readSafetensors(files[name]), files[name], manifest);

  const ds: FeaturesDataset = {
    manifest,
    text,
    numClasses: manifest.classNames.length,
    numTemplates: manifest.templates.length,
    train: splits.train,
    test: splits.test,
  };
  validateFeaturesDataset(ds, { dir, checkNorm: opts.checkNorm ?? true });
  return ds;
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * Validate `ds`, then write it to `dir` (created if needed). Each file is written atomically and
 * the manifest last; when overwriting, the old manifest is removed first so a failure part-way
 * leaves a directory that clearly is not a complete dataset instead of a mix of old and new.
 */
export async function writeFeaturesDataset(dir: string, ds: FeaturesDataset, opts: WriteOptions = {}): Promise<void> {
  validateFeaturesDataset(ds, { dir, checkNorm: opts.checkNorm ?? true });
  // One writer per folder (`util/dirLock.ts`): a second writer of `dir` is refused, naming the first.
  await withDirLock(dir, {}, () => writeValidated(dir, ds, opts));
}

async function writeValidated(dir: string, ds: FeaturesDataset, opts: WriteOptions): Promise<void> {
  const files = filesIn(dir);
  if (await assertDirectory(dir, false)) {
    if (await exists(files.manifest)) {
      if (opts.overwrite !== true) {
        throw new DataError(dir, `already contains a features dataset (${MANIFEST_FILE}); pass { overwrite: true } to replace it`);
      }
      await rm(files.manifest);
    }
  } else {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new Clap4ClipError(`cannot create directory (${(err as Error).message})`, { file: dir, cause: err });
    }
  }

  const { manifest } = ds;
  const C = manifest.classNames.length;
  const P = manifest.templates.length;
  await writeSafetensors(files.text, { e: { dtype: 'F32', shape: [C, P, manifest.dim], data: ds.text } });
  for (const name of ['train', 'test'] as const) {
    const s = ds[name];
    await writeSafetensors(files[name], {
      features: { dtype: 'F32', shape: [s.n, s.views, s.dim], data: s.features },
      labels: { dtype: 'I32', shape: [s.n], data: s.labels },
    });
  }
  await writeJsonAtomic(files.manifest, parseManifest(manifest, files.manifest));
}
