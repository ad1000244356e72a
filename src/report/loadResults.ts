/**
 * Reads and validates the `results.json` of run directories for the report. The report is often
 * run on directories written by other versions or copied around, so everything is checked and
 * every problem names the file and the key (`key "accuracyMatrix[2][1]": ...`) instead of
 * surfacing later as a broken chart or a stack trace.
 *
 * A few spellings are accepted for keys whose name moved between versions of the writer:
 * the method (`config.method` or top-level `method`), the per-step accuracies (`stepAccuracies`
 * or `stepAccuracy`, computed from the matrix when absent) and the evaluation batching
 * (`evalBatching`, `ece.evalBatching` or `config.evalBatching`).
 */
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { readInputText } from '../util/inputFile.js';
import { readBins, readExtras, type ReportExtras } from './loadExtras.js';

export const RESULTS_FILE = 'results.json';

export interface TaskRecord {
  index: number;
  classStart: number;
  classEnd: number;
}

/** One confidence bin; empty bins (count 0) carry no meaningful confidence/accuracy. */
export interface ReliabilityBinRecord {
  lower: number;
  upper: number;
  count: number;
  meanConfidence: number;
  accuracy: number;
}

/** `step` is the 0-based task index after which the data was measured. */
export interface ReliabilityRecord {
  step: number;
  bins: ReliabilityBinRecord[];
}

export interface NoveltyRecord {
  step: number;
  score: string;
  auroc: number;
  aupr: number;
  fpr95: number;
  roc?: { fpr: number[]; tpr: number[] };
}

/** One metric of an optional repeated-runs summary (`runs` key). */
export interface RepeatedRunsEntry {
  metric: string;
  mean: number;
  std: number | null;
}

/** The validated content of one results.json, in the shape the report needs. */
export interface ReportResults extends ReportExtras {
  method: string;
  seed: number | null;
  /** `config.data` (a directory or "synthetic"), with the synthetic preset when there is one. */
  data: string;
  config: Record<string, unknown>;
  synthetic: boolean;
  classOrder: number[];
  tasks: TaskRecord[];
  /** A[t][k], fractions in [0, 1]; row t has t + 1 entries. */
  accuracyMatrix: number[][];
  stepAccuracies: number[];
  averageAccuracy: number;
  lastAccuracy: number;
  backwardTransfer: number | null;
  forgetting: number | null;
  ece: { perBatchMean: number[]; dataset: number[] };
  /** Empty when the run recorded none. */
  reliability: ReliabilityRecord[];
  novelty: NoveltyRecord[];
  timing: number[];
  evalBatching: string | null;
  /** Entries of the repeated-runs summary, empty when the file has none. */
  repeatedRuns: RepeatedRunsEntry[];
  /** Exemplars kept after each step (`steps[].memorySize`; empty when the file has no steps). */
  memorySizes: number[];
  /** The method's notes on reading its results (empty when it has none). */
  notes: string[];
}

export interface LoadedRun {
  /** The run directory (the folder holding results.json). */
  dir: string;
  file: string;
  results: ReportResults;
}

export type Obj = Record<string, unknown>;

/** Validation context: the file, so every failure names it. */
export class Checker {
  constructor(readonly file: string) {}

  fail(key: string, problem: string): never {
    throw new DataError(this.file, `key "${key}": ${problem}`);
  }

  isObject(v: unknown): v is Obj {
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  }

  object(v: unknown, key: string): Obj {
    if (!this.isObject(v)) this.fail(key, `expected an object, got ${show(v)}`);
    return v;
  }

  /** The value at `o[name]`, failing with "missing key" when absent. */
  field(o: Obj, name: string, key: string): unknown {
    if (!(name in o) || o[name] === undefined) throw new DataError(this.file, `missing key "${key}"`);
    return o[name];
  }

  array(v: unknown, key: string, length?: number): unknown[] {
    if (!Array.isArray(v)) this.fail(key, `expected an array, got ${show(v)}`);
    if (length !== undefined && v.length !== length) this.fail(key, `expected ${length} entries, got ${v.length}`);
    return v;
  }

