/**
 * What one `clap4clip run` runs, resolved once: an invocation (one method, or a comparison of
 * methods) and its planned runs, one per run directory.
 *
 * Layout. One method with one seed writes into the directory itself (a run directory:
 * `config.json`, `checkpoint/`, `results.json`, ...). A comparison (no --method) or repeated runs
 * (--runs N) write one run directory per method and/or seed (`clap/`, `run-3/`, `clap/run-3/`)
 * and record the invocation in `invocation.json` at the top (`record.ts`), so `--resume DIR` can
 * rebuild every run's config from DIR alone.
 *
 * Every config of an invocation is resolved here, once per method: the planned runs of repeated
 * seeds are that config with their seed and directory.
 */
import * as path from 'node:path';
import { METHOD_NAMES } from '../../methods/registry.js';
import { Clap4ClipError } from '../../util/errors.js';
import { resolveRunConfig, type MethodName, type RunConfig } from '../config.js';
import { runDirName } from '../repeatedRuns.js';

/** Methods compared when neither --method nor --methods is given, in the order they run. */
export const COMPARED_METHODS: MethodName[] = ['zeroshot', 'simplecil', 'ranpac', 'rapf', 'clap'];
/**
 * The method flat (not keyed by method name) method options go to in a comparison, as before
 * comparisons took keyed options; it must be compared.
 */
export const COMPARISON_OPTIONS_METHOD: MethodName = 'clap';
/** The comparison an invocation record without a "methods" list ran (written before --methods existed). */
export const RECORDED_DEFAULT_METHODS: readonly MethodName[] = Object.freeze(['zeroshot', 'clip-adapter', 'clap']);

/** How an invocation's runs sit in its directory (named so in error messages). */
export type InvocationLayout = 'one run' | 'repeated runs' | 'comparison';

/** One method's config: one run, or `runs` runs with seeds seed, seed + 1, ... */
export interface MethodConfig {
  kind: 'method';
  config: RunConfig;
}

/**
 * A comparison: every compared method on the same data, protocol and seeds. The configs differ
 * only in `method` and `methodOptions` (`comparisonOptions` says how the given options are split).
 */
export interface ComparisonConfig {
  kind: 'comparison';
  /** The compared methods, in the order they run (--methods, or COMPARED_METHODS). */
  methods: readonly MethodName[];
  /** One config per compared method (its first seed), in `methods` order. */
  configs: readonly RunConfig[];
  /**
   * Every setting given, with the method options as given: what two comparisons are compared by
   * (method = the options method of flat options, else the first compared method).
   */
  settings: RunConfig;
}

export type InvocationConfig = MethodConfig | ComparisonConfig;

/** What a directory records of the invocation that wrote it (`readInvocation`). */
export interface RecordedInvocation {
  layout: InvocationLayout;
  /** The config keys as recorded (`method` absent in a comparison). */
  partial: Record<string, unknown>;
  /** `partial` resolved. */
  config: InvocationConfig;
}

