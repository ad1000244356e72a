/**
 * `save(dir)` / `loadClassifier(dir)`: the layout of a run checkpoint, with the classifier's own
 * bookkeeping in place of a run's:
 *
 *   DIR/
 *     latest                          one line: the name of the current save
 *     classifier-0002-1f2e3d4c/       one complete save (tasks learned + random suffix)
 *       params.safetensors            every tensor of method.saveState(), F32, by name (as a checkpoint)
 *       features.safetensors          text [C, P, D] F32; memory.features [M, D] F32; memory.labels [M] I32
 *       state.json                    settings, class names, templates, encoder id, tasks, novelty
 *                                     threshold, temperature, generator states, the method's metadata, the list of tensors
 *       COMPLETE                      sizes and sha256 of the three files; written last
 *
 * Writing and reading the directory is the committed-directory protocol of `util/committedDir.ts`
 * (as for checkpoints): a save goes into a new directory, every file fsynced, COMPLETE last; then
 * `latest` is replaced atomically (the commit point) and only after that are older saves removed.
 * A crash at any point leaves the previous save loadable. The folder is locked while a save is
 * written (`util/dirLock.ts`): a second save into it, from another process or call, is refused. Loading trusts nothing: it follows
 * `latest`, requires COMPLETE, checks the checksums, then every field.
 */
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../data/safetensors.js';
import { Rng, type RngState } from '../engine/random.js';
import { APPENDED_STREAMS, STREAM_NAMES, streamStates, streamsFromStates, type StreamStates } from '../cl/streams.js';
import { perClassQuota, type MemoryBudget } from '../memory/memory.js';
import { getSelector, type SelectorName } from '../memory/selectors.js';
import type { TaskInfo } from '../methods/method.js';
import { METHOD_NAMES } from '../methods/registry.js';
import { PARAMS_FILE, STATE_FILE } from '../run/checkpoint.js';
import { readCommittedDir, writeCommittedDir, type CommittedDirLayout } from '../util/committedDir.js';
import { withDirLock } from '../util/dirLock.js';
import { DataError, shown } from '../util/errors.js';
import { methodFromState, type ClassifierSettings, type ModelState, type TensorSource } from './core.js';
import type { NoveltyCalibration, TemperatureCalibration } from './types.js';

/** `format` of state.json (and of the safetensors metadata) of a saved classifier. */
export const CLASSIFIER_FORMAT = 'clap4clip-classifier';
/** Bump when the meaning of a field changes; readers refuse other versions. */
export const CLASSIFIER_VERSION = 2;
/** Text features, exemplar features and their labels. */
export const FEATURES_FILE = 'features.safetensors';
/** Directories `classifier-0002-1f2e3d4c`; COMPLETE's format `clap4clip-classifier-complete`. */
const LAYOUT: CommittedDirLayout = { prefix: 'classifier', format: CLASSIFIER_FORMAT, noun: 'save', pointerHint: '(is this a directory written by save()?)' };
const FILES = [PARAMS_FILE, FEATURES_FILE, STATE_FILE] as const;

/** The content of state.json. */
export interface ClassifierStateFile {
  format: typeof CLASSIFIER_FORMAT;
  version: typeof CLASSIFIER_VERSION;
  settings: ClassifierSettings;
  classes: string[];
  numTemplates: number;
  tasks: TaskInfo[];
  memorySize: number;
  novelty: NoveltyCalibration | null;
  /** The temperature `calibrate` fitted (null: none; saves written before it existed lack the key). */
  calibration: TemperatureCalibration | null;
  /** The run's generators (the method's included) and the fixed noise of `predict`. */
  rng: { streams: Partial<StreamStates>; noise: RngState };
  /** `method.saveState().meta` (null before the first task). */
  methodMeta: Record<string, unknown> | null;
  /** Tensors of params.safetensors in method.saveState() order. */
  tensors: { name: string; shape: number[] }[];
  createdAt: string;
}

