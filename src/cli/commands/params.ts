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
import { didYouMean, flagOf, resolveRunConfig, RUN_CONFIG_FIELDS, SYNTHETIC_PRESETS, type FieldSpec, type RunConfig } from '../../run/config.js';
import { Clap4ClipError } from '../../util/errors.js';
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

const HELP = [
  'Usage: clap4clip params [--config FILE] [--method NAME] [--dim D] [--classes C] [--tasks N] [--json] [run options]',
  '',
  'Trainable and total parameters per module and per task, counted on the method built for real.',
  '  --config FILE   a run config (JSON); its data, method, split and method options are used',
  '  --dim D         embedding width (default: of the config\'s data; 512 = ViT-B/16, 768 = ViT-L/14)',
  '  --classes C     total classes (default: of the config\'s data)',
  '  --tasks N       split C classes into N equal tasks (default: the config\'s --base-classes / --increment)',
  '  --json          print the counts as JSON',
  'Any `clap4clip run` config flag (--method, --method-options, --increment, ...) is accepted too.',
].join('\n');

const FLAG_TO_FIELD = new Map<string, FieldSpec>(RUN_CONFIG_FIELDS.map((f) => [flagOf(f.key), f]));
const OWN_FLAGS = ['--config', '--dim', '--classes', '--tasks', '--json', '--help'];

interface ParsedParamsArgs {
  help: boolean;
  json: boolean;
  configFile: string | null;
  dim: number | null;
  classes: number | null;
  tasks: number | null;
  values: Record<string, unknown>;
}

function positiveInt(flag: string, s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || !Number.isSafeInteger(Number(s))) throw new Clap4ClipError(`params: ${flag} must be a positive integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

export function parseParamsArgs(args: readonly string[]): ParsedParamsArgs {
  const out: ParsedParamsArgs = { help: false, json: false, configFile: null, dim: null, classes: null, tasks: null, values: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) throw new Clap4ClipError(`params: unexpected argument "${arg}" (see clap4clip params --help)`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = args[++i];
      if (next === undefined) throw new Clap4ClipError(`params: option ${flag} needs a value`);
      return next;
    };
    if (flag === '--help' || flag === '-h') out.help = true;
    else if (flag === '--json') out.json = true;
    else if (flag === '--config') out.configFile = value();
    else if (flag === '--dim') out.dim = positiveInt(flag, value());
    else if (flag === '--classes') out.classes = positiveInt(flag, value());
    else if (flag === '--tasks') out.tasks = positiveInt(flag, value());
    else {
      const field = FLAG_TO_FIELD.get(flag);
      if (field === undefined) {
        const hint = didYouMean(flag, [...FLAG_TO_FIELD.keys(), ...OWN_FLAGS]);
        throw new Clap4ClipError(`params: unknown option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}; see clap4clip params --help`);
      }
      const raw = field.boolean && eq < 0 ? 'true' : value();
      out.values[field.key] = field.fromFlag ? field.fromFlag(raw) : raw;
    }
  }
  return out;
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
  const config = resolveRunConfig({ ...(fromFile as object), ...parsed.values });
  const needData = parsed.dim === null || parsed.classes === null;
  const shape = needData ? await dataShape(config) : { dim: parsed.dim!, numClasses: parsed.classes! };
  const dim = parsed.dim ?? shape.dim;
  const numClasses = parsed.classes ?? shape.numClasses;
  let tasks: TaskInfo[];
  if (parsed.tasks !== null) {
    if (numClasses % parsed.tasks !== 0) throw new Clap4ClipError(`params: ${numClasses} classes do not split into ${parsed.tasks} equal tasks`);
    tasks = splitTasks(numClasses, { increment: numClasses / parsed.tasks });
  } else {
    tasks = splitTasks(numClasses, { base: config.baseClasses, increment: config.increment });
  }
  return { config, dim, numClasses, tasks };
}

export const paramsCommand = {
  summary: 'print trainable and total parameters per module and per task (e.g. --method clap --dim 512 --tasks 10)',
  async run(args: string[], io: { stdout: { write(s: string): unknown } } = process): Promise<number> {
    const parsed = parseParamsArgs(args);
    if (parsed.help) {
      io.stdout.write(HELP + '\n');
      return 0;
    }
    const report = await countMethodParameters(await paramsSetupFromArgs(parsed));
    io.stdout.write((parsed.json ? JSON.stringify(report, null, 2) : formatParamsReport(report)) + '\n');
    return 0;
  },
};
