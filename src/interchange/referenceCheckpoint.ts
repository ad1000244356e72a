/**
 * A CLAP head in the reference PyTorch code's own names, as one safetensors file, both ways.
 *
 * Format ("clap4clip-reference-head/1"):
 * - tensors: the state dict of the reference's trainable modules (see `referenceNames.ts`):
 *   `vga.layers.0.*` (18 tensors of one `nn.TransformerDecoderLayer`) and, per task i,
 *   `mu_adapters.<i>.fc.0.{weight,bias}` and `sigma_adapters.<i>.fc.0.{weight,bias}` ([D, D], [D]).
 *   Written as F32; read from F32, F16, BF16 (the reference trains in fp16) or F64 (rounded to float32).
 * - `__metadata__` (all strings, as safetensors requires):
 *   `task_sizes`  JSON array of classes per task, in task order (`[10, 10]`); task i owns incremental
 *                 labels [s_i, e_i). Required to build a model (or given by the caller / the forward inputs).
 *   `nhead`       attention heads of the VGA (default "1", the reference's value; shapes cannot tell).
 *   `logit_scale` CLIP's exp(logit_scale) (default "100").
 *   `dim`         D (optional; checked against the tensors). F, the feed-forward width, is read from
 *                 `linear1.weight`.
 *   `class_order` optional JSON array: the dataset label of each incremental label (bookkeeping,
 *                 passed through).
 *   `head_format` "clap4clip-reference-head/1" (written on export, checked when present).
 *   Other keys (e.g. safetensors' own `format: pt`) are ignored.
 *
 * Text features are not part of the head: the VGA's queries t = normalize(mean_p e) and LASP's
 * templates come from the CLIP text encoder, so building a model needs them (`text` [C, P, D]).
 * Without per-template features, class features t [C, D] can be passed with P = 1: logits are then
 * exact, but LASP uses t instead of mean_p e and a future task's sigma init (template variance) is 0.
 */
import { writeSafetensors, readSafetensors, type SafeTensor, type SafetensorsContent } from '../data/safetensors.js';
import { Rng } from '../engine/random.js';
import { buildClapMethod, type ClapMethod } from '../methods/clap/clap.js';
import { validateClapConfig, type ClapConfigInput } from '../methods/clap/config.js';
import type { ClapModel } from '../methods/clap/model.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import { checkReferenceNames, expectedReferenceShapes, exportReferenceTensors, loadReferenceTensors, VGA_PREFIX } from './referenceNames.js';

export const REFERENCE_HEAD_FORMAT = 'clap4clip-reference-head/1';

export interface ReferenceHeadInfo {
  /** Classes per task (null when the file does not say). */
  taskSizes: number[] | null;
  /** Adapter pairs in the file. */
  tasks: number;
  dim: number;
  ffDim: number;
  nhead: number;
  logitScale: number;
  classOrder: number[] | null;
}

export interface ReferenceCheckpoint {
  /** Path (or label) of the source, for messages. */
  file: string;
  info: ReferenceHeadInfo;
  /** Reference name -> float32 values. */
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

function parseIntList(raw: string | undefined, key: string, file: string): number[] | null {
  if (raw === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new DataError(file, `metadata "${key}" must be a JSON array of integers, got ${JSON.stringify(raw)}`);
  }
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x))) {
    throw new DataError(file, `metadata "${key}" must be a JSON array of integers, got ${JSON.stringify(raw)}`);
  }
  return v as number[];
}