/** Writes `state` under `dir` and returns the directory of this save. */
export async function saveClassifier(dir: string, settings: ClassifierSettings, state: ModelState): Promise<string> {
  const saved = state.method ? state.method.saveState() : null;
  const named = saved?.tensors ?? [];
  const C = state.classes.length;
  const D = settings.dim;
  const M = state.bank.labels.length;
  const stateFile: ClassifierStateFile = {
    format: CLASSIFIER_FORMAT,
    version: CLASSIFIER_VERSION,
    settings: structuredClone({ ...settings, templates: [...settings.templates] }),
    classes: [...state.classes],
    numTemplates: state.numTemplates,
    tasks: state.tasks.map((t) => ({ ...t })),
    memorySize: M,
    novelty: state.novelty ? { ...state.novelty } : null,
    calibration: state.calibration ? { ...state.calibration } : null,
    rng: { streams: streamStates(state.streams), noise: state.noise },
    methodMeta: saved ? saved.meta : null,
    tensors: named.map(([name, t]) => ({ name, shape: [...t.shape] })),
    createdAt: new Date().toISOString(),
  };
  const params = encodeSafetensors(
    Object.fromEntries(named.map(([name, t]): [string, SafeTensor] => [name, { dtype: 'F32', shape: [...t.shape], data: t.data }])),
    { format: CLASSIFIER_FORMAT },
    PARAMS_FILE,
  );
  const features = encodeSafetensors({
    text: { dtype: 'F32', shape: [C, state.numTemplates, D], data: state.text },
    'memory.features': { dtype: 'F32', shape: [M, D], data: state.bank.features },
    'memory.labels': { dtype: 'I32', shape: [M], data: state.bank.labels },
  }, { format: CLASSIFIER_FORMAT }, FEATURES_FILE);
  const text = Buffer.from(JSON.stringify(stateFile, null, 1) + '\n');
  const bytes: Record<(typeof FILES)[number], Uint8Array> = { [PARAMS_FILE]: params, [FEATURES_FILE]: features, [STATE_FILE]: text };

  // One writer per folder: a save() into a folder another process (or call) is saving into is refused.
  const root = path.resolve(dir);
  return withDirLock(root, { command: `save(${JSON.stringify(dir)})` }, () => writeCommittedDir(root, LAYOUT, bytes, { sequence: state.tasks.length }));
}

// ---------------------------------------------------------------------------------------------
// Loading

