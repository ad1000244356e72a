/**
 * The one typed, validated configuration of a class-incremental run. Defaults are the reference
 * values (CIFAR-100 protocol of spec sections 5-8). `resolveRunConfig` merges a partial config
 * (from a JSON file and/or command-line flags) over the defaults and reports the first problem
 * precisely: unknown key (with a "did you mean"), wrong type, or out of range.
 *
 * Every field is described once in `RUN_CONFIG_FIELDS`; the CLI builds its flags (kebab-case of
 * the key) and its `--help` from that table.
 */
import { SYNTHETIC_DEFAULTS, SYNTHETIC_TINY, type SyntheticConfig } from '../data/synthetic.js';
import type { ClassOrderSpec } from '../data/scenario.js';
import { readClassOrderFile } from '../data/classOrderFile.js';
import { existsSync } from 'node:fs';
import { SELECTOR_NAMES, type SelectorName } from '../memory/selectors.js';
import { METHOD_NAMES, type MethodName } from '../methods/registry.js';
import { Clap4ClipError, ConfigError } from '../util/errors.js';

/** A method of the registry (`src/methods/registry.ts`, the only list of methods). */
export type { MethodName } from '../methods/registry.js';

/**
 * Synthetic worlds (see `src/data/synthetic.ts`): `default` is CIFAR-100-shaped (100 classes,
 * 500/100 train/test images per class, D = 512); `benchmark` is the same world at a size the
 * no-argument `clap4clip run` finishes quickly (fewer images per class, D = 256); `tiny` is for tests.
 */
export const SYNTHETIC_PRESETS = {
  default: SYNTHETIC_DEFAULTS,
  benchmark: Object.freeze({ ...SYNTHETIC_DEFAULTS, trainPerClass: 60, testPerClass: 30, dim: 256 }),
  tiny: SYNTHETIC_TINY,
} satisfies Record<string, SyntheticConfig>;
export type SyntheticPreset = keyof typeof SYNTHETIC_PRESETS;
export const SYNTHETIC_PRESET_NAMES = Object.keys(SYNTHETIC_PRESETS) as SyntheticPreset[];

/**
 * How test images are grouped into predictions (CLAP's VGA attends over the batch, spec section 9):
 * `per-task` one task's images per batch (the reference; leaks the task identity), `mixed` all seen
 * tasks shuffled together (seeded), `single` one image per prediction (batch-independent).
 */
export const EVAL_BATCHINGS = ['per-task', 'mixed', 'single'] as const;
export type EvalBatching = (typeof EVAL_BATCHINGS)[number];
/** numpy's RandomState takes seeds below 2^31, and the reference order uses 1993 + seed. */
const MAX_SEED = 2 ** 31 - 1993;
/**
 * Where the post-hoc temperature of each step is fitted (`src/run/calibration.ts`): `holdout`
 * keeps `calibrationPerClass` training samples of every class out of training and memory and
 * fits on those of all seen classes (changes which samples train, hence every number of a run);
 * `memory` fits on the exemplar memory after the task (samples the model trained on: the
 * temperature comes out too low, but training is exactly that of a run without calibration);
 * `none` fits nothing.
 */
