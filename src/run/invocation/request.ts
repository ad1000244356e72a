/**
 * The invocation a `clap4clip run` asks for: a new one from the given config keys, or the one
 * recorded in a --resume directory with the given keys over it. Its configs are resolved here,
 * once (`resolveInvocationConfig`).
 */
import * as path from 'node:path';
import { Clap4ClipError } from '../../util/errors.js';
import { DEFAULT_RUN_CONFIG, type RunConfig } from '../config.js';
import { CONFIG_FILE } from '../runDirectory.js';
import { COMPARED_METHODS, COMPARISON_OPTIONS_METHOD, isMethodName, resolveInvocationConfig, settingsOf, withOut, type Invocation } from './plan.js';
import { INVOCATION_FILE, readInvocation } from './record.js';

/**
 * The no-argument benchmark: the `benchmark` synthetic world (100 classes in 10 tasks, 60 train /
 * 30 test images per class, D = 256) with the reference protocol except a memory of 1000 (the
 * reference's 2000 would hold a third of this smaller training set). Applied under the user's own
 * settings, and not at all with --full or a data directory.
 */
export const QUICK_BENCHMARK: Partial<RunConfig> = { syntheticPreset: 'benchmark', memorySize: 1000 };

/**
 * Method options of the no-argument benchmark where a method's own default does not fit its few
 * minutes, with the reason said with the run. A user's own options for the method replace them.
 * RanPAC's 10,000 random features (the authors') took 162 s of CPU alone on this world (D = 256);
 * 2048 take about 6 s.
 */
export const QUICK_BENCHMARK_METHOD_OPTIONS: Readonly<Record<string, { options: Readonly<Record<string, unknown>>; authors: Readonly<Record<string, unknown>>; why: string }>> = {
  ranpac: { options: { M: 2048 }, authors: { M: 10000 }, why: 'take about 3 minutes alone on this benchmark' },
};

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `given` method options (one method's, or a comparison's: keyed by method, or flat for clap) with
 * the benchmark's for every run method that was given none; and those added. Options of a form
 * `comparisonOptions` refuses are returned unchanged, for it to report.
 */