  number(v: unknown, key: string, min = -Infinity, max = Infinity, integer = false): number {
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `expected a finite number, got ${show(v)}`);
    if (integer && !Number.isInteger(v)) this.fail(key, `expected an integer, got ${v}`);
    if (v < min || v > max) this.fail(key, `expected a number in [${min}, ${max}], got ${v}`);
    return v;
  }

  fraction(v: unknown, key: string): number {
    return this.number(v, key, 0, 1);
  }

  numbers(v: unknown, key: string, min: number, max: number, length?: number, integer = false): number[] {
    return this.array(v, key, length).map((x, i) => this.number(x, `${key}[${i}]`, min, max, integer));
  }

  string(v: unknown, key: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(key, `expected a non-empty string, got ${show(v)}`);
    return v;
  }
}

/** Short description of a bad value for messages (never the whole value: it may be huge). */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Turns results.json text into validated results; JSON syntax errors become DataErrors. */
export function parseResults(text: string, file: string): ReportResults {
  if (text.trim() === '') throw new DataError(file, 'file is empty (the run may have been stopped before writing it)');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const truncated = /end of JSON input|Unterminated/i.test(msg) || endsInsideValue(text);
    throw new DataError(file, truncated ? `truncated JSON: the file ends early (${msg})` : `not valid JSON (${msg})`, { cause: err });
  }
  return validateResults(value, file);
}

/**
 * True when the text stops inside an object, array or string: the signature of a file cut
 * short (V8's own message for that depends on where the cut falls, e.g. "Expected ','").
 */
function endsInsideValue(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return inString || depth > 0;
}

/** Checks the parsed results.json against the schema; see the file comment for accepted aliases. */
export function validateResults(value: unknown, file: string): ReportResults {
  // Explicitly typed so `c.fail(...)` (returns never) narrows types after it.
  const c: Checker = new Checker(file);
  if (!c.isObject(value)) throw new DataError(file, `expected a JSON object at the top level, got ${show(value)}`);
  const top = value;
  const config = c.object(c.field(top, 'config', 'config'), 'config');
  let method: string;
  if (config['method'] !== undefined) method = c.string(config['method'], 'config.method');
  else if (top['method'] !== undefined) method = c.string(top['method'], 'method');
  else throw new DataError(file, 'missing key "config.method" (the method name is needed to group runs)');
  const seed = config['seed'] === undefined ? null : c.number(config['seed'], 'config.seed', 0, Number.MAX_SAFE_INTEGER, true);
  let data = config['data'] === undefined ? 'unknown data' : c.string(config['data'], 'config.data');
  if (data === 'synthetic' && typeof config['syntheticPreset'] === 'string') data = `synthetic (${config['syntheticPreset']})`;
  const synthetic = c.field(top, 'synthetic', 'synthetic');
  if (typeof synthetic !== 'boolean') c.fail('synthetic', `expected true or false, got ${show(synthetic)}`);

  const classOrder = c.numbers(c.field(top, 'classOrder', 'classOrder'), 'classOrder', 0, Number.MAX_SAFE_INTEGER, undefined, true);
  const tasks = readTasks(c, c.field(top, 'tasks', 'tasks'), classOrder.length);
  const A = readMatrix(c, c.field(top, 'accuracyMatrix', 'accuracyMatrix'), tasks.length);
  const steps = A.length;

  const stepKey = top['stepAccuracies'] !== undefined ? 'stepAccuracies' : top['stepAccuracy'] !== undefined ? 'stepAccuracy' : null;
  const stepAccuracies =
    stepKey === null ? A.map((row) => row.reduce((a, b) => a + b, 0) / row.length) : c.numbers(top[stepKey], stepKey, 0, 1, steps);

  const ece = c.object(c.field(top, 'ece', 'ece'), 'ece');
  const eceOut = {
    perBatchMean: c.numbers(c.field(ece, 'perBatchMean', 'ece.perBatchMean'), 'ece.perBatchMean', 0, 1, steps),
    dataset: c.numbers(c.field(ece, 'dataset', 'ece.dataset'), 'ece.dataset', 0, 1, steps),
  };
  const batching = top['evalBatching'] ?? ece['evalBatching'] ?? config['evalBatching'];

  return {
    method,
    seed,
    data,
    config,
    synthetic,
    classOrder,
    tasks,
    accuracyMatrix: A,
    stepAccuracies,
    averageAccuracy: c.fraction(c.field(top, 'averageAccuracy', 'averageAccuracy'), 'averageAccuracy'),
    lastAccuracy: c.fraction(c.field(top, 'lastAccuracy', 'lastAccuracy'), 'lastAccuracy'),
    backwardTransfer: nullableNumber(c, top, 'backwardTransfer'),
    forgetting: nullableNumber(c, top, 'forgetting'),
    ece: eceOut,
    reliability: top['reliability'] === undefined ? [] : readReliability(c, top['reliability'], steps),
    novelty: top['novelty'] === undefined ? [] : readNovelty(c, top['novelty'], steps),
    timing: c.numbers(c.field(top, 'timing', 'timing'), 'timing', 0, Infinity),
    evalBatching: batching === undefined ? null : c.string(batching, 'evalBatching'),
    repeatedRuns: top['runs'] === undefined ? [] : readRepeatedRuns(top['runs']),
    notes: top['notes'] === undefined ? [] : c.array(top['notes'], 'notes').map((x, i) => c.string(x, `notes[${i}]`)),
    memorySizes: top['steps'] === undefined ? [] : c.array(top['steps'], 'steps').map((st, i) => c.number(c.field(c.object(st, `steps[${i}]`), 'memorySize', `steps[${i}].memorySize`), `steps[${i}].memorySize`, 0, Number.MAX_SAFE_INTEGER, true)),
    ...readExtras(c, top, steps),
  };
}

