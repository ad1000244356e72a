/**
 * One evaluation of the CLAP head on given inputs and given noise, with dropout off: the numbers a
 * user compares against the reference PyTorch code (spec sections 2-4) to check parity.
 *
 * Inputs file (safetensors):
 *   features  F32 [B, D]     image features f (as the head uses them: the reference's normalized features)
 *   text      F32 [C, P, D]  per-template text features e[c, p], classes in incremental order
 *   labels    I32 [B]        incremental labels (not needed in `test` mode)
 *   eps       F32 [T, C, D]  the Gaussian noise; task i uses columns s_i..e_i, every image shares it
 *   taskSizes I32 [tasks]    classes per task; sum = C; the last task is the current one
 * The checkpoint (`referenceCheckpoint.ts`) holds the VGA and one adapter pair per task.
 *
 * Modes (what the reference computes in `fit`, `finetuning` and `inference`, dropout off):
 *   train     CE + KL_last + beta LASP_last; gradients for the VGA and the newest pair
 *   finetune  CE + sum_i KL_i + beta sum_i LASP_i; gradients for every pair, the VGA frozen
 *   test      logits only
 * Outputs (F32): `logits` [T, B, C]; `loss.ce`, `loss.kl`, `loss.lasp`, `loss.total` (scalars [],
 * each term as it enters the total: `loss.kl` includes the 0.001, `loss.lasp` the beta = 15);
 * `grad.<reference name>` for every tensor trainable in the mode.
 * The head's weights come from the checkpoint as they are: no language-aware init is applied.
 *
 * In the reference's own variables: `loss.kl` is its `prior_matching_loss`, `loss.lasp` its
 * `kl_loss` (beta * LASP), and `eps` is what `qdist.rsample([T])` draws per task ([T, n_i, D]),
 * concatenated over tasks along the class axis.
 */
import { readSafetensors, writeSafetensors, type SafeTensor, type SafetensorsContent } from '../data/safetensors.js';
import { Rng } from '../engine/random.js';
import { noGrad } from '../engine/tensor.js';
import { DataError } from '../util/errors.js';
import { checkTaskSizes, clapFromReference, readReferenceCheckpoint, type ReferenceCheckpoint } from './referenceCheckpoint.js';
import { referenceGradients } from './referenceNames.js';

export type ForwardMode = 'train' | 'finetune' | 'test';
export const FORWARD_MODES: readonly ForwardMode[] = ['train', 'finetune', 'test'];

export interface ForwardInputs {
  /** Source of the inputs, for messages. */
  file: string;
  features: Float32Array;
  text: Float32Array;
  /** Null only in `test` mode. */
  labels: Int32Array | null;
  eps: Float32Array;
  taskSizes: number[];
  /** B, C, P, D, T. */
  batch: number;
  classes: number;
  templates: number;
  dim: number;
  samples: number;
}

const FLOAT_INPUTS = { features: 2, text: 3, eps: 3 } as const;
const INT_INPUTS = { labels: 1, taskSizes: 1 } as const;
const INPUT_NAMES = [...Object.keys(FLOAT_INPUTS), ...Object.keys(INT_INPUTS)];

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Validates an inputs file: known names, presence, dtypes, ranks, consistent B / C / D, no empty
 * dimension, finite values, sum(taskSizes) = C, labels in [0, C).
 * @throws DataError naming `file` and the tensor
 */
export function parseForwardInputs(content: SafetensorsContent, file: string, mode: ForwardMode): ForwardInputs {
  const fail = (problem: string): never => { throw new DataError(file, problem); };
  const all = content.tensors;
  for (const name of Object.keys(all)) {
    if (!INPUT_NAMES.includes(name)) fail(`unexpected tensor "${name}" (an inputs file holds ${INPUT_NAMES.join(', ')})`);
  }
  const get = (name: string, dtype: 'F32' | 'I32', rank: number, required: boolean): SafeTensor | null => {
    const t = all[name];
    if (!t) return required ? fail(`missing tensor "${name}"`) : null;
    if (t.dtype !== dtype) fail(`tensor "${name}" has dtype ${t.dtype}, expected ${dtype}`);
    if (t.shape.length !== rank) fail(`tensor "${name}" has shape ${shapeText(t.shape)}, expected ${rank} dimensions`);
    if (t.shape.some((n) => n === 0)) fail(`tensor "${name}" has an empty dimension: shape ${shapeText(t.shape)}`);
    if (dtype === 'F32') {
      const bad = (t.data as Float32Array).findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) fail(`tensor "${name}" element ${bad} is ${t.data[bad]} (not finite)`);
    }
    return t;
  };
  const features = get('features', 'F32', 2, true)!;
  const text = get('text', 'F32', 3, true)!;
  const eps = get('eps', 'F32', 3, true)!;
  const sizesT = get('taskSizes', 'I32', 1, true)!;
  const labelsT = get('labels', 'I32', 1, mode !== 'test');
  const [batch, dim] = features.shape as [number, number];
  const [classes, templates] = text.shape as [number, number, number];
  const samples = eps.shape[0]!;
  const expect = (name: string, t: SafeTensor, shape: number[], names: string) => {
    if (t.shape.some((n, k) => n !== shape[k])) fail(`tensor "${name}" has shape ${shapeText(t.shape)}, expected ${names} = ${shapeText(shape)} (from features [B, D] and text [C, P, D])`);
  };
  expect('text', text, [classes, templates, dim], '[C, P, D]');
  expect('eps', eps, [samples, classes, dim], '[T, C, D]');
  if (labelsT) expect('labels', labelsT, [batch], '[B]');
  const taskSizes = Array.from(sizesT.data as Int32Array);
  checkTaskSizes(taskSizes, 'tensor "taskSizes"', file);
  const total = taskSizes.reduce((a, b) => a + b, 0);
  if (total !== classes) fail(`tensor "taskSizes" [${taskSizes.join(', ')}] sums to ${total}, but text has C = ${classes} classes`);
  const labels = labelsT ? (labelsT.data as Int32Array) : null;
  const badLabel = labels ? labels.findIndex((y) => y < 0 || y >= classes) : -1;
  if (badLabel >= 0) fail(`tensor "labels" element ${badLabel} is ${labels![badLabel]}, outside the C = ${classes} classes [0, ${classes})`);
  return {
    file, features: features.data as Float32Array, text: text.data as Float32Array, labels, eps: eps.data as Float32Array,
    taskSizes, batch, classes, templates, dim, samples,
  };
}

