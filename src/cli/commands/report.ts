/**
 * `clap4clip report DIR... [--out FILE]`: a self-contained report.html comparing run directories
 * (each holding results.json, or holding run subdirectories such as a comparison folder).
 */
import { writeReport } from '../../report/writeReport.js';
import { Clap4ClipError } from '../../util/errors.js';
import type { Command } from './command.js';

export interface ReportIO {
  stdout: { write(s: string): unknown };
}

export function reportHelp(): string {
  return [
    'Usage: clap4clip report DIR... [--out FILE]',
    '',
    '  DIR         a run directory (holding results.json), or a folder of run directories',
    '  --out FILE  where to write the report (a directory gets report.html inside);',
    '              default DIR/report.html when one DIR is given, required for several',
    '',
    'Writes a self-contained HTML page (inline SVG charts, no scripts, no network needed):',
    'accuracy per step, accuracy matrices, ECE and reliability, novelty AUROC and ROC curves,',
    'and summary metrics as mean ± std over runs of the same method and data.',
  ].join('\n');
}

export interface ReportArgs {
  help: boolean;
  dirs: string[];
  out: string | undefined;
}

export function parseReportArgs(args: readonly string[]): ReportArgs {
  const parsed: ReportArgs = { help: false, dirs: [], out: undefined };
  let optionsDone = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (optionsDone || !arg.startsWith('-') || arg === '-') {
      parsed.dirs.push(arg);
    } else if (arg === '--') {
      optionsDone = true;
    } else if (arg === '--help' || arg === '-h') {
      parsed.help = true;
    } else if (arg === '--out' || arg.startsWith('--out=')) {
      const value = arg === '--out' ? args[++i] : arg.slice('--out='.length);
      if (value === undefined || value === '') throw new Clap4ClipError('report: option --out needs a value (a file name)');
      if (parsed.out !== undefined) throw new Clap4ClipError('report: --out given twice');
      parsed.out = value;
    } else {
      const hint = arg.startsWith('--o') ? ' (did you mean --out?)' : '';
      throw new Clap4ClipError(`report: unknown option ${arg}${hint}; see clap4clip report --help`);
    }
  }
  return parsed;
}

export async function runReport(args: string[], io: ReportIO = process): Promise<number> {
  const parsed = parseReportArgs(args);
  if (parsed.help) {
    io.stdout.write(reportHelp() + '\n');
    return 0;
  }
  if (parsed.dirs.length === 0) throw new Clap4ClipError('report: give at least one run directory; see clap4clip report --help');
  const { file, runs } = await writeReport(parsed.dirs, parsed.out);
  io.stdout.write(`wrote report of ${runs} run${runs === 1 ? '' : 's'} -> ${file}\n`);
  return 0;
}

export const reportCommand: Command = {
  summary: 'write a self-contained report.html (charts and mean ± std tables) for run directories',
  run: (args) => runReport(args),
};
