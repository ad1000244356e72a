/**
 * `clap4clip params`: trainable and total parameters of a method, per module and per task.
 *
 * The numbers come from the method itself: it is built for real and taken through beginTask (on
 * zero text features of the right shape; no parameter count depends on their values) / setPhase /
 * endTask like the task step does, and its tensors are counted. No formula is written down here,
 * so the count cannot drift from the code. For ViT-B/16 (D = 512) CLAP has 4,204,032 VGA
 * parameters (built with the first task) and 525,312 per task (one mu/sigma encoder pair).
 */
import * as path from 'node:path';
import { parseManifest, MANIFEST_FILE } from '../../data/featuresDataset.js';
import { splitTasks } from '../../data/scenario.js';
import { Rng } from '../../engine/random.js';
import type { Method, TaskInfo } from '../../methods/method.js';
import { createMethod } from '../../methods/registry.js';
import { resolveRunConfig, SYNTHETIC_PRESETS, type RunConfig } from '../../run/config.js';
import { Clap4ClipError } from '../../util/errors.js';
import { intValue, JSON_OPTION, parseOrHelp, QUIET_OPTION, renderHelp, stringValue, UsageError, type CommandSpec } from '../args.js';
import { configValues, FIELD_OPTIONS } from '../runFields.js';
import { inUserTerms } from '../userTerms.js';
import { readInputText } from '../../util/inputFile.js';

export interface ParamsSetup {
  config: RunConfig;
  dim: number;
  numClasses: number;
  tasks: TaskInfo[];
}

export interface ModuleCount {
  /** First name segment, with the index for lists: `vga`, `encoders.3`, `previous`. */
  module: string;
  tensors: number;
  parameters: number;
  /** Trainable while learning the last task. */
  trainable: number;
}

export interface TaskCount {
  task: number;
  classStart: number;
  classEnd: number;
  /** All tensors once the task has begun, and the change from the previous task's total. */
  total: number;
  added: number;
  /** Trainable while learning the task, and during its class-balanced finetuning (null for task 0: none). */
  trainable: { train: number; finetune: number | null };
}

export interface ParamsReport {
  method: string;
  dim: number;
  numClasses: number;
  modules: ModuleCount[];
  perTask: TaskCount[];
  total: number;
}

function moduleOf(name: string): string {
  const [a, b] = name.split('.');
  return b !== undefined && /^\d+$/.test(b) ? `${a}.${b}` : a!;
}

const count = (method: Method, trainableOnly: boolean): number =>
  method.namedParameters().reduce((n, [, t]) => n + (!trainableOnly || t.requiresGrad ? t.size : 0), 0);

/** Builds the method of `setup` and counts its tensors through every task. */
export async function countMethodParameters(setup: ParamsSetup): Promise<ParamsReport> {
  const { config, dim, numClasses, tasks } = setup;
  const method = await createMethod(config.method, { dim, logitScale: 100, samples: config.samples, batchSize: config.batchSize, methodOptions: config.methodOptions });
  const rng = new Rng(config.seed);
  const trains = method.traits.sgd.train !== null;
  const perTask: TaskCount[] = [];
  let modules: ModuleCount[] = [];
  let before = 0;
  for (const task of tasks) {
    method.beginTask(task, { textPerTemplate: new Float32Array((task.classEnd - task.classStart) * dim), numTemplates: 1 }, rng);
    const total = count(method, false);
    const train = trains ? count(method, true) : 0;
    if (task.index === tasks.length - 1) {
      const byModule = new Map<string, ModuleCount>();
      for (const [name, t] of method.namedParameters()) {
        const key = moduleOf(name);
        const m = byModule.get(key) ?? { module: key, tensors: 0, parameters: 0, trainable: 0 };
        m.tensors++;
        m.parameters += t.size;
        if (trains && t.requiresGrad) m.trainable += t.size;
        byModule.set(key, m);
      }
      modules = [...byModule.values()];
    }
    let finetune: number | null = null;
    if (task.index > 0) {
      method.setPhase('finetune');
      finetune = method.traits.sgd.finetune !== null ? count(method, true) : 0;
    }
    method.endTask(task, rng);
    perTask.push({ task: task.index, classStart: task.classStart, classEnd: task.classEnd, total, added: total - before, trainable: { train, finetune } });
    before = total;
  }
  return { method: method.name, dim, numClasses, modules, perTask, total: perTask.at(-1)?.total ?? 0 };
}

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

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readInputText(file, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Clap4ClipError(`the ${what} is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
}

/** D and C of the config's data: the synthetic world's, or a features directory's manifest. */
async function dataShape(config: RunConfig): Promise<{ dim: number; numClasses: number }> {
  if (config.data === 'synthetic') {
    const w = { ...SYNTHETIC_PRESETS[config.syntheticPreset], ...config.syntheticOptions };
    return { dim: w.dim, numClasses: w.numClasses };
  }
  const file = path.join(config.data, MANIFEST_FILE);
  const m = parseManifest(await readJson(file, 'features manifest'), file);
  return { dim: m.dim, numClasses: m.classNames.length };
}

/** The setup of the command line: config file, then flags; --dim/--classes/--tasks override the data. */
export async function paramsSetupFromArgs(parsed: ParsedParamsArgs): Promise<ParamsSetup> {
  const fromFile = parsed.configFile === null ? {} : await readJson(parsed.configFile, 'config file');
  if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new Clap4ClipError('the config file must hold a JSON object', { file: parsed.configFile! });
  const sources = { command: 'params', flags: parsed.typed, configFile: parsed.configFile, fileKeys: new Set(Object.keys(fromFile as object)) };
  let config: RunConfig;
  try {
    config = resolveRunConfig({ ...(fromFile as object), ...parsed.values });
  } catch (err) {
    throw inUserTerms(err, sources);
  }
  const needData = parsed.dim === null || parsed.classes === null;
  const shape = needData ? await dataShape(config) : { dim: parsed.dim!, numClasses: parsed.classes! };
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