function parseNumber(raw: string | undefined, key: string, file: string, fallback: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const v = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new DataError(file, `metadata "${key}" must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

/** Checks task sizes: a non-empty list of positive integers. */
export function checkTaskSizes(sizes: readonly number[], what: string, file: string): void {
  if (sizes.length === 0 || !sizes.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw new DataError(file, `${what} must be a non-empty list of positive integers, got [${sizes.join(', ')}]`);
  }
}

/**
 * Validates a decoded safetensors file as a reference head: dtypes, finite values, metadata,
 * then names and shapes against D, F and the number of tasks it implies.
 * @throws DataError naming `file` and the tensor or metadata key
 */
export function parseReferenceCheckpoint(content: SafetensorsContent, file: string): ReferenceCheckpoint {
  const meta = content.metadata;
  if (meta['head_format'] !== undefined && meta['head_format'] !== REFERENCE_HEAD_FORMAT) {
    throw new DataError(file, `metadata "head_format" is ${JSON.stringify(meta['head_format'])}; this version reads ${JSON.stringify(REFERENCE_HEAD_FORMAT)}`);
  }
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of Object.entries(content.tensors)) {
    let data: Float32Array;
    if (t.data instanceof Float32Array) data = t.data; // F32, and F16/BF16 widened by the reader
    else if (t.data instanceof Float64Array) data = Float32Array.from(t.data);
    else throw new DataError(file, `tensor "${name}" has dtype ${t.dtype}; a head's tensors are floating point (F32, F16, BF16 or F64)`);
    const bad = data.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new DataError(file, `tensor "${name}" element ${bad} is ${data[bad]} (not finite${t.dtype === 'F64' ? ' in float32' : ''})`);
    tensors.set(name, { shape: t.shape, data });
  }

  // D and F from the tensors that carry them; when those are absent the name check reports them.
  const dimOf = (name: string, axis: number): number | null => {
    const s = tensors.get(name)?.shape;
    return s && s.length === 2 ? s[axis]! : null;
  };
  const dim = dimOf(`${VGA_PREFIX}self_attn.in_proj_weight`, 1) ?? dimOf('mu_adapters.0.fc.0.weight', 1) ?? 0;
  const ffDim = dimOf(`${VGA_PREFIX}linear1.weight`, 0) ?? 0;
  const taskSizes = parseIntList(meta['task_sizes'], 'task_sizes', file);
  if (taskSizes) checkTaskSizes(taskSizes, 'metadata "task_sizes"', file);
  let pairs = 0;
  for (const name of tensors.keys()) {
    const m = /^(?:mu|sigma)_adapters\.(\d+)\.fc\.0\./.exec(name);
    if (m) pairs = Math.max(pairs, Number(m[1]) + 1);
  }
  const tasks = taskSizes ? taskSizes.length : pairs;
  if (tasks === 0) throw new DataError(file, 'no adapter pairs (mu_adapters.<i>.fc.0.*, sigma_adapters.<i>.fc.0.*) and no "task_sizes" metadata');
  checkReferenceNames(new Map([...tensors].map(([n, t]) => [n, t.shape])), expectedReferenceShapes(dim, ffDim, tasks), file);

  const metaDim = parseNumber(meta['dim'], 'dim', file, dim, true);
  if (metaDim !== dim) throw new DataError(file, `metadata "dim" is ${metaDim} but the tensors have D = ${dim}`);
  const nhead = parseNumber(meta['nhead'], 'nhead', file, 1, true);
  if (dim % nhead !== 0) throw new DataError(file, `metadata "nhead" ${nhead} does not divide D = ${dim}`);
  const classOrder = parseIntList(meta['class_order'], 'class_order', file);
  if (classOrder && taskSizes && classOrder.length !== taskSizes.reduce((a, b) => a + b, 0)) {
    throw new DataError(file, `metadata "class_order" lists ${classOrder.length} classes but "task_sizes" sums to ${taskSizes.reduce((a, b) => a + b, 0)}`);
  }
  return {
    file,
    info: { taskSizes, tasks, dim, ffDim, nhead, logitScale: parseNumber(meta['logit_scale'], 'logit_scale', file, 100, false), classOrder },
    tensors,
  };
}

/** Reads and validates a reference head file (errors name `path`). */
export async function readReferenceCheckpoint(path: string): Promise<ReferenceCheckpoint> {
  return parseReferenceCheckpoint(await readSafetensors(path), path);
}

export interface ReferenceImportOptions {
  /** Per-template text features e[c, p] [C_total, P, D] (unit norm), classes in incremental order. */
  text: Float32Array;
  numTemplates: number;
  /** C_total (default: all of `text`); at least the classes of the checkpoint's tasks (only those are used: later tasks bring their own text). */
  numClasses?: number;
  /** Classes per task when the file has no `task_sizes` (must agree when it has). */
  taskSizes?: readonly number[];
  /** Overrides the file's logit scale. */
  logitScale?: number;
  /** Generator of the structure's initialization (overwritten by the file's tensors); default Rng(0). */
  rng?: Rng;
  /** CLAP config; the VGA's heads and feed-forward width come from the file. */
  config?: ClapConfigInput;
}

/**
 * Builds a CLAP method holding the checkpoint's weights: one `beginTask` per task (in 'train'
 * phase, the last task current), then every tensor overwritten from the file. It can keep learning.
 * @throws DataError naming the checkpoint for inconsistent task sizes, text or config
 */
