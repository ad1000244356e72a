/**
 * What a checkpoint holds besides the tensors (`state.json`), and the validation of an untrusted
 * copy of it. Everything here is optimizer-independent: the methods use plain SGD (no momentum),
 * so the method's state (its tensors and metadata) + this state are the whole run after a task.
 */
import type { MemoryBudget, MemoryState } from '../memory/memory.js';
import type { TaskInfo } from '../methods/method.js';
import { Rng, type RngState } from '../engine/random.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { resolveRunConfig, type RunConfig } from './config.js';
import type { LoopResult, StepRecord } from './loopResult.js';
import { configHash } from './runDirectory.js';

export const CHECKPOINT_FORMAT = 'clap4clip-checkpoint';
/** Bump when the meaning of a field changes; readers refuse other versions. */
export const CHECKPOINT_VERSION = 2;

/** The generators of a run after a task: every stream of `RunStreams` by name (the method's included). */
export interface CheckpointRngStates {
  streams: Record<string, RngState>;
}

/** The loop's metrics so far (LoopResult without the scenario, which is rebuilt from the config). */
export type CheckpointMetrics = Omit<LoopResult, 'scenario'>;

/** Name and shape of a tensor in params.safetensors (all F32), in `method.saveState()` order. */
export interface TensorEntry {
  name: string;
  shape: number[];
}

/** The content of `state.json`. */
export interface CheckpointState {
  format: typeof CHECKPOINT_FORMAT;
  version: typeof CHECKPOINT_VERSION;
  method: string;
  /** The resolved config of the run and `configHash(config)`. */
  config: RunConfig;
  configHash: string;
  /** Index of the last task that is complete (trained, memory updated, finetuned, evaluated). */
  completedTask: number;
  classOrder: number[];
  /** Every task of the scenario (not only the completed ones). */
  tasks: TaskInfo[];
  /** Exemplar memory after `completedTask`: class label -> training-sample indices. */
  memory: MemoryState;
  rng: CheckpointRngStates;
  metrics: CheckpointMetrics;
  /** The method's own metadata (`method.saveState().meta`); its tensors are in params.safetensors. */
  methodMeta: Record<string, unknown>;
  tensors: TensorEntry[];
  createdAt: string;
}

/** One tensor of a checkpoint, data copied out of the method (safe to write asynchronously). */
export interface CheckpointTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface CheckpointSnapshot {
  state: CheckpointState;
  tensors: CheckpointTensor[];
  /** Where it was read from (set by the reader; error messages name these files). */
  files?: { dir: string; params: string; state: string };
}

// ---------------------------------------------------------------------------------------------
// Validation of a parsed state.json. Each check names the JSON path of the bad value.

type Fail = (problem: string) => never;
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

function obj(v: unknown, at: string, fail: Fail): Record<string, unknown> {
  return isObject(v) ? v : fail(`${at} must be a JSON object, got ${show(v)}`);
}
function arr(v: unknown, at: string, fail: Fail, length?: number): unknown[] {
  if (!Array.isArray(v)) return fail(`${at} must be an array, got ${show(v)}`);
  if (length !== undefined && v.length !== length) fail(`${at} has ${v.length} entries, expected ${length}`);
  return v;
}
function int(v: unknown, at: string, fail: Fail, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(`${at} must be an integer in [${min}, ${max}], got ${show(v)}`);
  return v as number;
}
function num(v: unknown, at: string, fail: Fail, min = -Infinity, max = Infinity): number {
  // JSON.parse turns 1e999 into Infinity: finiteness is checked here, not assumed.
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${at} must be a finite number, got ${show(v)}`);
  if ((v as number) < min || (v as number) > max) fail(`${at} must be in [${min}, ${max}], got ${show(v)}`);
  return v as number;
}
function str(v: unknown, at: string, fail: Fail): string {
  return typeof v === 'string' ? v : fail(`${at} must be a string, got ${show(v)}`);
}
function onlyKeys(o: Record<string, unknown>, keys: readonly string[], at: string, fail: Fail): void {
  for (const k of keys) if (!(k in o)) fail(`${at} is missing key "${k}"`);
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${at} has unknown key "${k}"`);
}

function rngState(v: unknown, at: string, fail: Fail): RngState {
  try {
    return Rng.fromState(v as RngState).state();
  } catch (err) {
    return fail(`${at} is not a generator state (${(err as Error).message})`);
  }
}

