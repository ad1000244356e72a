/**
 * Visual-guided attention (spec section 2): one transformer decoder layer whose queries are the
 * class text features t [C, D] (plus one learnable token per task, optionally) and whose memory is
 * the image features of the whole batch [B, D]. Self-attention is block-diagonal over tasks, so
 * class c of task i only sees the classes (and the token) of task i; cross-attention is unmasked.
 *
 *     V = VGA([t; tokens], f, mask)        h_i = t_i + V_i (+ V[token i], broadcast over task i)
 */
import { add, concat, gatherRows, slice } from '../../engine/ops/index.js';
import { TransformerDecoderLayer, type PreparedQueries } from '../../engine/nn/transformerDecoderLayer.js';
import type { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import type { VgaConfig } from './config.js';

/** The label block [classStart, classEnd) of a task. */
export interface TaskSpan {
  classStart: number;
  classEnd: number;
}

/** Builds the VGA layer (draws its default initialization from `rng`). */
export function createVga(dim: number, cfg: VgaConfig, rng: Rng): TransformerDecoderLayer {
  if (dim % cfg.heads !== 0) throw new Error(`VGA: ${cfg.heads} heads do not divide D = ${dim}`);
  return new TransformerDecoderLayer(dim, cfg.heads, rng, { dimFeedforward: cfg.ffDim, dropout: cfg.dropout });
}

function checkContiguous(tasks: readonly TaskSpan[]): number {
  let next = 0;
  for (const [i, task] of tasks.entries()) {
    if (task.classStart !== next || !(task.classEnd > task.classStart)) {
      throw new Error(`task ${i} owns [${task.classStart}, ${task.classEnd}), expected a non-empty block starting at ${next}`);
    }
    next = task.classEnd;
  }
  return next;
}

/**
 * Additive self-attention mask [Q, Q]: 0 where a query may attend, -Infinity elsewhere.
 * Without tokens Q = C and the mask is block-diagonal over the tasks' label blocks. With task
 * tokens Q = C + K (token i at row C + i): class c of task i attends to the classes of task i and
 * to token i; token i attends to the classes of task i and to itself (the reference's mask).
 */
export function taskBlockMask(tasks: readonly TaskSpan[], opts: { taskTokens?: boolean } = {}): Tensor {
  const c = checkContiguous(tasks);
  const k = opts.taskTokens ? tasks.length : 0;
  const q = c + k;
  const m = new Float32Array(q * q).fill(-Infinity);
  tasks.forEach((task, i) => {
    const rows: number[] = [];
    for (let r = task.classStart; r < task.classEnd; r++) rows.push(r);
    if (k > 0) rows.push(c + i);
    for (const r of rows) for (const col of rows) m[r * q + col] = 0;
  });
  return new Tensor(m, [q, q]);
}

/** For class c, the query row of its task's token: C + task(c). */
export function tokenRowOfClass(tasks: readonly TaskSpan[]): Int32Array {
  const c = checkContiguous(tasks);
  const idx = new Int32Array(c);
  tasks.forEach((task, i) => idx.fill(c + i, task.classStart, task.classEnd));
  return idx;
}

export interface VisualGuidedOptions {
  /** Self-attention mask from `taskBlockMask` (with tokens iff `tokens` is given). */
  mask: Tensor;
  /** Dropout on (learning a new task) or off (finetuning, evaluation). */
  training: boolean;
  rng: Rng;
  /** Learnable task tokens, one [1, D] per task, or null. */
  tokens: readonly Tensor[] | null;
  /** `tokenRowOfClass(tasks)`, needed with tokens. */
  tokenRows?: Int32Array;
}

/** The batch-independent part of the VGA (`TransformerDecoderLayer.prepareQueries` of [t; tokens]). */
export type VgaQueries = PreparedQueries;

/** The self-attention block over [t; tokens]: everything of the VGA that does not read the batch. */
export function vgaQueries(vga: TransformerDecoderLayer, t: Tensor, opts: VisualGuidedOptions): VgaQueries {
  const query = opts.tokens ? concat([t, ...opts.tokens], 0) : t;
  return vga.prepareQueries(query, { tgtMask: opts.mask, training: opts.training, rng: opts.rng });
}

/**
 * @param vga the decoder layer
 * @param t class text features [C, D]
 * @param memory image features of the batch [B, D]
 * @param queries `vgaQueries(vga, t, opts)`, when computed once for many batches (evaluation)
 * @returns h = t + V (+ token outputs) [C, D], and hGlobal = t + V without the token outputs
 *   [C, D] (the reference's input of the hierarchical global encoder)
 */
export function visualGuidedFeatures(
  vga: TransformerDecoderLayer, t: Tensor, memory: Tensor, opts: VisualGuidedOptions, queries?: VgaQueries,
): { h: Tensor; hGlobal: Tensor } {
  const c = t.shape[0]!;
  const v = vga.forwardPrepared(queries ?? vgaQueries(vga, t, opts), memory, { training: opts.training, rng: opts.rng });
  const hGlobal = add(t, opts.tokens ? slice(v, 0, 0, c) : v);
  if (!opts.tokens) return { h: hGlobal, hGlobal };
  // Every class of task i receives the VGA output of token i (reference: `vga_features_all[n_query + i]`).
  if (!opts.tokenRows) throw new Error('visualGuidedFeatures: task tokens need tokenRows');
  return { h: add(hGlobal, gatherRows(v, opts.tokenRows)), hGlobal };
}
