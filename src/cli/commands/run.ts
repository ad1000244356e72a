/**
 * `clap4clip run`: train and evaluate one method, or (without --method) compare zeroshot,
 * clip-adapter and clap on the same data and print a table.
 *
 * Flags are the config keys in kebab-case (`--finetune-epochs 2` sets `finetuneEpochs`); a JSON
 * file given with --config supplies a base, flags override it. Without any data option the data
 * is the `benchmark` synthetic world (fast: see QUICK_BENCHMARK); --full uses the CIFAR-100-sized
 * one with the reference protocol.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { loadFeaturesDataset, validateFeaturesDataset } from '../../data/featuresDataset.js';
import { generateSyntheticDataset } from '../../data/synthetic.js';
import type { FeaturesDataset } from '../../data/types.js';
import { createMethod, methods } from '../../methods/registry.js';
import {
  DEFAULT_RUN_CONFIG,
  didYouMean,
  flagOf,
  resolveRunConfig,
  RUN_CONFIG_FIELDS,
  SYNTHETIC_PRESETS,
  type FieldSpec,
  type MethodName,
  type RunConfig,
} from '../../run/config.js';
import type { Method, MethodContext } from '../../methods/method.js';
import { methodContextFor, runClassIncremental, scenarioFor, type StepRecord } from '../../run/loop.js';
import { progressFactory } from '../../run/progress.js';
import { repeatedRunsTable, runDirName, summarizeRepeatedRuns, writeRepeatedRunsSummary, type RepeatedRunsSummary } from '../../run/repeatedRuns.js';
import { isSynthetic, summarizeRun, writeRunResults, type RunResults } from '../../run/results.js';
import { writeJsonAtomic } from '../../util/atomicWrite.js';
import { Clap4ClipError } from '../../util/errors.js';

/** Where a command writes: stdout for results, stderr for progress (both replaceable in tests). */
export interface CommandIO {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}
const PROCESS_IO: CommandIO = { stdout: process.stdout, stderr: process.stderr };

/** Methods compared when no --method is given. */
export const COMPARED_METHODS: MethodName[] = ['zeroshot', 'clip-adapter', 'clap'];

/**
 * The no-argument benchmark: the `benchmark` synthetic world (100 classes in 10 tasks, 60 train /
 * 30 test images per class, D = 256) with the reference protocol except a memory of 1000 (the
 * reference's 2000 would hold a third of this smaller training set). Applied under the user's own
 * settings, and not at all with --full or a data directory.
 */
export const QUICK_BENCHMARK: Partial<RunConfig> = { syntheticPreset: 'benchmark', memorySize: 1000 };

const FLAG_TO_FIELD = new Map<string, FieldSpec>(RUN_CONFIG_FIELDS.map((f) => [flagOf(f.key), f]));
const EXTRA_FLAGS = ['--config', '--full', '--help', '-h'];

export function runHelp(): string {
  const rows = RUN_CONFIG_FIELDS.map((f) => {
    const d = DEFAULT_RUN_CONFIG[f.key];
    const shown = f.boolean ? '' : ` ${f.arg}`;
    return `  ${(flagOf(f.key) + shown).padEnd(40)} ${f.help} (default ${JSON.stringify(d)})`;
  });
  const methodRows = Object.entries(methods).map(([n, m]) => `  ${n.padEnd(20)} ${m.description}`);
  return [
    'Usage: clap4clip run [--config file.json] [--data DIR|synthetic] [--method NAME] [--seed N] [--out DIR] [options]',
    '',
    'Without --method: runs zeroshot, clip-adapter and clap on the same data and prints a comparison.',
    'Without --data: the synthetic "benchmark" world (100 classes, 10 tasks, 60/30 images per class, D = 256,',
    'memory 1000), a few minutes on 2 cores. Results on synthetic features are labelled synthetic.',
    'When comparing, --method-options go to clap only.',
    '',
    '  --config FILE                            JSON object of config keys (flags override it)',
    '  --full                                   the full CIFAR-100-sized synthetic protocol (500/100 per class, D = 512, memory 2000)',
    ...rows,
    '',
    'Methods:',
    ...methodRows,
  ].join('\n');
}

interface ParsedArgs {
  help: boolean;
  full: boolean;
  configFile: string | null;
  /** Config values from flags, by key. */
  values: Record<string, unknown>;
}