function taskList(v: unknown, fail: Fail): TaskInfo[] {
  const tasks = arr(v, 'tasks', fail).map((t, i) => {
    const o = obj(t, `tasks[${i}]`, fail);
    onlyKeys(o, ['index', 'classStart', 'classEnd'], `tasks[${i}]`, fail);
    return { index: int(o['index'], `tasks[${i}].index`, fail, i, i), classStart: int(o['classStart'], `tasks[${i}].classStart`, fail), classEnd: int(o['classEnd'], `tasks[${i}].classEnd`, fail, 1) };
  });
  if (tasks.length === 0) fail('tasks is empty');
  tasks.forEach((t, i) => {
    const expectedStart = i === 0 ? 0 : tasks[i - 1]!.classEnd;
    if (t.classStart !== expectedStart || t.classEnd <= t.classStart) fail(`tasks[${i}] covers [${t.classStart}, ${t.classEnd}); tasks must be contiguous from class 0`);
  });
  return tasks;
}

function memoryState(v: unknown, seenClasses: number, fail: Fail): MemoryState {
  const o = obj(v, 'memory', fail);
  onlyKeys(o, ['budget', 'classes'], 'memory', fail);
  const b = obj(o['budget'], 'memory.budget', fail);
  onlyKeys(b, ['kind', 'size'], 'memory.budget', fail);
  if (b['kind'] !== 'total' && b['kind'] !== 'perClass') fail(`memory.budget.kind must be "total" or "perClass", got ${show(b['kind'])}`);
  const budget = { kind: b['kind'], size: int(b['size'], 'memory.budget.size', fail) } as MemoryBudget;
  const seen = new Set<number>();
  const classes = arr(o['classes'], 'memory.classes', fail).map((entry, i): [number, number[]] => {
    const at = `memory.classes[${i}]`;
    const [label, idx] = arr(entry, at, fail, 2);
    const c = int(label, `${at}[0]`, fail, 0, seenClasses - 1);
    if (seen.has(c)) fail(`${at}: class ${c} is listed twice`);
    seen.add(c);
    return [c, arr(idx, `${at}[1]`, fail).map((x, j) => int(x, `${at}[1][${j}]`, fail, 0, 0x7fffffff))];
  });
  return { budget, classes };
}

/** Any JSON value whose numbers are all finite (metrics the loop may add later pass through checked). */
function finiteJson(v: unknown, at: string, fail: Fail): unknown {
  if (typeof v === 'number') return num(v, at, fail);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.map((x, i) => finiteJson(x, `${at}[${i}]`, fail));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, finiteJson(x, `${at}.${k}`, fail)]));
  return fail(`${at} is not a JSON value`);
}

/** A step record: the fields resuming relies on are checked exactly, others (timings...) as finite JSON. */
function stepRecord(v: unknown, t: number, fail: Fail): StepRecord {
  const at = `metrics.steps[${t}]`;
  const o = { ...obj(finiteJson(v, at, fail), at, fail) };
  for (const k of ['task', 'accuracies', 'ecePerBatchMean', 'eceDataset', 'memorySize', 'trainSamples', 'seconds']) if (!(k in o)) fail(`${at} is missing key "${k}"`);
  int(o['task'], `${at}.task`, fail, t, t);
  arr(o['accuracies'], `${at}.accuracies`, fail, t + 1).forEach((a, k) => num(a, `${at}.accuracies[${k}]`, fail, 0, 1));
  num(o['ecePerBatchMean'], `${at}.ecePerBatchMean`, fail, 0, 1);
  num(o['eceDataset'], `${at}.eceDataset`, fail, 0, 1);
  int(o['memorySize'], `${at}.memorySize`, fail);
  int(o['trainSamples'], `${at}.trainSamples`, fail);
  const sec = obj(o['seconds'], `${at}.seconds`, fail);
  num(sec['total'], `${at}.seconds.total`, fail, 0);
  return o as unknown as StepRecord;
}

/**
 * The loop's metrics of `completedTask + 1` steps. The accuracy matrix, ECE arrays and timing
 * must agree with the step records; other keys (reliability bins, novelty records, whatever the
 * loop adds) are kept as they are, checked to be finite JSON.
 */
