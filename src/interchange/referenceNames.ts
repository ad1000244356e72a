/**
 * The reference PyTorch code's parameter names for the CLAP head, mapped onto `ClapModel`'s
 * tensors in both directions.
 *
 *     reference name                              ClapModel tensor
 *     vga.layers.0.<torch decoder-layer name>     model.vga (`torchStateDictNames`: self_attn.in_proj_weight, ...)
 *     mu_adapters.<i>.fc.0.weight    [D, D]       encoders[i].weight rows 0 .. D-1      (A_i)
 *     mu_adapters.<i>.fc.0.bias      [D]          encoders[i].bias   entries 0 .. D-1   (a_i)
 *     sigma_adapters.<i>.fc.0.weight [D, D]       encoders[i].weight rows D .. 2D-1     (S_i)
 *     sigma_adapters.<i>.fc.0.bias   [D]          encoders[i].bias   entries D .. 2D-1  (b_i)
 *
 * The reference keeps two nn.Linear per task; a `DistEncoder` stacks them into one [2D, D] weight
 * (one product for both). Row blocks of a row-major matrix are contiguous, so each reference tensor
 * is a contiguous window (`offset`, `shape`) of one of ours: export reads the window (split),
 * import writes it (join), and gradients are read through the same windows.
 * Both use nn.Linear's layout (y = x W^T), so no transpose is involved anywhere.
 */
import { torchStateDictNames } from '../engine/nn/transformerDecoderLayer.js';
import { sizeOf, type Tensor } from '../engine/tensor.js';
import type { ClapModel } from '../methods/clap/model.js';
import { Clap4ClipError, DataError } from '../util/errors.js';

/** The reference wraps its decoder layer in `nn.TransformerDecoder(layer, 1)`. */
export const VGA_PREFIX = 'vga.layers.0.';

/** One reference tensor: a contiguous window of one of the model's tensors. */
export interface ReferenceBinding {
  /** The reference's state-dict name (`mu_adapters.1.fc.0.weight`). */
  name: string;
  /** The model tensor holding it. */
  tensor: Tensor;
  /** Our name of the window, for messages (`encoders.1.weight[0:8]`). */
  ours: string;
  /** First element of the window in `tensor.data`. */
  offset: number;
  /** The reference tensor's shape (the window holds sizeOf(shape) elements). */
  shape: number[];
}

/** Where every reference tensor lives in `model`, VGA first, then per task mu then sigma adapter. */
export function referenceBindings(model: ClapModel): ReferenceBinding[] {
  if (model.config.taskTokens || model.globalEncoder) {
    throw new Clap4ClipError('reference names: the model uses task tokens or the hierarchical global encoder; only the default CLAP head (VGA + per-task mu/sigma adapters) has a reference mapping here');
  }
  const out: ReferenceBinding[] = torchStateDictNames(model.vga).map(([name, tensor]) => ({
    name: VGA_PREFIX + name, tensor, ours: `vga.${name}`, offset: 0, shape: [...tensor.shape],
  }));
  model.encoders.forEach((enc, i) => {
    if (!enc.withSigma) throw new Clap4ClipError(`reference names: encoder ${i} has no sigma map (deterministic ablation); the reference head always has sigma adapters`);
    const d = enc.dim;
    for (const [kind, block] of [['mu', 0], ['sigma', 1]] as const) {
      out.push(
        { name: `${kind}_adapters.${i}.fc.0.weight`, tensor: enc.weight, ours: `encoders.${i}.weight[${block * d}:${(block + 1) * d}]`, offset: block * d * d, shape: [d, d] },
        { name: `${kind}_adapters.${i}.fc.0.bias`, tensor: enc.bias, ours: `encoders.${i}.bias[${block * d}:${(block + 1) * d}]`, offset: block * d, shape: [d] },
      );
    }
  });
  return out;
}

/** The window's values (a copy), or its gradient (null when the tensor has none). */
export function readBinding(b: ReferenceBinding, source: 'data' | 'grad' = 'data'): Float32Array | null {
  const from = source === 'data' ? b.tensor.data : b.tensor.grad;
  return from ? from.slice(b.offset, b.offset + sizeOf(b.shape)) : null;
}

/** Overwrites the window with `values` (sizeOf(shape) elements). */
export function writeBinding(b: ReferenceBinding, values: Float32Array): void {
  const n = sizeOf(b.shape);
  if (values.length !== n) throw new Error(`writeBinding: ${values.length} values for ${b.name} [${b.shape.join(', ')}]`);
  b.tensor.data.set(values, b.offset);
}

/** The reference state dict of the head: name -> { shape, data } (copies). */
export function exportReferenceTensors(model: ClapModel): Map<string, { shape: number[]; data: Float32Array }> {
  return new Map(referenceBindings(model).map((b) => [b.name, { shape: b.shape, data: readBinding(b)! }]));
}