function parseJson(bytes: Buffer, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DataError(file, `is not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
}

type Fail = (problem: string) => never;
const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const intIn = (v: unknown, at: string, fail: Fail, min = 0): number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? v : fail(`${at} must be an integer >= ${min}, got ${shown(v)}`);
const finite = (v: unknown, at: string, fail: Fail): number => (typeof v === 'number' && Number.isFinite(v) ? v : fail(`${at} must be a finite number, got ${shown(v)}`));
const strings = (v: unknown, at: string, fail: Fail): string[] =>
  Array.isArray(v) && v.every((s) => typeof s === 'string') ? [...v] : fail(`${at} must be an array of strings`);
const rng = (v: unknown, at: string, fail: Fail): RngState => {
  try {
    return Rng.fromState(v as RngState).state();
  } catch (err) {
    return fail(`${at} is not a generator state (${(err as Error).message})`);
  }
};

/** Checks an untrusted state.json. */
export function parseStateFile(raw: unknown, file: string): ClassifierStateFile {
  const fail: Fail = (problem) => {
    throw new DataError(file, problem);
  };
  if (!isObj(raw)) return fail('must be a JSON object');
  if (raw['format'] !== CLASSIFIER_FORMAT) fail(`"format" is ${JSON.stringify(raw['format'])}, expected "${CLASSIFIER_FORMAT}" (not a saved clap4clip classifier)`);
  if (raw['version'] !== CLASSIFIER_VERSION) fail(`unsupported version ${JSON.stringify(raw['version'])} (this clap4clip reads version ${CLASSIFIER_VERSION})`);
  const s = isObj(raw['settings']) ? raw['settings'] : fail('"settings" must be an object');
  if (typeof s['method'] !== 'string') fail('settings.method must be a string');
  if (!(METHOD_NAMES as readonly string[]).includes(s['method'] as string)) fail(`settings.method ${shown(s['method'])} is not a method of this clap4clip (one of [${METHOD_NAMES.join(', ')}])`);
  if (!isObj(s['methodOptions'])) fail('settings.methodOptions must be an object');
  const mem = isObj(s['memory']) ? s['memory'] : fail('settings.memory must be an object');
  const budget = { kind: mem['kind'], size: mem['size'] } as MemoryBudget;
  if (budget.kind !== 'total' && budget.kind !== 'perClass') fail('settings.memory.kind must be "total" or "perClass"');
  try {
    perClassQuota(budget, 1);
    getSelector(String(s['selector']));
  } catch (err) {
    fail(`settings: ${(err as Error).message}`);
  }
  const settings: ClassifierSettings = {
    method: s['method'] as string,
    methodOptions: structuredClone(s['methodOptions'] as Record<string, unknown>),
    samples: intIn(s['samples'], 'settings.samples', fail, 1),
    batchSize: intIn(s['batchSize'], 'settings.batchSize', fail, 1),
    memory: budget,
    selector: s['selector'] as SelectorName,
    dim: intIn(s['dim'], 'settings.dim', fail, 1),
    logitScale: finite(s['logitScale'], 'settings.logitScale', fail),
    templates: strings(s['templates'], 'settings.templates', fail),
    encoderId: s['encoderId'] === null ? null : typeof s['encoderId'] === 'string' ? s['encoderId'] : fail('settings.encoderId must be a string or null'),
    seed: intIn(s['seed'], 'settings.seed', fail, Number.MIN_SAFE_INTEGER),
  };
  const classes = strings(raw['classes'], 'classes', fail);
  if (new Set(classes).size !== classes.length) fail('classes holds a name twice');
  const tasks = (Array.isArray(raw['tasks']) ? raw['tasks'] : fail('tasks must be an array')).map((t, i): TaskInfo => {
    if (!isObj(t)) return fail(`tasks[${i}] must be an object`);
    const task = { index: intIn(t['index'], `tasks[${i}].index`, fail), classStart: intIn(t['classStart'], `tasks[${i}].classStart`, fail), classEnd: intIn(t['classEnd'], `tasks[${i}].classEnd`, fail, 1) };
    if (task.index !== i || task.classEnd <= task.classStart) fail(`tasks[${i}] must have index ${i} and classEnd > classStart, got ${JSON.stringify(t)}`);
    return task;
  });
  tasks.forEach((t, i) => {
    if (t.classStart !== (i === 0 ? 0 : tasks[i - 1]!.classEnd)) fail(`tasks[${i}] starts at ${t.classStart}; tasks must be contiguous from class 0`);
  });
  if ((tasks.at(-1)?.classEnd ?? 0) !== classes.length) fail(`the tasks cover ${tasks.at(-1)?.classEnd ?? 0} classes, "classes" names ${classes.length}`);
  const n = raw['novelty'];
  const novelty = n === null ? null : isObj(n)
    ? { threshold: finite(n['threshold'], 'novelty.threshold', fail), truePositiveRate: finite(n['truePositiveRate'], 'novelty.truePositiveRate', fail), samples: intIn(n['samples'], 'novelty.samples', fail, 1) }
    : fail('novelty must be an object or null');
  const t = raw['calibration'];
  const calibration: TemperatureCalibration | null = t === undefined || t === null ? null : isObj(t)
    ? {
      temperature: finite(t['temperature'], 'calibration.temperature', fail) > 0 ? (t['temperature'] as number) : fail(`calibration.temperature must be > 0, got ${String(t['temperature'])}`),
      nllBefore: finite(t['nllBefore'], 'calibration.nllBefore', fail),
      nllAfter: finite(t['nllAfter'], 'calibration.nllAfter', fail),
      samples: intIn(t['samples'], 'calibration.samples', fail, 1),
      novelty: t['novelty'] === 'raw' || t['novelty'] === 'calibrated' ? t['novelty'] : fail(`calibration.novelty must be "raw" or "calibrated", got ${JSON.stringify(t['novelty'])}`),
    }
    : fail('calibration must be an object or null');
  const r = isObj(raw['rng']) ? raw['rng'] : fail('rng must be an object');
  const st = isObj(r['streams']) ? r['streams'] : fail('rng.streams must be an object');
  for (const k of Object.keys(st)) if (!(STREAM_NAMES as readonly string[]).includes(k)) fail(`rng.streams holds unknown stream "${k}"`);
  // A save older than an appended stream lacks it; streamsFromStates fills it in from the seed.
  const present = STREAM_NAMES.filter((k) => st[k] !== undefined || !APPENDED_STREAMS.includes(k));
  const streams = Object.fromEntries(present.map((k) => [k, rng(st[k], `rng.streams.${k}`, fail)])) as Partial<StreamStates>;
  const mm = raw['methodMeta'];
  const methodMeta = mm === null ? null : isObj(mm) ? structuredClone(mm) : fail('methodMeta must be an object or null');
  const tensors = (Array.isArray(raw['tensors']) ? raw['tensors'] : fail('tensors must be an array')).map((e, i) => {
    if (!isObj(e) || typeof e['name'] !== 'string' || !Array.isArray(e['shape'])) return fail(`tensors[${i}] must be { name, shape }`);
    return { name: e['name'], shape: e['shape'].map((d, j) => intIn(d, `tensors[${i}].shape[${j}]`, fail)) };
  });
  return {
    format: CLASSIFIER_FORMAT,
    version: CLASSIFIER_VERSION,
    settings,
    classes,
    numTemplates: intIn(raw['numTemplates'], 'numTemplates', fail, classes.length > 0 ? 1 : 0),
    tasks,
    memorySize: intIn(raw['memorySize'], 'memorySize', fail),
    novelty,
    calibration,
    rng: { streams, noise: rng(r['noise'], 'rng.noise', fail) },
    methodMeta,
    tensors,
    createdAt: typeof raw['createdAt'] === 'string' ? raw['createdAt'] : fail('createdAt must be a string'),
  };
}

/** A tensor of a decoded file with the expected dtype and shape, or a DataError. */
function tensorOf(tensors: Record<string, SafeTensor>, name: string, dtype: 'F32' | 'I32', shape: number[], file: string): SafeTensor {
  const t = tensors[name] ?? (() => { throw new DataError(file, `tensor "${name}" is missing`); })();
  if (t.dtype !== dtype || JSON.stringify(t.shape) !== JSON.stringify(shape)) {
    throw new DataError(file, `tensor "${name}" is ${t.dtype} ${JSON.stringify(t.shape)}, expected ${dtype} ${JSON.stringify(shape)}`);
  }
  if (dtype === 'F32') for (let i = 0; i < t.data.length; i++) if (!Number.isFinite(t.data[i] as number)) throw new DataError(file, `tensor "${name}" holds a non-finite value at element ${i}`);
  return t;
}

/** Reads the current save under `dir`: the settings and the model state (method rebuilt). */
export async function readClassifier(dir: string): Promise<{ settings: ClassifierSettings; state: ModelState }> {
  const read = await readCommittedDir(path.resolve(dir), LAYOUT, { files: FILES });
  read.verify(); // checksums first: a changed file is reported as such, not by whatever it breaks
  const bytes = read.bytes;
  const sub = read.dir;
  const stateFile = path.join(sub, STATE_FILE);
  const saved = parseStateFile(parseJson(bytes[STATE_FILE]!, stateFile), stateFile);
  const { settings } = saved;
  const C = saved.classes.length;
  const D = settings.dim;
  const M = saved.memorySize;

  const featuresFile = path.join(sub, FEATURES_FILE);
  const feats = decodeSafetensors(bytes[FEATURES_FILE]!, featuresFile).tensors;
  const text = tensorOf(feats, 'text', 'F32', [C, saved.numTemplates, D], featuresFile).data as Float32Array;
  const bankFeatures = tensorOf(feats, 'memory.features', 'F32', [M, D], featuresFile).data as Float32Array;
  const bankLabels = tensorOf(feats, 'memory.labels', 'I32', [M], featuresFile).data as Int32Array;
  for (const y of bankLabels) if (!(y >= 0 && y < C)) throw new DataError(featuresFile, `memory.labels holds ${y}, outside the ${C} classes`);

  const paramsFile = path.join(sub, PARAMS_FILE);
  const params = decodeSafetensors(bytes[PARAMS_FILE]!, paramsFile).tensors;
  const source: TensorSource = new Map(saved.tensors.map((e) => [e.name, tensorOf(params, e.name, 'F32', e.shape, paramsFile) as { shape: number[]; data: Float32Array }]));
  if (Object.keys(params).length !== saved.tensors.length) throw new DataError(paramsFile, `holds ${Object.keys(params).length} tensors, state.json lists ${saved.tensors.length}`);

  let method: ModelState['method'] = null;
  if (saved.tasks.length > 0) {
    if (saved.methodMeta === null) throw new DataError(stateFile, `methodMeta is null but ${saved.tasks.length} tasks were learned`);
    method = await methodFromState(settings, { tensors: source, meta: saved.methodMeta }, paramsFile);
  }
  const state: ModelState = {
    classes: saved.classes,
    text,
    numTemplates: saved.numTemplates,
    tasks: saved.tasks,
    bank: { features: bankFeatures, labels: bankLabels },
    method,
    streams: streamsFromStates(saved.rng.streams, settings.seed),
    noise: saved.rng.noise,
    novelty: saved.novelty,
    calibration: saved.calibration,
  };
  return { settings, state };
}
