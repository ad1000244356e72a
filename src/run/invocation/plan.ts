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
import { resolveRunConfig, type MethodName, type RunConfig } from '../config.js';
import { runDirName } from '../repeatedRuns.js';

/** Methods compared when no --method is given, in the order they run. */
export const COMPARED_METHODS: MethodName[] = ['zeroshot', 'clip-adapter', 'clap'];
/** The compared method the given method options are for (the others take none). */
export const COMPARISON_OPTIONS_METHOD: MethodName = 'clap';

/** How an invocation's runs sit in its directory (named so in error messages). */
export type InvocationLayout = 'one run' | 'repeated runs' | 'comparison';

/** One method's config: one run, or `runs` runs with seeds seed, seed + 1, ... */
export interface MethodConfig {
  kind: 'method';
  config: RunConfig;
}

/**
 * A comparison: every compared method on the same data, protocol and seeds. The configs differ
 * only in `method` and `methodOptions`: the given method options go to `optionsMethod` alone, so
 * its config holds every setting given (it is what two comparisons are compared by).
 */
export interface ComparisonConfig {
  kind: 'comparison';
  /** One config per compared method (its first seed), in `COMPARED_METHODS` order. */
  configs: readonly RunConfig[];
  optionsMethod: MethodName;
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
}

/**
 * `partial` resolved into the configs of its runs: one config, or (`compare`) one per compared
 * method. The options method is resolved first: its config carries every given key, so a bad key
 * is reported as for a single run. Throws Clap4ClipError.
 */
export function resolveInvocationConfig(compare: boolean, partial: Record<string, unknown>): InvocationConfig {
  if (!compare) return { kind: 'method', config: resolveRunConfig(partial) };
  const optionsMethod = COMPARISON_OPTIONS_METHOD;
  const withOptions = resolveRunConfig({ ...partial, method: optionsMethod });
  const configs = COMPARED_METHODS.map((m) => (m === optionsMethod ? withOptions : resolveRunConfig({ ...partial, method: m, methodOptions: {} })));
  return { kind: 'comparison', configs, optionsMethod };
}

/** The config holding every setting of `config` (a comparison's: its options method's). */
export function settingsOf(config: InvocationConfig): RunConfig {
  if (config.kind === 'method') return config.config;
  return config.configs.find((c) => c.method === config.optionsMethod)!;
}

/** `config` with every run's `out` set to `root` (the planned runs then move it to their directory). */
export function withOut(config: InvocationConfig, root: string): InvocationConfig {
  if (config.kind === 'method') return { ...config, config: { ...config.config, out: root } };
  return { ...config, configs: config.configs.map((c) => ({ ...c, out: root })) };
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