/** Reads and validates an inputs file (errors name `path`). */
export async function readForwardInputs(path: string, mode: ForwardMode): Promise<ForwardInputs> {
  return parseForwardInputs(await readSafetensors(path), path, mode);
}

/**
 * Evaluates the head of `ckpt` on `inputs` in `mode`.
 * @returns the output tensors by name (see the file comment), ready for `writeSafetensors`
 * @throws DataError when the checkpoint and the inputs disagree (D, task sizes)
 */
export function referenceForward(ckpt: ReferenceCheckpoint, inputs: ForwardInputs, mode: ForwardMode): Record<string, SafeTensor> {
  if (!FORWARD_MODES.includes(mode)) throw new DataError(inputs.file, `unknown mode ${JSON.stringify(mode)} (one of ${FORWARD_MODES.join(', ')})`);
  if (inputs.dim !== ckpt.info.dim) {
    throw new DataError(inputs.file, `tensor "features" has D = ${inputs.dim}, but the checkpoint ${ckpt.file} has D = ${ckpt.info.dim}`);
  }
  if (inputs.taskSizes.length !== ckpt.info.tasks) {
    throw new DataError(inputs.file, `tensor "taskSizes" lists ${inputs.taskSizes.length} tasks, but the checkpoint ${ckpt.file} has ${ckpt.info.tasks} adapter pairs`);
  }
  const method = clapFromReference(ckpt, {
    text: inputs.text, numTemplates: inputs.templates, taskSizes: inputs.taskSizes, config: { samples: inputs.samples },
  });
  const model = method.model;
  const { batch: b, classes: c, samples: t } = inputs;
  const out: Record<string, SafeTensor> = {};
  const scalar = (v: number): SafeTensor => ({ dtype: 'F32', shape: [], data: Float32Array.of(v) });

  if (mode === 'test') {
    const res = noGrad(() => model.forward(inputs.features, b, { phase: 'train', training: false, eps: inputs.eps, rng: new Rng(0) }));
    out['logits'] = { dtype: 'F32', shape: [t, b, c], data: res.logits.data };
    return out;
  }
  // The trainable set of the phase decides which tensors get gradients; dropout stays off in both
  // phases (the reference trains new tasks with dropout on; parity needs it off).
  model.setTrainable(mode);
  const res = model.forward(inputs.features, b, { phase: mode, training: false, labels: inputs.labels!, eps: inputs.eps, rng: new Rng(0) });
  const loss = res.loss!;
  out['logits'] = { dtype: 'F32', shape: [t, b, c], data: res.logits.data.slice() };
  for (const part of ['ce', 'kl', 'lasp'] as const) out[`loss.${part}`] = scalar(res.parts[part]?.item() ?? 0);
  out['loss.total'] = scalar(loss.item());
  loss.backward();
  for (const [name, g] of referenceGradients(model)) out[`grad.${name}`] = { dtype: 'F32', shape: g.shape, data: g.data };
  return out;
}

export interface ForwardFiles {
  checkpoint: string;
  inputs: string;
  mode: ForwardMode;
  out: string;
}

/** Reads both files, evaluates, writes the outputs atomically; returns the outputs. */
export async function forwardFiles(files: ForwardFiles): Promise<Record<string, SafeTensor>> {
  const ckpt = await readReferenceCheckpoint(files.checkpoint);
  const inputs = await readForwardInputs(files.inputs, files.mode);
  const out = referenceForward(ckpt, inputs, files.mode);
  await writeSafetensors(files.out, out, { generator: 'clap4clip forward', mode: files.mode, checkpoint: files.checkpoint, inputs: files.inputs });
  return out;
}