function metrics(v: unknown, steps: number, fail: Fail): CheckpointMetrics {
  const o = obj(finiteJson(v, 'metrics', fail), 'metrics', fail);
  for (const k of ['accuracyMatrix', 'ece', 'timing', 'steps']) if (!(k in o)) fail(`metrics is missing key "${k}"`);
  if ('scenario' in o) fail('metrics must not hold "scenario" (it is rebuilt from the config)');
  const records = arr(o['steps'], 'metrics.steps', fail, steps).map((s, t) => stepRecord(s, t, fail));
  const ece = obj(o['ece'], 'metrics.ece', fail);
  const same = (key: string, value: unknown, expected: unknown): void => {
    if (JSON.stringify(value) !== JSON.stringify(expected)) fail(`${key} disagrees with metrics.steps`);
  };
  same('metrics.accuracyMatrix', o['accuracyMatrix'], records.map((r) => r.accuracies));
  same('metrics.ece.perBatchMean', ece['perBatchMean'], records.map((r) => r.ecePerBatchMean));
  same('metrics.ece.dataset', ece['dataset'], records.map((r) => r.eceDataset));
  same('metrics.timing', o['timing'], records.map((r) => r.seconds.total));
  return { ...o, steps: records } as unknown as CheckpointMetrics;
}

function tensorEntries(v: unknown, fail: Fail): TensorEntry[] {
  const names = new Set<string>();
  return arr(v, 'tensors', fail).map((e, i) => {
    const o = obj(e, `tensors[${i}]`, fail);
    onlyKeys(o, ['name', 'shape'], `tensors[${i}]`, fail);
    const name = str(o['name'], `tensors[${i}].name`, fail);
    if (name === '' || name === '__metadata__' || names.has(name)) fail(`tensors[${i}].name ${show(name)} is empty, reserved or repeated`);
    names.add(name);
    return { name, shape: arr(o['shape'], `tensors[${i}].shape`, fail).map((d, j) => int(d, `tensors[${i}].shape[${j}]`, fail)) };
  });
}

const STATE_KEYS = ['format', 'version', 'method', 'config', 'configHash', 'completedTask', 'classOrder', 'tasks', 'memory', 'rng', 'metrics', 'methodMeta', 'tensors', 'createdAt'];

/** Checks an untrusted parsed `state.json`; errors are DataErrors naming `file` and the JSON path. */
export function parseCheckpointState(raw: unknown, file: string): CheckpointState {
  const fail: Fail = (problem) => {
    throw new DataError(file, problem);
  };
  const o = obj(raw, 'the checkpoint state', fail);
  // Format and version first: a newer or foreign file must say so, not fail on some other key.
  if (o['format'] !== CHECKPOINT_FORMAT) fail(`"format" is ${show(o['format'])}, expected "${CHECKPOINT_FORMAT}" (not a clap4clip checkpoint)`);
  if (o['version'] !== CHECKPOINT_VERSION) fail(`unsupported checkpoint version ${show(o['version'])} (this clap4clip reads version ${CHECKPOINT_VERSION})`);
  onlyKeys(o, STATE_KEYS, 'the checkpoint state', fail);
  let config: RunConfig;
  try {
    config = resolveRunConfig(o['config']);
  } catch (err) {
    if (err instanceof Clap4ClipError) return fail(`"config" is invalid: ${err.message}`);
    throw err;
  }
  const hash = str(o['configHash'], 'configHash', fail);
  if (hash !== configHash(config)) fail('"configHash" does not match "config" (edited or corrupt)');
  const tasks = taskList(o['tasks'], fail);
  const completedTask = int(o['completedTask'], 'completedTask', fail, 0, tasks.length - 1);
  const numClasses = tasks[tasks.length - 1]!.classEnd;
  const classOrder = arr(o['classOrder'], 'classOrder', fail, numClasses).map((c, i) => int(c, `classOrder[${i}]`, fail, 0, numClasses - 1));
  if (new Set(classOrder).size !== numClasses) fail('classOrder is not a permutation of the classes');
  const r = obj(o['rng'], 'rng', fail);
  onlyKeys(r, ['streams'], 'rng', fail);
  const streams = Object.fromEntries(Object.entries(obj(r['streams'], 'rng.streams', fail)).map(([k, v]) => [k, rngState(v, `rng.streams.${k}`, fail)]));
  return {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    method: str(o['method'], 'method', fail),
    config,
    configHash: hash,
    completedTask,
    classOrder,
    tasks,
    memory: memoryState(o['memory'], tasks[completedTask]!.classEnd, fail),
    rng: { streams },
    metrics: metrics(o['metrics'], completedTask + 1, fail),
    methodMeta: obj(finiteJson(o['methodMeta'], 'methodMeta', fail), 'methodMeta', fail),
    tensors: tensorEntries(o['tensors'], fail),
    createdAt: str(o['createdAt'], 'createdAt', fail),
  };
}
