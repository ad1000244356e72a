/**
 * `clap4clip report DIR... [--out FILE]`: a self-contained report.html comparing run directories
 * (each holding results.json, or holding run subdirectories such as a comparison folder).
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeReport } from '../../report/writeReport.js';
import { JSON_OPTION, parseOrHelp, QUIET_OPTION, renderHelp, stringValue, UsageError, type CommandSpec } from '../args.js';
import type { Command } from './command.js';

export interface ReportIO {
  stdout: { write(s: string): unknown };
}

export const REPORT_SPEC: CommandSpec = {
  name: 'report',
  summary: 'Write a self-contained report.html comparing run directories: accuracy per task, accuracy matrices, ECE and reliability, novelty AUROC and ROC curves, and mean ± std over runs of the same method and data (inline SVG charts, no scripts, no network needed).',
  usage: ['report DIR... [options]'],
  positionals: [['DIR', 'a run directory (holding results.json), or a folder of run directories']],
  options: [
    { name: 'out', type: 'string', arg: 'FILE', help: 'where to write the report (a directory gets report.html inside)', defaultText: 'DIR/report.html when one DIR is given; required for several' },
    JSON_OPTION,
    QUIET_OPTION,
  ],
  examples: ['report runs/tiny-compare', 'report runs/tiny-clap runs/tiny-seeds --out reports/tiny.html'],
};

export function reportHelp(columns = 80): string {
  return renderHelp(REPORT_SPEC, columns);
}

export interface ReportArgs {
  help: boolean;
  dirs: string[];
  out: string | undefined;
  json: boolean;
  quiet: boolean;
}

export function parseReportArgs(args: readonly string[]): ReportArgs {
  const p = parseOrHelp(REPORT_SPEC, args);
  const out = stringValue(p, 'out');
  if (out === '') throw new UsageError('report: --out needs a value (a file name)');
  return { help: p.help, dirs: p.positionals, out, json: p.values['json'] === true, quiet: p.values['quiet'] === true };
}

export async function runReport(args: string[], io: ReportIO = process): Promise<number> {
  const parsed = parseReportArgs(args);
  if (parsed.help) {
    io.stdout.write(reportHelp() + '\n');
    return 0;
  }
  if (parsed.dirs.length === 0) throw new UsageError('report: give at least one run directory; see clap4clip report --help');
  // `--out reports/x.html` into a folder not made yet: make it, as a user expects of --out.
  if (parsed.out !== undefined && /\.html?$/i.test(parsed.out)) await mkdir(dirname(parsed.out), { recursive: true });
  const { file, runs } = await writeReport(parsed.dirs, parsed.out);
  if (parsed.json) io.stdout.write(JSON.stringify({ report: file, runs }) + '\n');
  else if (!parsed.quiet) io.stdout.write(`wrote report of ${runs} run${runs === 1 ? '' : 's'} -> ${file}\n`);
  return 0;
}

export const reportCommand: Command = {
  summary: 'write a self-contained report.html (charts and mean ± std tables) for run directories',
  run: (args) => runReport(args),
};
