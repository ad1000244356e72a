/**
 * `clap4clip run`: train and evaluate one method, or (without --method) compare zeroshot,
 * clip-adapter and clap on the same data and print a table.
 *
 * Flags are the config keys in kebab-case (`--finetune-epochs 2` sets `finetuneEpochs`); a JSON
 * file given with --config supplies a base, flags override it. Without any data option the data
 * is the `benchmark` synthetic world (fast: see QUICK_BENCHMARK); --full uses the CIFAR-100-sized
 * one with the reference protocol.
 */
import * as path from 'node:path';
import type { FeaturesDataset } from '../../data/types.js';
import { methods } from '../../methods/registry.js';
import { DEFAULT_RUN_CONFIG, didYouMean, flagOf, RUN_CONFIG_FIELDS, type FieldSpec, type RunConfig } from '../../run/config.js';
import {
  COMPARED_METHODS, loadRunData, newInvocation, planRuns, prepareInvocation, QUICK_BENCHMARK, resumedInvocation, runInvocation, startFirstRuns,
  type InvocationHooks,
} from '../../run/invocation/index.js';
import type { StepRecord } from '../../run/loop.js';
import { progressFactory } from '../../run/progress.js';
import { repeatedRunsTable } from '../../run/repeatedRuns.js';
import { isSynthetic, type RunResults } from '../../run/results.js';
import { exitCodeFor, listenForStopSignals, StopRequest } from '../../run/signals.js';
import { Clap4ClipError } from '../../util/errors.js';
import { readInputText } from '../../util/inputFile.js';
import { PROCESS_IO, type CommandIO } from './io.js';

export { COMPARED_METHODS, loadRunData, QUICK_BENCHMARK, type CommandIO };

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
  const textContent = await readInputText(file, 'config file');
  let value: unknown;
  try {
    value = JSON.parse(textContent);
  } catch (err) {
    throw new Clap4ClipError(`the config file is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Clap4ClipError('the config file must hold a JSON object', { file });
  return value as Record<string, unknown>;
}

const pct = (x: number | null): string => (x === null ? '-' : (100 * x).toFixed(2));
const signedPct = (x: number | null): string => (x === null ? '-' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`);

/**
 * The comparison table (accuracies, BWT and forgetting in %, ECE of the final step, and the mean
 * energy AUROC of novelty detection when measured). Rows are labelled `method` (with the seed when
 * a method has several runs).
 */
export function comparisonTable(results: readonly RunResults[]): string {
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
  const first = plan[0]!.runs[0]!.config;
  const ds = await loadRunData(first);
  // Every method is started for its first run before any directory is touched, so bad options fail early.
  const firstRuns = await startFirstRuns(plan, ds);
  io.stdout.write(`clap4clip run: ${describeData(first, ds, firstRuns[0]!.scenario.tasks.length)}\n`);
  const lock = await prepareInvocation(inv, plan);

  const stop = options.stop ?? new StopRequest();
  const stopListening = options.stop ? () => undefined : listenForStopSignals(stop, io.stderr);
  try {
    const outcome = await runInvocation(inv, plan, ds, firstRuns, { stop, lock, hooks: printingHooks(io, options) });
    if (outcome.status === 'interrupted') {
      const of = outcome.dir !== inv.root ? ` of ${outcome.dir}` : '';
      io.stderr.write(`clap4clip: ${outcome.interruption.message}${of}; resume with \`clap4clip run --resume ${shellWord(inv.root)}\`\n`);
      return exitCodeFor(outcome.interruption.reason);
    }
    const { report } = outcome;
    if ('file' in report) io.stdout.write(`report -> ${report.file}\n`);
    else io.stderr.write(`clap4clip: warning: the report was not written (${report.error.message}); the results are complete (\`clap4clip report\` can write it later)\n`);
  } finally {
    stopListening();
  }
  return 0;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** What the command prints of the runs: progress bars and step lines on stderr, results on stdout. */
function printingHooks(io: CommandIO, options: RunCommandOptions): InvocationHooks {
  return {
    progress: (run) => progressFactory(run.config.progress, io.stderr),
    onResume: (run, completedTask, tasks) => io.stdout.write(`  ${run.config.method}: resuming ${run.dir} after task ${completedTask + 1}/${tasks}\n`),
    onStep: async (run, s) => {
      const { config } = run;
      const verbose = config.progress === 'always' || (config.progress === 'auto' && io.stderr.isTTY === true);
      if (verbose) {
        const p = (x: number): string => (100 * x).toFixed(2);
        io.stderr.write(`${config.method} after task ${s.task + 1}: acc ${p(mean(s.accuracies))}% (tasks: ${s.accuracies.map(p).join(' ')}), ECE ${s.eceDataset.toFixed(4)}, ${s.seconds.total.toFixed(1)}s\n`);
      }
      await options.onStep?.(run.dir, s);
    },
    onRunDone: (run, of, res) => {
      io.stdout.write(`  ${res.method}${of.repeated ? ` seed ${run.config.seed}` : ''}: average ${pct(res.averageAccuracy)}%, last ${pct(res.lastAccuracy)}% in ${res.totalSeconds.toFixed(1)}s -> ${path.join(run.dir, 'results.json')}\n`);
    },
    onRunsDone: (all, summaries) => {
      io.stdout.write('\n' + (all[0]!.synthetic ? 'Results on SYNTHETIC features (not CLIP):\n' : '') + comparisonTable(all) + '\n');
      io.stdout.write(`accuracies in %, BWT/forgetting in points, ECE (15 bins) of the final step: dataset-level and mean over test batches${all.some((r) => r.noveltyMean.energy) ? '; AUROC: novel data detection by energy, mean over steps' : ''}\n`);
      for (const summary of summaries) io.stdout.write('\n' + repeatedRunsTable(summary) + '\n');
    },
  };
}