export function withBenchmarkMethodOptions(methods: readonly string[], compare: boolean, given: unknown): { methodOptions: unknown; added: Record<string, Readonly<Record<string, unknown>>> } {
  const added: Record<string, Readonly<Record<string, unknown>>> = {};
  const wanted = methods.filter((m) => Object.hasOwn(QUICK_BENCHMARK_METHOD_OPTIONS, m));
  if (wanted.length === 0) return { methodOptions: given, added };
  if (!compare) {
    if (given !== undefined) return { methodOptions: given, added };
    added[wanted[0]!] = QUICK_BENCHMARK_METHOD_OPTIONS[wanted[0]!]!.options;
    return { methodOptions: { ...added[wanted[0]!] }, added };
  }
  let keyed: Record<string, unknown>;
  if (given === undefined) keyed = {};
  else if (!isPlainObject(given)) return { methodOptions: given, added };
  else {
    const keys = Object.keys(given);
    const named = keys.filter(isMethodName);
    if (named.length === keys.length) keyed = { ...given };
    else if (named.length === 0 && methods.includes(COMPARISON_OPTIONS_METHOD)) keyed = { [COMPARISON_OPTIONS_METHOD]: given };
    else return { methodOptions: given, added };
  }
  for (const m of wanted) {
    if (keyed[m] !== undefined) continue;
    added[m] = QUICK_BENCHMARK_METHOD_OPTIONS[m]!.options;
    keyed[m] = { ...added[m] };
  }
  return { methodOptions: keyed, added };
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

/**
 * A new invocation of `given` (config file + flags) over the benchmark defaults (`full`: the full
 * synthetic protocol instead). With `methods` (--methods) it compares those; without them and
 * without `method` it compares COMPARED_METHODS. Its directory defaults to
 * `runs/<method or compare>-<time>`.
 */
export function newInvocation(given: Record<string, unknown>, full: boolean, force: boolean, methods: readonly string[] | null = null): Invocation {
  const isSyntheticData = (given['data'] ?? DEFAULT_RUN_CONFIG.data) === 'synthetic';
  if (full && !isSyntheticData) throw new Clap4ClipError('run: --full selects the full synthetic protocol; it cannot be combined with a data directory');
  if (methods !== null && given['method'] !== undefined) throw new Clap4ClipError(`run: --method ${given['method']} and --methods ${methods.join(',')} contradict each other (one method, or a comparison)`);
  const quick = isSyntheticData && !full;
  const partial: Record<string, unknown> = { ...(quick ? QUICK_BENCHMARK : {}), ...given };
  const compare = given['method'] === undefined;
  const runMethods = compare ? (methods ?? COMPARED_METHODS) : [String(given['method'])];
  const benchmark = quick ? withBenchmarkMethodOptions(runMethods, compare, partial['methodOptions']) : { methodOptions: partial['methodOptions'], added: {} };
  if (benchmark.methodOptions !== undefined) partial['methodOptions'] = benchmark.methodOptions;
  const config = resolveInvocationConfig(compare ? runMethods : null, partial);
  const settings = settingsOf(config);
  const root = settings.out ?? path.join('runs', `${compare ? 'compare' : settings.method}-${timestamp()}`);
  partial['out'] = root;
  const layout = compare ? 'comparison' : settings.runs === 1 ? 'one run' : 'repeated runs';
  return { root, layout, partial, config: withOut(config, root), resume: false, force, ...(Object.keys(benchmark.added).length > 0 ? { benchmarkOptions: benchmark.added } : {}) };
}

/**
 * The invocation recorded in `root` (config.json of one run, or invocation.json), with `given`
 * over it: a key that changes results is refused later (`checkDirectories`), naming it.
 */
export async function resumedInvocation(root: string, given: Record<string, unknown>, flags: { force: boolean; full: boolean; methods?: readonly string[] | null }): Promise<Invocation> {
  if (flags.force) throw new Clap4ClipError('--force and --resume contradict each other: --resume continues a run, --force replaces it');
  if (flags.full) throw new Clap4ClipError('run: --full cannot be combined with --resume (a resumed run keeps its own config)');
  const out = given['out'];
  if (typeof out === 'string' && path.resolve(out) !== path.resolve(root)) throw new Clap4ClipError(`run: --out ${out} and --resume ${root} name different directories`);
  const stored = await readInvocation(root);
  if (stored === null) {
    throw new Clap4ClipError(`nothing to resume: no ${CONFIG_FILE} or ${INVOCATION_FILE} here (a run stopped before it wrote either starts again with its original command)`, { file: root });
  }
  const recorded = stored.config.kind === 'comparison' ? stored.config.methods : null;
  const methods = flags.methods ?? null;
  if (recorded !== null && given['method'] !== undefined) {
    throw new Clap4ClipError(`cannot resume with a changed config; differing keys: method (comparison of ${recorded.join(', ')} -> ${JSON.stringify(given['method'])})`, { file: root });
  }
  if (recorded === null && methods !== null) {
    throw new Clap4ClipError(`cannot resume with a changed config: --methods ${methods.join(',')} asks for a comparison, and this directory holds ${stored.layout === 'one run' ? 'one run' : 'repeated runs'} of ${settingsOf(stored.config).method}`, { file: root });
  }
  if (recorded !== null && methods !== null && methods.join(',') !== recorded.join(',')) {
    throw new Clap4ClipError(`cannot resume with a changed config; differing keys: methods (${recorded.join(',')} -> ${methods.join(',')}) (resume with the run's own list, or start over with --force)`, { file: root });
  }
  const partial = { ...stored.partial, ...given, out: root };
  return { root, layout: stored.layout, partial, config: resolveInvocationConfig(recorded, partial), resume: true, force: false, recorded: stored };
}
