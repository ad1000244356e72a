/**
 * What `clap4clip run` prints: the data line, progress (through `ProgressBoard`), one line per
 * finished run, the comparison table, and the JSON document of `--json`. Tables and prose fit the
 * output's width.
 */
import * as path from 'node:path';
import type { FeaturesDataset } from '../../data/types.js';
import type { RunConfig } from '../../run/config.js';
import { QUICK_BENCHMARK_METHOD_OPTIONS, type InvocationHooks } from '../../run/invocation/index.js';
import { ProgressBoard, progressStyle, type RunProgress } from '../../run/progress.js';
import { repeatedRunsTable, type RepeatedRunsSummary } from '../../run/repeatedRuns.js';
import { isSynthetic, type RunResults } from '../../run/results.js';
import type { StepRecord } from '../../run/loopResult.js';
import { wrapText } from '../args.js';
import type { CommandIO } from './io.js';

const pct = (x: number | null): string => (x === null ? '-' : (100 * x).toFixed(2));
const signedPct = (x: number | null): string => (x === null ? '-' : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`);

/**
 * The comparison table (accuracies, BWT and forgetting in %, ECE of the final step,
 * the dataset-level ECE after temperature scaling and the fitted T when calibrated, the mean
 * energy AUROC of novelty detection when measured, the exemplars kept after the last task: "none"
 * for an exemplar-free method). Rows are labelled `method` (with the seed when a method has
 * several runs).
 */
/** Columns left out, in this order, while the table is wider than the output (the legend still explains them). */
const DROPPABLE_COLUMNS = ['ECE/batch', 'T', 'time', 'BWT'];

export function comparisonTable(results: readonly RunResults[], columns = Infinity): string {
  const withNovelty = results.some((r) => r.noveltyMean.energy !== undefined);
  const calibrated = (r: RunResults) => r.calibration?.steps.at(-1);
  const withCalibration = results.some((r) => calibrated(r) !== undefined);
  const head = ['method', 'avg acc', 'last acc', 'BWT', 'forget', 'ECE', 'ECE/batch', ...(withCalibration ? ['ECE cal', 'T'] : []), ...(withNovelty ? ['AUROC'] : []), 'memory', 'time'];
  const repeated = new Set(results.filter((r, i) => results.findIndex((q) => q.method === r.method) !== i).map((r) => r.method));
  const rows = results.map((r) => [
    repeated.has(r.method) ? `${r.method} seed ${r.config.seed}` : r.method,
    pct(r.averageAccuracy),
    pct(r.lastAccuracy),
    signedPct(r.backwardTransfer),
    pct(r.forgetting),
    r.ece.dataset[r.ece.dataset.length - 1]!.toFixed(4),
    r.ece.perBatchMean[r.ece.perBatchMean.length - 1]!.toFixed(4),
    ...(withCalibration ? [calibrated(r)?.calibrated.eceDataset.toFixed(4) ?? '-', calibrated(r)?.temperature.toPrecision(3) ?? '-'] : []),
    ...(withNovelty ? [r.noveltyMean.energy === undefined ? '-' : pct(r.noveltyMean.energy.auroc)] : []),
    memoryCell(r),
    `${r.totalSeconds.toFixed(1)}s`,
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const kept = head.map(() => true);
  const tableWidth = () => widths.reduce((w, x, j) => w + (kept[j] ? x + 2 : 0), -2);
  for (const name of DROPPABLE_COLUMNS) {
    if (tableWidth() <= columns) break;
    const j = head.indexOf(name);
    if (j >= 0) kept[j] = false;
  }
  const line = (cells: string[]): string => cells.flatMap((c, j) => (kept[j] ? [j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!)] : [])).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** Exemplars after the last task, "none" when the method kept none at any step (exemplar-free). */
function memoryCell(r: RunResults): string {
  const sizes = r.steps.map((s) => s.memorySize);
  return sizes.every((m) => m === 0) ? 'none' : String(sizes.at(-1));
}

/** The legend under the table, wrapped to `columns`. */
export function tableLegend(results: readonly RunResults[], columns: number): string {
  const novelty = results.some((r) => r.noveltyMean.energy) ? ' AUROC: novel data detection by energy, mean over tasks.' : '';
  const calibration = results.some((r) => r.calibration?.steps.at(-1)) ? ' ECE cal: the dataset-level ECE after temperature scaling with the fitted T (on held-out known samples).' : '';
  return wrapText(`Accuracies in %, BWT (backward transfer) and forgetting in points; ECE (15 bins) after the last task, over the whole test set and averaged over test batches.${calibration}${novelty} Memory: exemplars kept (none: exemplar-free).`, columns).join('\n');
}

/** The method options the benchmark chose and why (lines of at most `columns` characters; '' when none). */
export function benchmarkOptionsNote(chosen: Readonly<Record<string, Readonly<Record<string, unknown>>>> | undefined, columns: number): string {
  return Object.entries(chosen ?? {}).map(([m, options]) => {
    const entry = QUICK_BENCHMARK_METHOD_OPTIONS[m]!;
    const text = `note: ${m} runs with ${JSON.stringify(options)} here (the authors' ${JSON.stringify(entry.authors)} ${entry.why}); --method-options '${JSON.stringify({ [m]: entry.authors })}' runs the authors' setting`;
    return wrapText(text, columns).join('\n') + '\n';
  }).join('');
}

/** What the run learns on, in a few lines of at most `columns` characters. */
export function describeData(config: RunConfig, ds: FeaturesDataset, tasks: number, columns: number): string {
  const kind = isSynthetic(ds) ? `SYNTHETIC features (preset "${config.syntheticPreset}", not real CLIP)` : `features from ${config.data} (${ds.manifest.encoder})`;
  const seeds = config.runs > 1 ? `seeds ${config.seed}..${config.seed + config.runs - 1}` : `seed ${config.seed}`;
  const text = `clap4clip run: ${kind}: ${ds.numClasses} classes in ${tasks} tasks, D = ${ds.manifest.dim}, ${ds.train.n} train / ${ds.test.n} test, ${seeds}, eval batching ${config.evalBatching}${config.novelty ? ', novelty detection on' : ''}.`;
  return wrapText(text, columns).join('\n');
}

/** A path as a shell word (quoted when it needs to be). */
export function shellWord(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

export type OutputMode = 'text' | 'json' | 'quiet';

/** The JSON document of `run --json`. */
export function runJson(root: string, results: readonly RunResults[], summaries: readonly RepeatedRunsSummary[], report: string | null): object {
  return { status: 'complete', directory: root, report, runs: results, summaries };
}

/**
 * The invocation hooks that print: progress and per-task lines on stderr (by the progress mode),
 * results on stdout unless `mode` is json or quiet.
 */
export function printingHooks(io: CommandIO, mode: OutputMode, tasks: number, columns: number, onStep?: (dir: string, step: StepRecord) => void | Promise<void>): InvocationHooks & { board: ProgressBoard | null } {
  const text = mode === 'text';
  let board: ProgressBoard | null = null;
  const runs = new Map<string, RunProgress>();
  const progressOf = (dir: string, config: RunConfig, completed = 0): RunProgress => {
    let p = runs.get(dir);
    if (p === undefined) {
      board ??= new ProgressBoard(io.stderr, mode === 'quiet' ? 'off' : progressStyle(config.progress, io.stderr));
      p = board.run(config.method, tasks, completed);
      runs.set(dir, p);
    }
    return p;
  };
  const say = (s: string): void => {
    if (!text) return;
    board?.clear();
    io.stdout.write(s);
  };
  return {
    get board() { return board; },
    progress: (run) => progressOf(run.dir, run.config).phases,
    onResume: (run, completedTask, of) => {
      runs.delete(run.dir);
      progressOf(run.dir, run.config, completedTask + 1);
      say(`  ${run.config.method}: resuming ${run.dir} after task ${completedTask + 1}/${of}\n`);
    },
    onStep: async (run, s) => {
      progressOf(run.dir, run.config).taskDone(s);
      await onStep?.(run.dir, s);
    },
    onRunDone: (run, of, res) => {
      progressOf(run.dir, run.config).clear();
      const line = `  ${res.method}${of.repeated ? ` seed ${run.config.seed}` : ''}: average ${pct(res.averageAccuracy)}%, last ${pct(res.lastAccuracy)}% in ${res.totalSeconds.toFixed(1)}s ->`;
      const file = path.join(run.dir, 'results.json');
      // A long path goes on its own line rather than wrapping in the middle.
      say(line.length + 1 + file.length <= columns ? `${line} ${file}\n` : `${line}\n    ${file}\n`);
    },
    onRunsDone: (all, summaries) => {
      say('\n' + (all[0]!.synthetic ? 'Results on SYNTHETIC features (not CLIP):\n' : '') + comparisonTable(all, columns) + '\n' + tableLegend(all, columns) + '\n');
      for (const note of new Set(all.flatMap((r) => r.notes ?? []))) say(`note: ${note}\n`);
      for (const summary of summaries) say('\n' + repeatedRunsTable(summary) + '\n');
    },
  };
}
