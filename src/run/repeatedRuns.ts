/**
 * Repeated runs (`--runs N`): the same protocol with seeds seed, seed + 1, ..., each in its own
 * `run-<seed>/` directory (the seed also moves the reference class order, 1993 + seed, as the
 * reference's runs do), summarized in `summary.json`: mean and sample standard deviation (n - 1) of
 * every summary metric of the runs.
 */
import * as path from 'node:path';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import type { EvalBatching } from './config.js';
import { NOVELTY_SCORES } from './novelty.js';
import type { RunResults } from './results.js';

export const SUMMARY_FILE = 'summary.json';

/** The directory of the run with `seed` inside the repeated-runs directory. */
export function runDirName(seed: number): string {
  return `run-${seed}`;
}

/** Mean and sample standard deviation (n - 1; null for a single value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number | null } {
  if (xs.length === 0) throw new Error('meanStd: no values');
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length < 2) return { mean, std: null };
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (xs.length - 1)) };
}

/**
 * The summary metrics of one run, by name: average and last accuracy, BWT and forgetting (null
 * with one task), the final step's ECE (dataset-level and per-batch mean) and the novelty means
 * (`novelty.<score>.<metric>`).
 */
export function runMetrics(r: RunResults): Record<string, number | null> {
  const out: Record<string, number | null> = {
    averageAccuracy: r.averageAccuracy,
    lastAccuracy: r.lastAccuracy,
    backwardTransfer: r.backwardTransfer,
    forgetting: r.forgetting,
    finalEceDataset: r.ece.dataset.at(-1) ?? null,
    finalEcePerBatchMean: r.ece.perBatchMean.at(-1) ?? null,
  };
  for (const score of NOVELTY_SCORES) {
    const m = r.noveltyMean[score];
    if (m === undefined) continue;
    out[`novelty.${score}.auroc`] = m.auroc;
    out[`novelty.${score}.aupr`] = m.aupr;
    out[`novelty.${score}.fpr95`] = m.fpr95;
  }
  return out;
}

export interface MetricSummary {
  mean: number;
  /** Sample standard deviation (n - 1); null with one run. */
  std: number | null;
  /** One value per run, in seed order. */
  values: number[];
}

export interface RepeatedRunsSummary {
  format: 'clap4clip-summary';
  version: 1;
  method: string;
  synthetic: boolean;
  evalBatching: EvalBatching;
  seeds: number[];
  /** results.json of each run, relative to the summary. */
  results: string[];
  /** Metrics every run has a value for (a metric null in some run, e.g. BWT with one task, is left out). */
  metrics: Record<string, MetricSummary>;
  createdAt: string;
}

/** Mean and std of every metric over `runs` (one method, one config apart from the seed). */
export function summarizeRepeatedRuns(runs: readonly RunResults[]): RepeatedRunsSummary {
  if (runs.length === 0) throw new Error('summarizeRepeatedRuns: no runs');
  const perRun = runs.map(runMetrics);
  const metrics: Record<string, MetricSummary> = {};
  for (const name of Object.keys(perRun[0]!)) {
    const values = perRun.map((m) => m[name]);
    if (values.some((v) => v === null || v === undefined)) continue;
    metrics[name] = { ...meanStd(values as number[]), values: values as number[] };
  }
  return {
    format: 'clap4clip-summary',
    version: 1,
    method: runs[0]!.method,
    synthetic: runs[0]!.synthetic,
    evalBatching: runs[0]!.evalBatching,
    seeds: runs.map((r) => r.config.seed),
    results: runs.map((r) => path.join(runDirName(r.config.seed), 'results.json')),
    metrics,
    createdAt: new Date().toISOString(),
  };
}

export async function writeRepeatedRunsSummary(dir: string, summary: RepeatedRunsSummary): Promise<string> {
  const file = path.join(dir, SUMMARY_FILE);
  await writeJsonAtomic(file, summary);
  return file;
}

/** Accuracy-like metrics print in %, the others (ECE, detection) as fractions. */
const PERCENT = new Set(['averageAccuracy', 'lastAccuracy', 'backwardTransfer', 'forgetting']);

/** "metric  mean ± std" lines of a summary. */
export function repeatedRunsTable(summary: RepeatedRunsSummary): string {
  const rows = Object.entries(summary.metrics).map(([name, m]) => {
    const scale = PERCENT.has(name) ? 100 : 1;
    const digits = PERCENT.has(name) ? 2 : 4;
    const std = m.std === null ? '-' : (scale * m.std).toFixed(digits);
    return [name + (PERCENT.has(name) ? ' (%)' : ''), `${(scale * m.mean).toFixed(digits)} ± ${std}`];
  });
  const head = [`${summary.method} over ${summary.seeds.length} runs (seeds ${summary.seeds.join(', ')})`, 'mean ± std'];
  const w0 = Math.max(head[0]!.length, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(head[1]!.length, ...rows.map((r) => r[1]!.length));
  return [head, ...rows].map(([a, b]) => `${a!.padEnd(w0)}  ${b!.padStart(w1)}`).join('\n');
}
