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
import { methods } from '../../methods/registry.js';
import {
  DEFAULT_RUN_CONFIG,
  didYouMean,
  flagOf,
  resolveRunConfig,
  RUN_CONFIG_FIELDS,
  SYNTHETIC_PRESETS,
  type FieldSpec,
  type RunConfig,
} from '../../run/config.js';
import { scenarioFor, type StepRecord } from '../../run/loop.js';
import { repeatedRunsTable, summarizeRepeatedRuns, writeRepeatedRunsSummary, type RepeatedRunsSummary } from '../../run/repeatedRuns.js';
import { isSynthetic, type RunResults } from '../../run/results.js';
import { CONFIG_FILE } from '../../run/runDirectory.js';
import { exitCodeFor, listenForStopSignals, RunInterrupted, StopRequest } from '../../run/signals.js';
import { writeJsonAtomic } from '../../util/atomicWrite.js';
import { Clap4ClipError } from '../../util/errors.js';
import {
  buildMethod, COMPARED_METHODS, INVOCATION_FILE, planRuns, prepareInvocation, readInvocation, runOne, writeRunReport,
  type BuiltMethod, type Invocation,
} from './runOne.js';
import { PROCESS_IO, type CommandIO } from './io.js';

export { COMPARED_METHODS, type CommandIO };

/**
 * The no-argument benchmark: the `benchmark` synthetic world (100 classes in 10 tasks, 60 train /
 * 30 test images per class, D = 256) with the reference protocol except a memory of 1000 (the
 * reference's 2000 would hold a third of this smaller training set). Applied under the user's own
 * settings, and not at all with --full or a data directory.
 */
export const QUICK_BENCHMARK: Partial<RunConfig> = { syntheticPreset: 'benchmark', memorySize: 1000 };

const FLAG_TO_FIELD = new Map<string, FieldSpec>(RUN_CONFIG_FIELDS.map((f) => [flagOf(f.key), f]));
const EXTRA_FLAGS = ['--config', '--full', '--resume', '--force', '--help', '-h'];

export function runHelp(): string {
  const rows = RUN_CONFIG_FIELDS.map((f) => {
    const d = DEFAULT_RUN_CONFIG[f.key];
    const shown = f.boolean ? '' : ` ${f.arg}`;
    return `  ${(flagOf(f.key) + shown).padEnd(40)} ${f.help} (default ${JSON.stringify(d)})`;
  });
  const methodRows = Object.entries(methods).map(([n, m]) => `  ${n.padEnd(20)} ${m.description}`);
  return [
    'Usage: clap4clip run [--config file.json] [--data DIR|synthetic] [--method NAME] [--seed N] [--out DIR] [options]',
    '       clap4clip run --resume DIR',
    '',
    'Without --method: runs zeroshot, clip-adapter and clap on the same data and prints a comparison.',
    'Without --data: the synthetic "benchmark" world (100 classes, 10 tasks, 60/30 images per class, D = 256,',
    'memory 1000), a few minutes on 2 cores. Results on synthetic features are labelled synthetic.',
    'When comparing, --method-options go to clap only.',
    '',
    'A checkpoint is written after every task. Ctrl-C (SIGINT) or SIGTERM stops at the next safe point and',
    'keeps the last complete checkpoint (a task cut short is redone on --resume); a second signal quits at',
    'once, which is also safe. The run ends by writing report.html into its directory.',
    '',
    '  --config FILE                            JSON object of config keys (flags override it)',
    '  --full                                   the full CIFAR-100-sized synthetic protocol (500/100 per class, D = 512, memory 2000)',
    '  --resume DIR                             continue the run(s) in DIR from the last complete task (same results as',
    '                                           an uninterrupted run); options given must match the run\'s config',
    '  --force                                  replace a run of a different config in --out DIR',

    ...rows,
    '',
    'Methods:',
    ...methodRows,
  ].join('\n');
}

interface ParsedArgs {
  help: boolean;
  full: boolean;
  force: boolean;
  /** --resume DIR. */
  resume: string | null;
  configFile: string | null;
  /** Config values from flags, by key. */
  values: Record<string, unknown>;
}