/**
 * The names and shapes a reference head with these dimensions holds, in state-dict order.
 * @param dim D; @param ffDim the VGA's feed-forward width F; @param tasks number of adapter pairs
 */
export function expectedReferenceShapes(dim: number, ffDim: number, tasks: number): Map<string, number[]> {
  const d = dim;
  const m = new Map<string, number[]>();
  for (const attn of ['self_attn', 'multihead_attn']) {
    m.set(`${VGA_PREFIX}${attn}.in_proj_weight`, [3 * d, d]);
    m.set(`${VGA_PREFIX}${attn}.in_proj_bias`, [3 * d]);
    m.set(`${VGA_PREFIX}${attn}.out_proj.weight`, [d, d]);
    m.set(`${VGA_PREFIX}${attn}.out_proj.bias`, [d]);
  }
  m.set(`${VGA_PREFIX}linear1.weight`, [ffDim, d]);
  m.set(`${VGA_PREFIX}linear1.bias`, [ffDim]);
  m.set(`${VGA_PREFIX}linear2.weight`, [d, ffDim]);
  m.set(`${VGA_PREFIX}linear2.bias`, [d]);
  for (const n of [1, 2, 3]) {
    m.set(`${VGA_PREFIX}norm${n}.weight`, [d]);
    m.set(`${VGA_PREFIX}norm${n}.bias`, [d]);
  }
  for (let i = 0; i < tasks; i++) {
    for (const kind of ['mu', 'sigma']) {
      m.set(`${kind}_adapters.${i}.fc.0.weight`, [d, d]);
      m.set(`${kind}_adapters.${i}.fc.0.bias`, [d]);
    }
  }
  return m;
}

/** Why a name that is not part of the head might be in the file (empty when there is no guess). */
function unexpectedHint(name: string): string {
  if (name.startsWith('module.')) return ' (a DataParallel prefix: strip "module.")';
  if (/^vga\.layers\.[1-9]/.test(name)) return ' (the reference VGA has exactly one decoder layer)';
  if (name.startsWith('vga.norm')) return ' (the reference decoder has no final norm)';
  if (/task_token|global_adapter|vga_global/.test(name)) return ' (task tokens and the hierarchical global encoder are not supported by this interchange)';
  if (name.startsWith('previous_')) return ' (the frozen distillation copy is not part of the head)';
  if (/^(mu|sigma)_adapters\.\d+\.fc\.0\./.test(name)) return ' (more adapter pairs than tasks in task_sizes)';
  if (/^(image_encoder|text_encoder|clip_model|logit_scale)/.test(name)) return ' (save only the trainable modules: vga, mu_adapters, sigma_adapters)';
  return '';
}

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/**
 * Checks that `found` holds exactly the `expected` names with the expected shapes.
 * @throws DataError naming `file` and the first offending tensor: missing names (all listed),
 *   unexpected names (with a hint), wrong shapes
 */
export function checkReferenceNames(found: ReadonlyMap<string, readonly number[]>, expected: ReadonlyMap<string, readonly number[]>, file: string): void {
  const missing = [...expected.keys()].filter((n) => !found.has(n));
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more: ${missing.slice(1, 6).join(', ')}${missing.length > 6 ? ', ...' : ''})` : '';
    throw new DataError(file, `missing tensor "${missing[0]}"${more}`);
  }
  for (const name of found.keys()) {
    if (!expected.has(name)) throw new DataError(file, `unexpected tensor "${name}"${unexpectedHint(name)}`);
  }
  for (const [name, shape] of expected) {
    const got = found.get(name)!;
    if (got.length !== shape.length || got.some((v, k) => v !== shape[k])) {
      throw new DataError(file, `tensor "${name}" has shape ${shapeText(got)}, expected ${shapeText(shape)}`);
    }
  }
}

/**
 * Copies a reference state dict into `model` (names and shapes checked first; nothing is written
 * when a check fails).
 * @param tensors name -> { shape, data } with float32 data
 * @param file names the source in errors
 */
export function loadReferenceTensors(model: ClapModel, tensors: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>, file: string): void {
  const bindings = referenceBindings(model);
  const expected = new Map(bindings.map((b) => [b.name, b.shape]));
  checkReferenceNames(new Map([...tensors].map(([n, t]) => [n, t.shape])), expected, file);
  for (const b of bindings) writeBinding(b, tensors.get(b.name)!.data);
  model.markWritten();
}

/**
 * Gradients under reference names for every tensor of the head that requires grad (in the
 * current trainable set), in state-dict order; zeros for a trainable tensor that got none.
 */
export function referenceGradients(model: ClapModel): [string, { shape: number[]; data: Float32Array }][] {
  return referenceBindings(model)
    .filter((b) => b.tensor.requiresGrad)
    .map((b) => [b.name, { shape: b.shape, data: readBinding(b, 'grad') ?? new Float32Array(sizeOf(b.shape)) }]);
}
