/** `comparison.json`: the summary metrics of every run of a comparison, with where each run's results are. */
import * as path from 'node:path';
import { writeJsonAtomic } from '../../util/atomicWrite.js';
import type { RepeatedRunsSummary } from '../repeatedRuns.js';
import type { RunResults } from '../results.js';

export const COMPARISON_FILE = 'comparison.json';

/** Writes `root/comparison.json` (atomically) over `all` runs, in run order; returns the file. */
export async function writeComparison(root: string, all: readonly RunResults[], summaries: readonly RepeatedRunsSummary[]): Promise<string> {
  const file = path.join(root, COMPARISON_FILE);
  await writeJsonAtomic(file, {
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
  return file;
}