/** `--flag value`, `--flag=value`, boolean `--flag`; unknown flags fail with a suggestion. */
export function parseRunArgs(args: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { help: false, full: false, force: false, resume: null, configFile: null, values: {} };
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
    else if (flag === '--force') out.force = true;
    else if (flag === '--resume') out.resume = takeValue();
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


// ---------------------------------------------------------------------------------------------
// What to run: a new invocation from the options, or the one recorded in a --resume directory

/** A new invocation of `given` (config file + flags) over the benchmark defaults. */
function newInvocation(given: Record<string, unknown>, full: boolean, force: boolean): Invocation {
  const isSyntheticData = (given['data'] ?? DEFAULT_RUN_CONFIG.data) === 'synthetic';
  if (full && !isSyntheticData) throw new Clap4ClipError('run: --full selects the full synthetic protocol; it cannot be combined with a data directory');
  const partial: Record<string, unknown> = { ...(isSyntheticData && !full ? QUICK_BENCHMARK : {}), ...given };
  const compare = given['method'] === undefined;
  const probe = resolveRunConfig(compare ? { ...partial, method: 'clap' } : partial);
  const root = probe.out ?? path.join('runs', `${compare ? 'compare' : probe.method}-${timestamp()}`);
  partial['out'] = root;
  return { root, single: !compare && probe.runs === 1, compare, partial, resume: false, force };
}

/**
 * The invocation recorded in `root` (config.json of one run, or invocation.json), with `given`
 * over it: a key that changes results is refused later (`checkDirectories`), naming it.
 */
async function resumedInvocation(root: string, given: Record<string, unknown>, parsed: ParsedArgs): Promise<Invocation> {
  if (parsed.force) throw new Clap4ClipError('--force and --resume contradict each other: --resume continues a run, --force replaces it');
  if (parsed.full) throw new Clap4ClipError('run: --full cannot be combined with --resume (a resumed run keeps its own config)');
  const out = given['out'];
  if (typeof out === 'string' && path.resolve(out) !== path.resolve(root)) throw new Clap4ClipError(`run: --out ${out} and --resume ${root} name different directories`);
  const stored = await readInvocation(root);
  if (stored === null) {
    throw new Clap4ClipError(`nothing to resume: no ${CONFIG_FILE} or ${INVOCATION_FILE} here (a run stopped before it wrote either starts again with its original command)`, { file: root });
  }
  if (stored.compare && given['method'] !== undefined) {
    throw new Clap4ClipError(`cannot resume with a changed config; differing keys: method (comparison of ${COMPARED_METHODS.join(', ')} -> ${JSON.stringify(given['method'])})`, { file: root });
  }
  return { root, ...stored, partial: { ...stored.partial, ...given, out: root }, resume: true, force: false };
}

/** A path as a shell word (quoted when it needs to be). */
function shellWord(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export interface RunCommandOptions {
  /** The run's stop request (default: a new one, set by SIGINT/SIGTERM while the runs are going). */
  stop?: StopRequest;
  /** Called after every task of every run, once its checkpoint is committed. */
  onStep?: (dir: string, step: StepRecord) => void | Promise<void>;
}

/**
 * Entry of `clap4clip run`. Returns the exit code (0; 128 + signal number when stopped by a
 * signal, after printing how to resume); throws Clap4ClipError on bad input.
 */
export async function runCommand(args: string[], io: CommandIO = PROCESS_IO, options: RunCommandOptions = {}): Promise<number> {
  const parsed = parseRunArgs(args);
  if (parsed.help) {
    io.stdout.write(runHelp() + '\n');
    return 0;
  }
  const fromFile = parsed.configFile === null ? {} : await readConfigFile(parsed.configFile);
  const given = { ...fromFile, ...parsed.values };
  const inv = parsed.resume !== null ? await resumedInvocation(parsed.resume, given, parsed) : newInvocation(given, parsed.full, parsed.force);
  const plan = planRuns(inv);
  const first = plan[0]!.leaves[0]!.config;

  const ds = await loadRunData(first);
  io.stdout.write(`clap4clip run: ${describeData(first, ds, scenarioFor(first, ds).tasks.length)}\n`);
  // Every method is built for its first run before any training, so bad options fail early.
  const builtFirst: BuiltMethod[] = [];
  for (const m of plan) builtFirst.push(await buildMethod(m.leaves[0]!.config, ds));
  await prepareInvocation(inv, plan);

  const stop = options.stop ?? new StopRequest();
  const stopListening = options.stop ? () => undefined : listenForStopSignals(stop, io.stderr);
  let current = inv.root;
  try {
    const all: RunResults[] = [];
    const summaries: RepeatedRunsSummary[] = [];
    for (const [i, m] of plan.entries()) {
      const runs: RunResults[] = [];
      for (const [r, leaf] of m.leaves.entries()) {
        if (stop.reason !== null) throw new RunInterrupted(stop.reason, `before starting ${leaf.dir}`);
        current = leaf.dir;
        const res = await runOne(ds, leaf, io, { resume: inv.resume, force: inv.force, stop, built: r === 0 ? builtFirst[i]! : undefined, onStep: options.onStep });
        runs.push(res);
        io.stdout.write(`  ${res.method}${m.repeated ? ` seed ${leaf.config.seed}` : ''}: average ${pct(res.averageAccuracy)}%, last ${pct(res.lastAccuracy)}% in ${res.totalSeconds.toFixed(1)}s -> ${path.join(leaf.dir, 'results.json')}\n`);
      }
      current = inv.root;
      all.push(...runs);
      if (m.repeated) {
        const summary = summarizeRepeatedRuns(runs);
        await writeRepeatedRunsSummary(m.dir, summary);
        summaries.push(summary);
      }
    }
    io.stdout.write('\n' + (all[0]!.synthetic ? 'Results on SYNTHETIC features (not CLIP):\n' : '') + comparisonTable(all) + '\n');
    io.stdout.write(`accuracies in %, BWT/forgetting in points, ECE (15 bins) of the final step: dataset-level and mean over test batches${all.some((r) => r.noveltyMean.energy) ? '; AUROC: novel data detection by energy, mean over steps' : ''}\n`);
    for (const summary of summaries) io.stdout.write('\n' + repeatedRunsTable(summary) + '\n');
    if (inv.compare) await writeComparison(inv.root, all, summaries);
    if (stop.reason !== null) throw new RunInterrupted(stop.reason, 'before writing the report');
    await writeRunReport(inv, plan, io);
  } catch (err) {
    if (!(err instanceof RunInterrupted)) throw err;
    const of = current !== inv.root ? ` of ${current}` : '';
    io.stderr.write(`clap4clip: ${err.message}${of}; resume with \`clap4clip run --resume ${shellWord(inv.root)}\`\n`);
    return exitCodeFor(err.reason);
  } finally {
    stopListening();
  }
  return 0;
}

async function writeComparison(root: string, all: RunResults[], summaries: RepeatedRunsSummary[]): Promise<void> {
  await writeJsonAtomic(path.join(root, 'comparison.json'), {
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
      results: path.relative(root, path.join(r.config.out!, 'results.json')),
    })),
    ...(summaries.length > 0 ? { summaries: summaries.map((x) => path.join(x.method, 'summary.json')) } : {}),
  });
}
