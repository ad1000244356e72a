/**
 * `report.html` for one or more run directories, written atomically so a reader (or a browser
 * refreshing the page) never sees half a report.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/atomicWrite.js';
import { Clap4ClipError } from '../util/errors.js';
import { renderReport } from './html.js';
import { loadRuns } from './loadResults.js';

export const REPORT_FILE = 'report.html';

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where the report goes: `out` (a file, or an existing directory to put report.html in), or,
 * without `out`, into the single directory given. Several directories need `out` because no
 * one of them is the obvious home of a comparison.
 */
export async function reportPath(dirs: readonly string[], out?: string): Promise<string> {
  if (out !== undefined) return (await isDirectory(out)) ? path.join(out, REPORT_FILE) : out;
  if (dirs.length === 1) {
    const only = dirs[0]!;
    // A results.json path names its directory.
    return path.join(path.basename(only) === 'results.json' ? path.dirname(only) : only, REPORT_FILE);
  }
  throw new Clap4ClipError(`report: ${dirs.length} run directories given; say where the report goes with --out FILE`);
}

/**
 * Loads the runs in `dirs` (a directory holding results.json, or one whose subdirectories do,
 * e.g. a comparison folder), renders the report and writes it. Returns the path written and
 * the number of runs in it.
 */
export async function writeReport(dirs: readonly string[], out?: string): Promise<{ file: string; runs: number }> {
  if (dirs.length === 0) throw new Clap4ClipError('report: no run directory given');
  const file = await reportPath(dirs, out);
  const runs = await loadRuns(dirs);
  const html = await renderReport(runs.map((r) => ({ dir: r.dir, results: r.results })));
  await writeFileAtomic(file, html);
  return { file, runs: runs.length };
}
