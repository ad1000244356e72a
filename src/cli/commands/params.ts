/**
 * `clap4clip params`: trainable and total parameters of a method, per module and per task: parse,
 * count (`run/parameterCount.ts`), print.
 */
import { splitTasks } from '../../data/scenario.js';
import type { TaskInfo } from '../../methods/method.js';
import { resolveRunConfig, type RunConfig } from '../../run/config.js';
import { countMethodParameters, dataShapeOf, type ParamsReport, type ParamsSetup } from '../../run/parameterCount.js';
import { intValue, JSON_OPTION, parseOrHelp, QUIET_OPTION, renderHelp, stringValue, UsageError, type CommandSpec } from '../args.js';
import { configValues, FIELD_OPTIONS, readConfigFile } from '../runFields.js';
import { inUserTerms } from '../userTerms.js';

const fmt = (n: number | null): string => (n === null ? '-' : n.toLocaleString('en-US'));

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j]!.length)));
  const line = (cells: string[]) => '  ' + cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ');
  return [line(head), ...rows.map(line)];
}

export function formatParamsReport(r: ParamsReport): string {
  const last = r.perTask.at(-1);
  const moduleRows = r.modules.map((m) => [m.module, String(m.tensors), fmt(m.parameters), fmt(m.trainable)]);
  const sum = (k: 'tensors' | 'parameters' | 'trainable') => r.modules.reduce((n, m) => n + m[k], 0);
  moduleRows.push(['total', String(sum('tensors')), fmt(sum('parameters')), fmt(sum('trainable'))]);
  const taskRows = [...r.perTask.map((t) => [String(t.task + 1), `${t.classStart}-${t.classEnd - 1}`, fmt(t.added), fmt(t.total), fmt(t.trainable.train), fmt(t.trainable.finetune)])];
  return [
    `${r.method}: D = ${r.dim}, ${r.numClasses} classes in ${r.perTask.length} tasks (the method built and counted; text features are zeros)`,
    '',
    `Per module, while learning task ${last ? last.task + 1 : '-'}:`,
    ...table(['module', 'tensors', 'parameters', 'trainable'], moduleRows),
    '',
    'Per task (trainable while learning the task, and while finetuning on the memory after it):',
    ...table(['task', 'classes', 'added', 'total', 'trainable', 'finetuning'], taskRows),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Command line

export const PARAMS_SPEC: CommandSpec = {
  name: 'params',
  summary: 'Trainable and total parameters per module and per task, counted on the method built for real.',
  usage: ['params [options]'],
  description: ['Every `clap4clip run` setting (--method, --method-options, --increment, ...) is accepted too; D and the number of classes come from the data unless given.'],
  options: [
    { name: 'config', type: 'string', arg: 'FILE', help: 'a run config (JSON); its data, method, split and method options are used' },
    { name: 'dim', type: 'string', arg: 'D', help: 'embedding width (512 = ViT-B/16, 768 = ViT-L/14)', defaultText: "the data's" },
    { name: 'classes', type: 'string', arg: 'C', help: 'total classes', defaultText: "the data's" },
    { name: 'tasks', type: 'string', arg: 'N', help: 'split C classes into N equal tasks', defaultText: 'by --base-classes and --increment' },
    JSON_OPTION,
    QUIET_OPTION,
    ...FIELD_OPTIONS.filter((o) => !['progress', 'out', 'runs'].includes(o.name)),
  ],
  examples: ['params --method clap --dim 512 --classes 100 --tasks 10', 'params --method clip-adapter --synthetic-preset tiny --increment 5 --json'],
};

interface ParsedParamsArgs {
  help: boolean;
  json: boolean;
  quiet: boolean;
  configFile: string | null;
  dim: number | null;
  classes: number | null;
  tasks: number | null;
  values: Record<string, unknown>;
  typed: Record<string, unknown>;
}

export function parseParamsArgs(args: readonly string[]): ParsedParamsArgs {
  const p = parseOrHelp(PARAMS_SPEC, args);
  const { values, typed } = configValues(p);
  return {
    help: p.help, json: p.values['json'] === true, quiet: p.values['quiet'] === true, configFile: stringValue(p, 'config') ?? null,
    dim: intValue(PARAMS_SPEC, p, 'dim', 1) ?? null, classes: intValue(PARAMS_SPEC, p, 'classes', 1) ?? null, tasks: intValue(PARAMS_SPEC, p, 'tasks', 1) ?? null,
    values, typed,
  };
}

/** The setup of the command line: config file, then flags; --dim/--classes/--tasks override the data. */
export async function paramsSetupFromArgs(parsed: ParsedParamsArgs): Promise<ParamsSetup> {
  const fromFile = parsed.configFile === null ? {} : await readConfigFile(parsed.configFile);
  const sources = { command: 'params', flags: parsed.typed, configFile: parsed.configFile, fileKeys: new Set(Object.keys(fromFile as object)) };
  let config: RunConfig;
  try {
    config = resolveRunConfig({ ...(fromFile as object), ...parsed.values });
  } catch (err) {
    throw inUserTerms(err, sources);
  }
  const needData = parsed.dim === null || parsed.classes === null;
  const shape = needData ? await dataShapeOf(config) : { dim: parsed.dim!, numClasses: parsed.classes! };
  const dim = parsed.dim ?? shape.dim;
  const numClasses = parsed.classes ?? shape.numClasses;
  let tasks: TaskInfo[];
  if (parsed.tasks !== null) {
    if (numClasses % parsed.tasks !== 0) throw new UsageError(`params: --tasks ${parsed.tasks}: ${numClasses} classes do not split into ${parsed.tasks} equal tasks`);
    tasks = splitTasks(numClasses, { increment: numClasses / parsed.tasks });
  } else {
    try {
      tasks = splitTasks(numClasses, { base: config.baseClasses, increment: config.increment });
    } catch (err) {
      throw inUserTerms(err, sources);
    }
  }
  return { config, dim, numClasses, tasks };
}

export const paramsCommand = {
  summary: 'print trainable and total parameters per module and per task (e.g. --method clap --dim 512 --tasks 10)',
  async run(args: string[], io: { stdout: { write(s: string): unknown } } = process): Promise<number> {
    const parsed = parseParamsArgs(args);
    if (parsed.help) {
      io.stdout.write(renderHelp(PARAMS_SPEC) + '\n');
      return 0;
    }
    const report = await countMethodParameters(await paramsSetupFromArgs(parsed));
    if (parsed.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else if (!parsed.quiet) io.stdout.write(formatParamsReport(report) + '\n');
    return 0;
  },
};