export function clapFromReference(ckpt: ReferenceCheckpoint, opts: ReferenceImportOptions): ClapMethod {
  const { file, info } = ckpt;
  const taskSizes = resolveTaskSizes(ckpt, opts.taskSizes);
  const p = opts.numTemplates;
  if (!(Number.isSafeInteger(p) && p >= 1) || opts.text.length % (p * info.dim) !== 0) {
    throw new DataError(file, `text has ${opts.text.length} values, not a multiple of P ${p} x D ${info.dim} (the head's width)`);
  }
  const numClasses = opts.numClasses ?? opts.text.length / (p * info.dim);
  const seen = taskSizes.reduce((a, b) => a + b, 0);
  if (numClasses * p * info.dim !== opts.text.length || numClasses < seen) {
    throw new DataError(file, `text holds ${opts.text.length / (p * info.dim)} classes (numClasses ${numClasses}); the checkpoint's tasks cover ${seen}`);
  }
  const user = opts.config ?? {};
  if ((user.vga?.heads !== undefined && user.vga.heads !== info.nhead) || (user.vga?.ffDim !== undefined && user.vga.ffDim !== info.ffDim)) {
    throw new DataError(file, `config vga ${JSON.stringify(user.vga)} disagrees with the checkpoint (nhead ${info.nhead}, feed-forward ${info.ffDim})`);
  }
  const config = validateClapConfig({ ...user, vga: { ...user.vga, heads: info.nhead, ffDim: info.ffDim } });
  if (config.taskTokens || config.hierarchical.enabled) {
    throw new Clap4ClipError('reference import: task tokens and the hierarchical encoder have no reference mapping here; turn them off');
  }
  const method = buildClapMethod('clap', { dim: info.dim, logitScale: opts.logitScale ?? info.logitScale }, config, false);
  // The initialization drawn here is overwritten by the checkpoint's tensors right after.
  const rng = opts.rng ?? new Rng(0);
  const block = p * info.dim;
  let start = 0;
  taskSizes.forEach((n, index) => {
    const textPerTemplate = opts.text.slice(start * block, (start + n) * block);
    method.beginTask({ index, classStart: start, classEnd: start + n }, { textPerTemplate, numTemplates: p }, rng);
    start += n;
  });
  loadReferenceTensors(method.model, ckpt.tensors, file);
  return method;
}

function resolveTaskSizes(ckpt: ReferenceCheckpoint, given: readonly number[] | undefined): number[] {
  const { file, info } = ckpt;
  if (given) checkTaskSizes(given, 'taskSizes', file);
  const fromFile = info.taskSizes;
  if (fromFile && given && (fromFile.length !== given.length || fromFile.some((n, i) => n !== given[i]))) {
    throw new DataError(file, `metadata "task_sizes" [${fromFile.join(', ')}] disagrees with the given task sizes [${given.join(', ')}]`);
  }
  const sizes = fromFile ?? (given ? [...given] : null);
  if (!sizes) throw new DataError(file, 'no "task_sizes" metadata: pass the classes per task (taskSizes)');
  if (sizes.length !== info.tasks) throw new DataError(file, `${info.tasks} adapter pairs for ${sizes.length} tasks [${sizes.join(', ')}]`);
  return sizes;
}

/** Reads a reference head file and builds the method (see `clapFromReference`). */
export async function importReferenceCheckpoint(path: string, opts: ReferenceImportOptions): Promise<ClapMethod> {
  return clapFromReference(await readReferenceCheckpoint(path), opts);
}

export interface ReferenceExportOptions {
  /** Dataset label of each incremental label (stored as `class_order`). */
  classOrder?: readonly number[];
}

/** The model's head in the reference format (tensors F32, metadata as documented above). */
export function encodeReferenceCheckpoint(model: ClapModel, opts: ReferenceExportOptions = {}): SafetensorsContent {
  if (model.tasks.length === 0) throw new Clap4ClipError('reference export: the model has no task yet');
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, t] of exportReferenceTensors(model)) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  const metadata: Record<string, string> = {
    head_format: REFERENCE_HEAD_FORMAT,
    task_sizes: JSON.stringify(model.tasks.map((t) => t.classEnd - t.classStart)),
    dim: String(model.setup.dim),
    nhead: String(model.vga.nHead),
    logit_scale: String(model.setup.logitScale),
  };
  if (opts.classOrder) {
    if (opts.classOrder.length !== model.classes) throw new Clap4ClipError(`reference export: classOrder has ${opts.classOrder.length} entries for ${model.classes} classes`);
    metadata['class_order'] = JSON.stringify([...opts.classOrder]);
  }
  return { tensors, metadata };
}

/** Writes `encodeReferenceCheckpoint(model)` to `path` atomically. */
export async function exportReferenceCheckpoint(model: ClapModel, path: string, opts: ReferenceExportOptions = {}): Promise<void> {
  const { tensors, metadata } = encodeReferenceCheckpoint(model, opts);
  await writeSafetensors(path, tensors, metadata);
}