export const CALIBRATION_SOURCES = ['holdout', 'memory', 'none'] as const;
export type CalibrationSource = (typeof CALIBRATION_SOURCES)[number];
export const PROGRESS_MODES = ['auto', 'always', 'never'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

export interface RunConfig {
  /** `synthetic` (generated in memory) or a features dataset directory. */
  data: string;
  /** Synthetic world when `data` is `synthetic`. */
  syntheticPreset: SyntheticPreset;
  /** Overrides of the synthetic generator's fields. The world's seed stays 0 unless set here: the run seed varies class order, init and noise over one fixed world, as runs of the reference vary over one dataset. */
  syntheticOptions: Partial<SyntheticConfig>;
  method: MethodName;
  /** Run index: the seed of every random draw and the reference class order's 1993 + seed. */
  seed: number;
  classOrder: ClassOrderSpec;
  /** Classes in the first task (null: `increment`). */
  baseClasses: number | null;
  /** Classes per task after the first. */
  increment: number;
  /** Few-shot: training samples per class in tasks after the first (null: all). */
  shots: number | null;
  /** Few-shot CIL (spec 9): base 60, increment 5, shots 5 unless set explicitly. */
  fewShot: boolean;
  memoryKind: 'total' | 'perClass';
  memorySize: number;
  selector: SelectorName;
  batchSize: number;
  /** null: the method's own value (CLAP 5 epochs, lr 1.6e-3 with warm-up; finetuning 2 epochs at lr / 10). */
  epochs: number | null;
  finetuneEpochs: number | null;
  lr: number | null;
  finetuneLr: number | null;
  /** Monte-Carlo samples T of probabilistic methods (`forward_times`). */
  samples: number;
  evalBatchSize: number;
  evalBatching: EvalBatching;
  /** Where the temperature of post-hoc calibration is fitted (see CALIBRATION_SOURCES). */
  calibration: CalibrationSource;
  /** `holdout`: training samples held out per class (at most half of a class's samples). */
  calibrationPerClass: number;
  /** Novel data detection after every task but the last (default: on for the synthetic data, off otherwise). */
  novelty: boolean;
  /** Repeated runs with seeds seed, seed + 1, ..., seed + runs - 1 (summary: mean and sample std). */
  runs: number;
  /** Run directory (null: `runs/<method>-<timestamp>`). */
  out: string | null;
  progress: ProgressMode;
  /** Method-specific options, validated by the method (e.g. CLAP's beta, switches). */
  methodOptions: Record<string, unknown>;
}

export const DEFAULT_RUN_CONFIG: Readonly<RunConfig> = Object.freeze({
  data: 'synthetic',
  syntheticPreset: 'default',
  syntheticOptions: {},
  method: 'clap',
  seed: 0,
  classOrder: 'reference',
  baseClasses: null,
  increment: 10,
  shots: null,
  fewShot: false,
  memoryKind: 'total',
  memorySize: 2000,
  selector: 'random',
  batchSize: 32,
  epochs: null,
  finetuneEpochs: null,
  lr: null,
  finetuneLr: null,
  samples: 20,
  evalBatchSize: 32,
  evalBatching: 'mixed',
  calibration: 'holdout',
  calibrationPerClass: 10,
  novelty: true,
  runs: 1,
  out: null,
  progress: 'auto',
  methodOptions: {},
} satisfies RunConfig);

// ---------------------------------------------------------------------------------------------
// Field table: how to check a JSON value and how to read a command-line string.

type Check = (value: unknown, key: string) => unknown;

export interface FieldSpec {
  key: keyof RunConfig;
  help: string;
  /** What the value looks like on the command line (for --help). */
  arg: string;
  check: Check;
  /** Command-line string -> JSON value (default: the string itself). */
  fromFlag?: (s: string) => unknown;
  /** A boolean flag takes no value. */
  boolean?: boolean;
  /** How the default reads in --help when its value does not say it (null defaults). */
  defaultText?: string;
}

const fail = (key: string, problem: string): never => {
  throw new ConfigError(key, `config: "${key}" ${problem}`);
};
const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : v === null ? 'null' : String(v));