/** Differences of accuracies: in [-1, 1], or null (a single task has none). */
function nullableNumber(c: Checker, top: Obj, key: string): number | null {
  const v = c.field(top, key, key);
  return v === null ? null : c.number(v, key, -1, 1);
}

function readTasks(c: Checker, v: unknown, numClasses: number): TaskRecord[] {
  const tasks = c.array(v, 'tasks').map((t, i) => {
    const key = `tasks[${i}]`;
    const o = c.object(t, key);
    const index = c.number(c.field(o, 'index', `${key}.index`), `${key}.index`, i, i, true);
    const classStart = c.number(c.field(o, 'classStart', `${key}.classStart`), `${key}.classStart`, 0, numClasses, true);
    const classEnd = c.number(c.field(o, 'classEnd', `${key}.classEnd`), `${key}.classEnd`, classStart + 1, numClasses, true);
    return { index, classStart, classEnd };
  });
  if (tasks.length === 0) c.fail('tasks', 'expected at least one task, got none');
  return tasks;
}

/** Ragged lower-triangular matrix: row t holds A[t][0..t]; at most one row per task. */
function readMatrix(c: Checker, v: unknown, numTasks: number): number[][] {
  const rows = c.array(v, 'accuracyMatrix');
  if (rows.length === 0) c.fail('accuracyMatrix', 'expected at least one row, got none');
  if (rows.length > numTasks) c.fail('accuracyMatrix', `has ${rows.length} rows but the run has ${numTasks} tasks`);
  return rows.map((row, t) => c.numbers(row, `accuracyMatrix[${t}]`, 0, 1, t + 1));
}

function readStep(c: Checker, v: unknown, key: string, steps: number): number {
  return c.number(v, key, 0, steps - 1, true);
}

function readReliability(c: Checker, v: unknown, steps: number): ReliabilityRecord[] {
  return c.array(v, 'reliability').map((r, i) => {
    const key = `reliability[${i}]`;
    const o = c.object(r, key);
    const step = readStep(c, c.field(o, 'step', `${key}.step`), `${key}.step`, steps);
    const bins = readBins(c, c.field(o, 'bins', `${key}.bins`), `${key}.bins`);
    return { step, bins };
  });
}