/** `--flag value`, `--flag=value`, boolean `--flag`; unknown flags fail with a suggestion. */
export function parseRunArgs(args: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { help: false, full: false, configFile: null, values: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) throw new Clap4ClipError(`run: unexpected argument "${arg}" (options start with --; see clap4clip run --help)`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new Clap4ClipError(`run: option ${flag} needs a value`);
      i++;
      return next;
    };
    if (flag === '--help' || flag === '-h') out.help = true;
    else if (flag === '--full') out.full = true;
    else if (flag === '--config') out.configFile = takeValue();
    else {
      const field = FLAG_TO_FIELD.get(flag);
      if (field === undefined) {
        const hint = didYouMean(flag, [...FLAG_TO_FIELD.keys(), ...EXTRA_FLAGS]);
        throw new Clap4ClipError(`run: unknown option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}; see clap4clip run --help`);
      }
      const raw = field.boolean && inline === undefined ? 'true' : takeValue();
      out.values[field.key] = field.fromFlag ? field.fromFlag(raw) : raw;
    }
  }
  return out;
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let textContent: string;
  try {
    textContent = await readFile(file, 'utf8');
  } catch (err) {
    throw new Clap4ClipError(`cannot read the config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file, cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(textContent);
  } catch (err) {
    throw new Clap4ClipError(`the config file is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Clap4ClipError('the config file must hold a JSON object', { file });
  return value as Record<string, unknown>;
}

/** The dataset of `config`: the synthetic world generated in memory, or a features directory. */
export async function loadRunData(config: RunConfig): Promise<FeaturesDataset> {
  if (config.data !== 'synthetic') return loadFeaturesDataset(config.data);
  // The world is fixed (seed 0 unless overridden); the run seed changes order, init and noise.
  const ds = generateSyntheticDataset({ ...SYNTHETIC_PRESETS[config.syntheticPreset], ...config.syntheticOptions });
  validateFeaturesDataset(ds, { dir: 'synthetic' });
  return ds;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

const pct = (x: number | null): string => (x === null ? '-' : (100 * x).toFixed(2));
const signedPct = (x: number | null): string => (x === null ? '-' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * The comparison table (accuracies, BWT and forgetting in %, ECE of the final step, and the mean
 * energy AUROC of novelty detection when measured). Rows are labelled `method` (with the seed when
 * a method has several runs).
 */
export function comparisonTable(results: RunResults[]): string {
  const withNovelty = results.some((r) => r.noveltyMean.energy !== undefined);
  const head = ['method', 'avg acc', 'last acc', 'BWT', 'forgetting', 'ECE', 'ECE/batch', ...(withNovelty ? ['AUROC'] : []), 'time'];
  const repeated = new Set(results.filter((r, i) => results.findIndex((q) => q.method === r.method) !== i).map((r) => r.method));
  const rows = results.map((r) => [
    repeated.has(r.method) ? `${r.method} seed ${r.config.seed}` : r.method,
    pct(r.averageAccuracy),
    pct(r.lastAccuracy),
    signedPct(r.backwardTransfer),
    pct(r.forgetting),
    r.ece.dataset[r.ece.dataset.length - 1]!.toFixed(4),
    r.ece.perBatchMean[r.ece.perBatchMean.length - 1]!.toFixed(4),
    ...(withNovelty ? [r.noveltyMean.energy === undefined ? '-' : pct(r.noveltyMean.energy.auroc)] : []),
    `${r.totalSeconds.toFixed(1)}s`,
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: string[]): string => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

function describeData(config: RunConfig, ds: FeaturesDataset, tasks: number): string {
  const kind = isSynthetic(ds) ? `SYNTHETIC features (preset "${config.syntheticPreset}", not real CLIP)` : `features from ${config.data} (${ds.manifest.encoder})`;
  const seeds = config.runs > 1 ? `seeds ${config.seed}..${config.seed + config.runs - 1}` : `seed ${config.seed}`;
  return `${kind}: ${ds.numClasses} classes in ${tasks} tasks, D = ${ds.manifest.dim}, ${ds.train.n} train / ${ds.test.n} test, ${seeds}, eval batching ${config.evalBatching}${config.novelty ? ', novelty detection on' : ''}`;
}

/** A method and the context it was built with (the loop swaps evaluation noise into it). */
interface BuiltMethod {
  method: Method;
  context: MethodContext;
}

/** Build the method of `config` (fails early on bad method options, before any training). */
async function buildMethod(config: RunConfig, ds: FeaturesDataset): Promise<BuiltMethod> {
  const context = methodContextFor(config, ds);
  const method = await createMethod(config.method, context, {
    samples: config.samples,
    batchSize: config.batchSize,
    methodOptions: config.methodOptions,
  });
  return { method, context };
}

/** Train and evaluate one method; writes results.json + accuracy_matrix.csv into `dir`. */
async function runOne(config: RunConfig, ds: FeaturesDataset, { method, context }: BuiltMethod, dir: string, io: CommandIO): Promise<RunResults> {
  const progress = progressFactory(config.progress, io.stderr);
  const verbose = config.progress === 'always' || (config.progress === 'auto' && io.stderr.isTTY === true);
  const onStep = (s: StepRecord): void => {
    if (!verbose) return;
    io.stderr.write(`${config.method} after task ${s.task + 1}: acc ${pct(mean(s.accuracies))}% (tasks: ${s.accuracies.map((a) => pct(a)).join(' ')}), ECE ${s.eceDataset.toFixed(4)}, ${s.seconds.total.toFixed(1)}s\n`);
  };
  const loop = await runClassIncremental(config, ds, method, { context, progress, onStep });
  const results = summarizeRun(config, ds, method.name, loop);
  await writeRunResults(dir, results);
  return results;
}

/** Entry of `clap4clip run`. Returns the exit code; throws Clap4ClipError on bad input. */
export async function runCommand(args: string[], io: CommandIO = PROCESS_IO): Promise<number> {
  const parsed = parseRunArgs(args);
  if (parsed.help) {
    io.stdout.write(runHelp() + '\n');
    return 0;
  }
  const fromFile = parsed.configFile === null ? {} : await readConfigFile(parsed.configFile);
  const given = { ...fromFile, ...parsed.values };
  const isSyntheticData = (given['data'] ?? DEFAULT_RUN_CONFIG.data) === 'synthetic';
  if (parsed.full && !isSyntheticData) throw new Clap4ClipError('run: --full selects the full synthetic protocol; it cannot be combined with a data directory');
  const base = isSyntheticData && !parsed.full ? QUICK_BENCHMARK : {};
  const compare = given['method'] === undefined;
  const methodsToRun: MethodName[] = compare ? COMPARED_METHODS : [given['method'] as MethodName];
  // Method options are for the method run; when comparing, they go to clap (the others take none).
  const configs = methodsToRun.map((m) =>
    resolveRunConfig({ ...base, ...given, method: m, ...(compare && m !== 'clap' ? { methodOptions: {} } : {}) }),
  );
  const first = configs[0]!;
  const outRoot = first.out ?? path.join('runs', `${compare ? 'compare' : first.method}-${timestamp()}`);

  const ds = await loadRunData(first);
  io.stdout.write(`clap4clip run: ${describeData(first, ds, scenarioFor(first, ds).tasks.length)}\n`);
  // Every method is built for the first seed before any training, so bad options fail early.
  const builtFirst: BuiltMethod[] = [];
  for (const config of configs) builtFirst.push(await buildMethod(config, ds));
  const all: RunResults[] = [];
  const summaries: RepeatedRunsSummary[] = [];
  for (const [i, config] of configs.entries()) {
    const methodDir = compare ? path.join(outRoot, config.method) : outRoot;
    const runs: RunResults[] = [];
    // --runs N: seeds seed..seed+N-1, each in run-<seed>/ (a single run writes into methodDir).
    for (let r = 0; r < config.runs; r++) {
      const seeded = { ...config, seed: config.seed + r };
      const dir = config.runs > 1 ? path.join(methodDir, runDirName(seeded.seed)) : methodDir;
      const built = r === 0 ? builtFirst[i]! : await buildMethod(seeded, ds);
      const res = await runOne({ ...seeded, out: dir }, ds, built, dir, io);
      runs.push(res);
      io.stdout.write(`  ${res.method}${config.runs > 1 ? ` seed ${seeded.seed}` : ''}: average ${pct(res.averageAccuracy)}%, last ${pct(res.lastAccuracy)}% in ${res.totalSeconds.toFixed(1)}s -> ${path.join(dir, 'results.json')}\n`);
    }
    all.push(...runs);
    if (config.runs > 1) {
      const summary = summarizeRepeatedRuns(runs);
      await writeRepeatedRunsSummary(methodDir, summary);
      summaries.push(summary);
    }
  }
  io.stdout.write('\n' + (all[0]!.synthetic ? 'Results on SYNTHETIC features (not CLIP):\n' : '') + comparisonTable(all) + '\n');
  io.stdout.write(`accuracies in %, BWT/forgetting in points, ECE (15 bins) of the final step: dataset-level and mean over test batches${all.some((r) => r.noveltyMean.energy) ? '; AUROC: novel data detection by energy, mean over steps' : ''}\n`);
  for (const summary of summaries) io.stdout.write('\n' + repeatedRunsTable(summary) + '\n');
  if (compare) {
    await writeJsonAtomic(path.join(outRoot, 'comparison.json'), {
      synthetic: all[0]!.synthetic,
      methods: all.map((r) => ({
        method: r.method,
        seed: r.config.seed,
        averageAccuracy: r.averageAccuracy,
        lastAccuracy: r.lastAccuracy,
        backwardTransfer: r.backwardTransfer,
        forgetting: r.forgetting,
        ece: { dataset: r.ece.dataset.at(-1), perBatchMean: r.ece.perBatchMean.at(-1) },
        noveltyMean: r.noveltyMean,
        totalSeconds: r.totalSeconds,
        results: path.relative(outRoot, path.join(r.config.out!, 'results.json')),
      })),
      ...(summaries.length > 0 ? { summaries: summaries.map((x) => path.join(x.method, 'summary.json')) } : {}),
    });
  }
  return 0;
}