function int(min: number, max = Number.MAX_SAFE_INTEGER, nullable = false): Check {
  return (v, key) => {
    if (v === null && nullable) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `must be an integer${nullable ? ' or null' : ''}, got ${show(v)}`);
    const n = v as number;
    if (n < min || n > max) fail(key, `must be ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, got ${n}`);
    return n;
  };
}
function positiveNumber(nullable = false): Check {
  return (v, key) => {
    if (v === null && nullable) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a finite number${nullable ? ' or null' : ''}, got ${show(v)}`);
    if ((v as number) <= 0) fail(key, `must be > 0, got ${v as number}`);
    return v;
  };
}
function oneOf(values: readonly string[]): Check {
  return (v, key) => {
    if (typeof v !== 'string' || !values.includes(v)) fail(key, `must be one of [${values.join(', ')}], got ${show(v)}`);
    return v;
  };
}
const text: Check = (v, key) => (typeof v === 'string' && v !== '' ? v : fail(key, `must be a non-empty string, got ${show(v)}`));
const bool: Check = (v, key) => (typeof v === 'boolean' ? v : fail(key, `must be true or false, got ${show(v)}`));
const object: Check = (v, key) =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...(v as object) } : fail(key, `must be a JSON object, got ${show(v)}`);
const classOrder: Check = (v, key) => {
  if (v === 'reference' || v === 'identity') return v;
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x))) return [...(v as number[])];
  // Any other string names a class-order file; the resolved config keeps the list itself.
  if (typeof v === 'string' && (v.includes('/') || v.includes('.') || existsSync(v))) return readClassOrderFile(v);
  return fail(key, `must be "reference", "identity", a list of integer labels or a class-order file, got ${show(v)}`);
};

const flagInt = (s: string): unknown => (/^-?\d+$/.test(s) ? Number(s) : s);
const flagNullableInt = (s: string): unknown => (s === 'null' || s === 'default' ? null : flagInt(s));
// NaN and Infinity stay numbers, so the range check reports them as such.
const flagNumber = (s: string): unknown => (s === 'null' || s === 'default' ? null : (s.trim() !== '' && !Number.isNaN(Number(s))) || /^\s*[+-]?NaN\s*$/.test(s) ? Number(s) : s);
const flagBool = (s: string): unknown => (s === 'true' ? true : s === 'false' ? false : s);
const flagJson = (s: string): unknown => {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
};
const flagOrder = (s: string): unknown => (s === 'reference' || s === 'identity' || !/^[\d,\s]+$/.test(s) ? s : s.split(',').map((x) => flagInt(x.trim())));

export const RUN_CONFIG_FIELDS: readonly FieldSpec[] = [
  { key: 'data', arg: 'DIR', help: 'a features dataset directory (see `clap4clip features`), or "synthetic" for the built-in synthetic world', check: text },
  { key: 'syntheticPreset', arg: SYNTHETIC_PRESET_NAMES.join('|'), help: 'size of the synthetic world', check: oneOf(SYNTHETIC_PRESET_NAMES) },
  { key: 'syntheticOptions', arg: 'JSON', help: 'synthetic generator settings, e.g. \'{"trainPerClass":100}\'', check: object, fromFlag: flagJson },
  { key: 'method', arg: 'NAME', help: 'the method to train (see Methods below)', check: oneOf(METHOD_NAMES), defaultText: 'a comparison of the --methods list' },
  { key: 'seed', arg: 'N', help: 'run index: seeds every random draw and picks the class order', check: int(0, MAX_SEED), fromFlag: flagInt },
  { key: 'classOrder', arg: 'ORDER', help: 'class order: reference (the paper\'s), identity, labels such as 3,1,2,..., or a file of labels (JSON array, or separated by commas or new lines)', check: classOrder, fromFlag: flagOrder },
  { key: 'baseClasses', arg: 'N', help: 'classes in the first task', check: int(1, Number.MAX_SAFE_INTEGER, true), fromFlag: flagNullableInt, defaultText: 'same as --increment' },
  { key: 'increment', arg: 'N', help: 'classes per task', check: int(1), fromFlag: flagInt },
  { key: 'shots', arg: 'N', help: 'few-shot: training images per class in every task after the first', check: int(1, Number.MAX_SAFE_INTEGER, true), fromFlag: flagNullableInt, defaultText: 'all' },
  { key: 'fewShot', arg: '', help: 'few-shot class-incremental protocol: 60 classes first, then tasks of 5 classes with 5 images each', check: bool, fromFlag: flagBool, boolean: true },
  { key: 'memoryKind', arg: 'total|perClass', help: 'exemplar memory budget: a fixed total, or a fixed number per class', check: oneOf(['total', 'perClass']) },
  { key: 'memorySize', arg: 'N', help: 'exemplars kept in total (total) or per class (perClass)', check: int(0), fromFlag: flagInt },
  { key: 'selector', arg: 'NAME', help: `how exemplars are chosen: ${SELECTOR_NAMES.join(', ')}`, check: oneOf(SELECTOR_NAMES) },
  { key: 'batchSize', arg: 'N', help: 'training batch size', check: int(1), fromFlag: flagInt },
  { key: 'epochs', arg: 'N', help: 'epochs per task', check: int(0, Number.MAX_SAFE_INTEGER, true), fromFlag: flagNullableInt, defaultText: "the method's; clap: 5" },
  { key: 'finetuneEpochs', arg: 'N', help: 'epochs of class-balanced finetuning on the memory after each task', check: int(0, Number.MAX_SAFE_INTEGER, true), fromFlag: flagNullableInt, defaultText: "the method's; clap: 2" },
  { key: 'lr', arg: 'X', help: 'learning rate', check: positiveNumber(true), fromFlag: flagNumber, defaultText: "the method's; clap: 1.6e-3 with warm-up" },
  { key: 'finetuneLr', arg: 'X', help: 'finetuning learning rate', check: positiveNumber(true), fromFlag: flagNumber, defaultText: "the method's; clap: lr / 10" },
  { key: 'samples', arg: 'T', help: 'Monte-Carlo samples drawn per prediction by probabilistic methods', check: int(1), fromFlag: flagInt },
  { key: 'evalBatchSize', arg: 'N', help: 'evaluation batch size', check: int(1), fromFlag: flagInt },
  { key: 'evalBatching', arg: EVAL_BATCHINGS.join('|'), help: 'test batches: per-task (one task per batch, as the paper), mixed (tasks shuffled together), single (one image each)', check: oneOf(EVAL_BATCHINGS) },
  { key: 'calibration', arg: CALIBRATION_SOURCES.join('|'), help: 'post-hoc temperature scaling fitted on: holdout (calibrationPerClass training samples per class kept out of training and memory), memory (the exemplars after each task; trains exactly as without calibration), none', check: oneOf(CALIBRATION_SOURCES) },
  { key: 'calibrationPerClass', arg: 'N', help: 'held-out calibration samples per class with --calibration holdout (at most half of a class)', check: int(1), fromFlag: flagInt },
  { key: 'novelty', arg: '', help: 'novel data detection after every task but the last; --no-novelty turns it off', check: bool, fromFlag: flagBool, boolean: true, defaultText: 'on for synthetic data, off with --data DIR' },
  { key: 'runs', arg: 'N', help: 'repeat with seeds seed..seed+N-1 and report mean and std (run-<seed>/ subdirectories)', check: int(1, 1000), fromFlag: flagInt },
  { key: 'out', arg: 'DIR', help: 'run directory', check: (v, k) => (v === null ? null : text(v, k)), defaultText: 'runs/<method or compare>-<time>' },
  { key: 'progress', arg: PROGRESS_MODES.join('|'), help: 'progress on stderr: auto (a live line on a terminal, one line per task otherwise), always (live line), never', check: oneOf(PROGRESS_MODES) },
  { key: 'methodOptions', arg: 'JSON', help: 'settings of the method (with no --method: of clap), e.g. \'{"laspWeight":15}\'', check: object, fromFlag: flagJson },
];

const FIELD_BY_KEY = new Map(RUN_CONFIG_FIELDS.map((f) => [f.key as string, f]));

/** Levenshtein distance (small strings only). */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest of `options` to `word`, when close enough to be a plausible typo. */
export function didYouMean(word: string, options: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const o of options) {
    const d = editDistance(word, o);
    if (d < bestD) { bestD = d; best = o; }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** Merge `partial` over the defaults and validate every field. Throws Clap4ClipError. */
export function resolveRunConfig(partial: unknown = {}): RunConfig {
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) {
    throw new Clap4ClipError(`config: expected a JSON object, got ${show(partial)}`);
  }
  const out: Record<string, unknown> = { ...DEFAULT_RUN_CONFIG };
  const given = partial as Record<string, unknown>;
  for (const [key, value] of Object.entries(given)) {
    const field = FIELD_BY_KEY.get(key);
    if (field === undefined) {
      const hint = didYouMean(key, [...FIELD_BY_KEY.keys()]);
      throw new ConfigError(key, `config: unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    if (value !== undefined) out[key] = field.check(value, key);
  }
  const cfg = out as unknown as RunConfig;
  // Detection is part of the built-in benchmark; on real features it costs a pass over the whole
  // test set per task, so there it is asked for explicitly.
  if (given['novelty'] === undefined) cfg.novelty = cfg.data === 'synthetic';
  if (cfg.seed + cfg.runs - 1 > MAX_SEED) throw new ConfigError('runs', `config: "runs" ${cfg.runs} from seed ${cfg.seed} goes past the largest seed ${MAX_SEED}`);
  if (cfg.fewShot) {
    // Spec section 9: base task of 60 classes, then tasks of 5 classes with 5 shots each.
    if (given['baseClasses'] === undefined) cfg.baseClasses = 60;
    if (given['increment'] === undefined) cfg.increment = 5;
    if (given['shots'] === undefined) cfg.shots = 5;
  }
  // A resolved config (config.json, checkpoints) carries the default preset: only a different one is a mistake.
  const presetGiven = given['syntheticPreset'] !== undefined && given['syntheticPreset'] !== DEFAULT_RUN_CONFIG.syntheticPreset;
  if (cfg.data !== 'synthetic' && (presetGiven || Object.keys(cfg.syntheticOptions).length > 0)) {
    throw new Clap4ClipError(`config: "syntheticPreset"/"syntheticOptions" only apply when "data" is "synthetic" (data is ${JSON.stringify(cfg.data)})`);
  }
  return cfg;
}

/** Camel-case config key -> `--kebab-case` flag. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