function readNovelty(c: Checker, v: unknown, steps: number): NoveltyRecord[] {
  return c.array(v, 'novelty').map((n, i) => {
    const key = `novelty[${i}]`;
    const o = c.object(n, key);
    const get = (name: string): unknown => c.field(o, name, `${key}.${name}`);
    const record: NoveltyRecord = {
      step: readStep(c, get('step'), `${key}.step`, steps),
      score: c.string(get('score'), `${key}.score`),
      auroc: c.fraction(get('auroc'), `${key}.auroc`),
      aupr: c.fraction(get('aupr'), `${key}.aupr`),
      fpr95: c.fraction(get('fpr95'), `${key}.fpr95`),
    };
    if (o['roc'] !== undefined) {
      const roc = c.object(o['roc'], `${key}.roc`);
      const fpr = c.numbers(c.field(roc, 'fpr', `${key}.roc.fpr`), `${key}.roc.fpr`, 0, 1);
      const tpr = c.numbers(c.field(roc, 'tpr', `${key}.roc.tpr`), `${key}.roc.tpr`, 0, 1, fpr.length);
      if (fpr.length < 2) c.fail(`${key}.roc.fpr`, `expected at least 2 points, got ${fpr.length}`);
      record.roc = { fpr, tpr };
    }
    return record;
  });
}

/**
 * The `runs` summary's schema belongs to the repeated-runs writer, so it is read leniently:
 * every `{mean, std}` pair found (up to three levels deep) becomes an entry named by its path,
 * and an array of per-run records is summarised here (mean, sample std) per shared numeric key.
 * Anything else is ignored rather than failing the whole report.
 */
export function readRepeatedRuns(v: unknown): RepeatedRunsEntry[] {
  const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (Array.isArray(v)) {
    const recs = v.filter(isObj);
    if (recs.length === 0) return [];
    const keys = Object.keys(recs[0]!).filter((k) => recs.every((r) => typeof r[k] === 'number' && Number.isFinite(r[k])));
    return keys.map((k) => {
      const xs = recs.map((r) => r[k] as number);
      return { metric: k, ...meanStd(xs) };
    });
  }
  const out: RepeatedRunsEntry[] = [];
  const walk = (x: unknown, prefix: string, depth: number): void => {
    if (!isObj(x) || depth > 3) return;
    const { mean, std } = x;
    if (typeof mean === 'number' && Number.isFinite(mean) && (std === null || (typeof std === 'number' && Number.isFinite(std)))) {
      out.push({ metric: prefix || 'value', mean, std });
      return;
    }
    for (const [k, child] of Object.entries(x)) walk(child, prefix ? `${prefix}.${k}` : k, depth + 1);
  };
  walk(v, '', 0);
  return out;
}

/** Mean and sample standard deviation (n - 1); std is null for fewer than two values. */
export function meanStd(xs: readonly number[]): { mean: number; std: number | null } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: null };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null };
  const ss = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Reads and validates one results.json (its path given directly). */
export async function loadResultsFile(file: string): Promise<ReportResults> {
  return parseResults(await readInputText(file, 'results file'), file);
}

/**
 * Run directories named by `target`: the directory itself when it holds results.json (or
 * `target` is a results.json), else its immediate subdirectories that do (a comparison or
 * repeated-runs folder, e.g. `runs/compare-<time>/{zeroshot,clip-adapter,clap}`), sorted by name.
 */
export async function findRunDirs(target: string): Promise<{ dir: string; file: string }[]> {
  if (path.basename(target) === RESULTS_FILE && (await isFile(target))) return [{ dir: path.dirname(target), file: target }];
  const direct = path.join(target, RESULTS_FILE);
  if (await isFile(direct)) return [{ dir: target, file: direct }];
  let entries: string[];
  try {
    entries = (await readdir(target, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Clap4ClipError(code === 'ENOENT' ? 'no such run directory' : `cannot read the run directory (${(err as Error).message})`, { file: target, cause: err });
  }
  const found: { dir: string; file: string }[] = [];
  for (const name of entries) {
    const file = path.join(target, name, RESULTS_FILE);
    if (await isFile(file)) found.push({ dir: path.join(target, name), file });
  }
  if (found.length === 0) {
    throw new Clap4ClipError(`no ${RESULTS_FILE} here or in its subdirectories (not a run directory, or the run has not finished)`, { file: target });
  }
  return found;
}

/** Loads every run found under each target, in order. */
export async function loadRuns(targets: readonly string[]): Promise<LoadedRun[]> {
  const out: LoadedRun[] = [];
  for (const target of targets) {
    for (const { dir, file } of await findRunDirs(target)) out.push({ dir, file, results: await loadResultsFile(file) });
  }
  return out;
}
