/**
 * Trainable and total parameters of a run's method, per module and per task (`clap4clip params`).
 *
 * The numbers come from the method itself: it is built for real and taken through beginTask (on
 * zero text features of the right shape; no parameter count depends on their values) / setPhase /
 * endTask like the task step does, and its tensors are counted. No formula is written down here,
 * so the count cannot drift from the code. For ViT-B/16 (D = 512) CLAP has 4,204,032 VGA
 * parameters (built with the first task) and 525,312 per task (one mu/sigma encoder pair).
 */
import * as path from 'node:path';
import { MANIFEST_FILE, readManifestFile } from '../data/featuresDataset.js';
import { Rng } from '../engine/random.js';
import type { Method, TaskInfo } from '../methods/method.js';
import { createMethod } from '../methods/registry.js';
import { SYNTHETIC_PRESETS, type RunConfig } from './config.js';

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

/** D and C of the config's data: the synthetic world's, or a features directory's manifest. */
export async function dataShapeOf(config: RunConfig): Promise<{ dim: number; numClasses: number }> {
  if (config.data === 'synthetic') {
    const w = { ...SYNTHETIC_PRESETS[config.syntheticPreset], ...config.syntheticOptions };
    return { dim: w.dim, numClasses: w.numClasses };
  }
  const m = await readManifestFile(path.join(config.data, MANIFEST_FILE));
  return { dim: m.dim, numClasses: m.classNames.length };
}