/** What one `clap4clip run` does, and where. */
export interface Invocation extends RecordedInvocation {
  /** The --out (or --resume) directory. */
  root: string;
  /** Continue what `root` holds. */
  resume: boolean;
  /** Replace a run of a different config. */
  force: boolean;
  /** What `root` recorded, when already read (a resume reads it first); undefined: not read yet. */
  recorded?: RecordedInvocation | null;
  /** Method options the no-argument benchmark chose for methods given none (`QUICK_BENCHMARK_METHOD_OPTIONS`), to be said with the run. */
  benchmarkOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export const isMethodName = (m: string): m is MethodName => (METHOD_NAMES as readonly string[]).includes(m);

/** Checks a --methods list: known names, no repeats, at least one. Throws Clap4ClipError. */
export function checkMethodList(methods: readonly string[]): MethodName[] {
  if (methods.length === 0) throw new Clap4ClipError('--methods needs at least one method name (e.g. --methods simplecil,ranpac)');
  for (const [i, m] of methods.entries()) {
    if (!isMethodName(m)) throw new Clap4ClipError(`--methods: unknown method "${m}": must be one of [${METHOD_NAMES.join(', ')}]`);
    if (methods.indexOf(m) !== i) throw new Clap4ClipError(`--methods names "${m}" twice`);
  }
  return methods.filter(isMethodName);
}

/**
 * The method options of each compared method, from the options given to a comparison:
 * - keyed by method name, e.g. {"clap": {"beta": 15}, "ranpac": {"M": 2000}}: each compared
 *   method gets its own entry ({} when absent); a key naming a method not compared is an error;
 * - flat (no key is a method name), e.g. {"beta": 15}: all of it goes to clap, which must be
 *   compared (the form comparisons took before keyed options);
 * a mix of both is an error.
 */
export function comparisonOptions(methods: readonly MethodName[], given: unknown): { perMethod: Record<string, unknown>[]; flat: boolean } {
  const none = { perMethod: methods.map(() => ({})), flat: false };
  if (given === undefined || given === null || typeof given !== 'object' || Array.isArray(given)) return none; // resolveRunConfig reports a bad type
  const keys = Object.keys(given);
  if (keys.length === 0) return none;
  const named = keys.filter(isMethodName);
  const example = `e.g. {${JSON.stringify(methods[0])}: {...}}`;
  if (named.length === 0) {
    if (!methods.includes(COMPARISON_OPTIONS_METHOD)) {
      throw new Clap4ClipError(`config: in a comparison, "methodOptions" is a JSON object keyed by method name (${example}); ${JSON.stringify(keys[0])} is not one of the compared methods [${methods.join(', ')}]`);
    }
    return { perMethod: methods.map((m) => (m === COMPARISON_OPTIONS_METHOD ? { ...given } : {})), flat: true };
  }
  if (named.length !== keys.length) {
    const stray = keys.find((k) => !isMethodName(k))!;
    throw new Clap4ClipError(`config: "methodOptions" mixes method names and option names (${JSON.stringify(stray)}); in a comparison key every option by its method, ${example}`);
  }
  const out = methods.map((m) => {
    const v = (given as Record<string, unknown>)[m];
    if (v === undefined) return {};
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Clap4ClipError(`config: "methodOptions.${m}" must be a JSON object of ${m}'s options, got ${JSON.stringify(v)}`);
    return { ...(v as object) };
  });
  for (const k of named) if (!methods.includes(k)) throw new Clap4ClipError(`config: "methodOptions" has options for ${k}, which is not compared (compared: ${methods.join(', ')})`);
  return { perMethod: out, flat: false };
}

/**
 * `partial` resolved into the configs of its runs: one config, or (`methods`: a comparison) one
 * per compared method. The settings config is resolved first, so a bad key is reported as for a
 * single run. Throws Clap4ClipError.
 */
export function resolveInvocationConfig(methods: readonly string[] | null, partial: Record<string, unknown>): InvocationConfig {
  if (methods === null) return { kind: 'method', config: resolveRunConfig(partial) };
  const list = checkMethodList(methods);
  const { perMethod, flat } = comparisonOptions(list, partial['methodOptions']);
  const settings = resolveRunConfig({ ...partial, method: flat ? COMPARISON_OPTIONS_METHOD : list[0] });
  const configs = list.map((m, i) => ({ ...settings, method: m, methodOptions: perMethod[i]! }));
  return { kind: 'comparison', methods: list, configs, settings };
}

/** The config holding every setting of `config` (a comparison's: see `ComparisonConfig.settings`). */
export function settingsOf(config: InvocationConfig): RunConfig {
  if (config.kind === 'method') return config.config;
  return config.settings;
}

/** `config` with every run's `out` set to `root` (the planned runs then move it to their directory). */
export function withOut(config: InvocationConfig, root: string): InvocationConfig {
  if (config.kind === 'method') return { ...config, config: { ...config.config, out: root } };
  return { ...config, configs: config.configs.map((c) => ({ ...c, out: root })), settings: { ...config.settings, out: root } };
}

/** One run directory of the invocation. */
export interface PlannedRun {
  dir: string;
  /** Its config (out = dir). */
  config: RunConfig;
}

/** The runs of one method: in `dir` itself, or one per seed in `dir/run-<seed>/` (then summarized there). */
export interface MethodRuns {
  method: MethodName;
  dir: string;
  repeated: boolean;
  runs: PlannedRun[];
}

/** Every run directory of `inv`, in the order they run. */
export function planRuns(inv: Invocation): MethodRuns[] {
  const compare = inv.config.kind === 'comparison';
  if (inv.layout === 'one run' && !compare) {
    const config = { ...settingsOf(inv.config), out: inv.root };
    return [{ method: config.method, dir: inv.root, repeated: false, runs: [{ dir: inv.root, config }] }];
  }
  const configs = inv.config.kind === 'comparison' ? inv.config.configs : [inv.config.config];
  return configs.map((config) => {
    const dir = compare ? path.join(inv.root, config.method) : inv.root;
    const repeated = config.runs > 1;
    const runs = Array.from({ length: config.runs }, (_, r) => {
      const seed = config.seed + r;
      const runDir = repeated ? path.join(dir, runDirName(seed)) : dir;
      return { dir: runDir, config: { ...config, seed, out: runDir } };
    });
    return { method: config.method, dir, repeated, runs };
  });
}
