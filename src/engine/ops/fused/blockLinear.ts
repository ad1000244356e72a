/**
 * Fused: a linear map per block of rows, y[r] = x[r] W_b^T + b_b for the rows r of block b, in one
 * onnxruntime graph each way. CLAP's task encoders are such a map: task i's pair reads only its
 * own classes, so K tasks meant K calls of ~10 rows each, both ways, where call overhead and
 * per-call packing of the weight outweighed the arithmetic (README, Performance).
 * Primitive twin: `linear` on each `slice` of rows, then `concat` (compared in `fused.test.ts`);
 * it also serves products below `gemmSettings.smallProductThreshold`.
 */
import { attr, GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession, SessionCache, type SyncSession } from '../../onnx/runtime.js';
import { accumulateGrad, inBackwardRate, result, shapeToString, Tensor } from '../../tensor.js';
import { gemmSettings, linear, linearParameterBackward } from '../matmul.js';
import { concat, slice } from '../movement.js';

/** Rows [start, end) of the block axis use `weight` [out, in] and `bias` [out]. */
export interface LinearBlock {
  start: number;
  end: number;
  weight: Tensor;
  bias: Tensor;
}

/**
 * One graph per (leading count G, blocks K): piece j = g * K + b is block b of leading index g,
 * fed as its own input (a row view: no copy); the K weights are inputs, shared across g, except
 * the first `frozen` blocks' weights and biases, which are baked in as initializers (`FrozenBlocks`).
 * Forward: Y = concat_j (X_j W_b^T + B_b). Input gradient: dX = concat_j (G_j W_b).
 */
function buildBlockGraph(kind: 'forward' | 'inputGradient', pieces: number, blocks: number, frozen: FrozenBlocks | null): Uint8Array {
  const g = new GraphBuilder(`blockLinear_${kind}`);
  for (let b = 0; b < blocks; b++) {
    const baked = frozen !== null && b < frozen.blocks.length ? frozen.blocks[b]! : null;
    if (baked) g.initializer(`W${b}`, { type: 'float32', dims: [...baked.weight.shape], data: baked.weight.data });
    else g.input(`W${b}`, 'float32', ['OUT', 'IN']);
    if (kind !== 'forward') continue;
    if (baked) g.initializer(`B${b}`, { type: 'float32', dims: [baked.bias.size], data: baked.bias.data });
    else g.input(`B${b}`, 'float32', ['OUT']);
  }
  const ys: string[] = [];
  for (let j = 0; j < pieces; j++) {
    const b = j % blocks;
    if (kind === 'forward') {
      g.input(`X${j}`, 'float32', [`M${j}`, 'IN']);
      ys.push(g.node('Gemm', [`X${j}`, `W${b}`, `B${b}`], { transB: attr.int(1) }));
    } else {
      g.input(`G${j}`, 'float32', [`M${j}`, 'OUT']);
      ys.push(g.node('MatMul', [`G${j}`, `W${b}`]));
    }
  }
  g.node('Concat', ys, { axis: attr.int(0) }, ['Y']);
  g.output('Y', 'float32', ['M', kind === 'forward' ? 'OUT' : 'IN']);
  return g.toBytes();
}

function blockSession(kind: 'forward' | 'inputGradient', pieces: number, blocks: number, frozen: FrozenBlocks | null): SyncSession {
  const key = `${kind}:${pieces}x${blocks}`;
  if (frozen === null) return cachedSession(`block-linear:${key}`, () => buildBlockGraph(kind, pieces, blocks, null));
  return frozen.session(key, () => buildBlockGraph(kind, pieces, blocks, frozen));
}

/**
 * The leading blocks of a `blockLinear` whose weights stay as they are for a while (CLAP's task
 * encoders of earlier tasks while a new task is learned), baked into the graphs as initializers:
 * onnxruntime then packs those weights once, not at every call, and they are not fed. The caller
 * promises that the tensors are not written while it uses the pack (they must not require a
 * gradient: `blockLinear` checks), and disposes it when that may change.
 */
export class FrozenBlocks {
  private readonly sessions = new SessionCache();
  private disposed = false;

  constructor(readonly blocks: readonly { weight: Tensor; bias: Tensor }[]) {
    if (blocks.length === 0) throw new Error('FrozenBlocks: no blocks');
  }

  /** Throws unless `blocks` starts with exactly these tensors, none of them requiring a gradient. */
  checkLeading(blocks: readonly LinearBlock[]): void {
    if (this.disposed) throw new Error('blockLinear: the frozen blocks were disposed');
    if (blocks.length < this.blocks.length) throw new Error(`blockLinear: ${this.blocks.length} frozen blocks for ${blocks.length} blocks`);
    this.blocks.forEach((f, i) => {
      const b = blocks[i]!;
      if (b.weight !== f.weight || b.bias !== f.bias) throw new Error(`blockLinear: block ${i} is not the frozen block ${i} (other tensors)`);
      if (b.weight.requiresGrad || b.bias.requiresGrad) throw new Error(`blockLinear: frozen block ${i} requires a gradient; a trained weight cannot be baked in`);
    });
  }

  session(key: string, build: () => Uint8Array): SyncSession {
    return this.sessions.get(key, build);
  }

  /** Frees the native sessions (and their copies of the weights); the pack cannot be used again. */
  dispose(): void {
    this.sessions.dispose();
    this.disposed = true;
  }
}

/** The rows of every piece j (g-major, as the graphs), as [start, end) over the flattened rows. */
function pieceRows(lead: number, blockRows: number, blocks: readonly LinearBlock[]): [number, number][] {
  const rows: [number, number][] = [];
  for (let g = 0; g < lead; g++) for (const b of blocks) rows.push([g * blockRows + b.start, g * blockRows + b.end]);
  return rows;
}

function checkBlocks(x: Tensor, blocks: readonly LinearBlock[]): { inF: number; outF: number; rows: number } {
  if (x.ndim < 2) throw new Error(`blockLinear: x ${shapeToString(x.shape)} needs [..., rows, in]`);
  const rows = x.shape[x.ndim - 2]!, inF = x.shape[x.ndim - 1]!;
  if (blocks.length === 0) throw new Error('blockLinear: no blocks');
  const outF = blocks[0]!.weight.shape[0]!;
  let next = 0;
  for (const [i, b] of blocks.entries()) {
    if (b.start !== next || !(b.end > b.start)) throw new Error(`blockLinear: block ${i} covers [${b.start}, ${b.end}); blocks must tile the ${rows} rows in order, next starting at ${next}`);
    if (b.weight.ndim !== 2 || b.weight.shape[0] !== outF || b.weight.shape[1] !== inF || b.bias.size !== outF) {
      throw new Error(`blockLinear: block ${i} has weight ${shapeToString(b.weight.shape)} and bias ${shapeToString(b.bias.shape)}; x ${shapeToString(x.shape)} needs [${outF}, ${inF}] and [${outF}]`);
    }
    next = b.end;
  }
  if (next !== rows) throw new Error(`blockLinear: blocks cover ${next} of the ${rows} rows of x ${shapeToString(x.shape)}`);
  return { inF, outF, rows };
}

/**
 * @param x [..., R, in]; the blocks tile R in order and repeat over the leading axes
 * @param blocks per block its rows and weight [out, in], bias [out]
 * @returns [..., R, out]
 */
export function blockLinear(x: Tensor, blocks: readonly LinearBlock[], frozen: FrozenBlocks | null = null): Tensor {
  const { inF, outF, rows } = checkBlocks(x, blocks);
  frozen?.checkLeading(blocks);
  const lead = x.size / (rows * inF);
  if (lead * rows * inF * outF <= gemmSettings.smallProductThreshold || gemmSettings.forcePath === 'ts') {
    // The twin; its own linear calls take the TypeScript path for products this small.
    return concat(blocks.map((b) => linear(slice(x, -2, b.start, b.end), b.weight, b.bias)), -2);
  }
  const pieces = pieceRows(lead, rows, blocks);
  const k = blocks.length;
  const feeds: Parameters<SyncSession['run']>[0] = {};
  const baked = frozen?.blocks.length ?? 0;
  blocks.forEach((b, i) => {
    if (i < baked) return;
    feeds[`W${i}`] = { type: 'float32', data: b.weight.data, dims: [outF, inF] };
    feeds[`B${i}`] = { type: 'float32', data: b.bias.data, dims: [outF] };
  });
  pieces.forEach(([s, e], j) => { feeds[`X${j}`] = { type: 'float32', data: x.data.subarray(s * inF, e * inF), dims: [e - s, inF] }; });
  const y = blockSession('forward', pieces.length, k, frozen).run(feeds)['Y']!.data as Float32Array;
  const out = result(y, [...x.shape.slice(0, -1), outF], [x, ...blocks.flatMap((b) => [b.weight, b.bias])], 'blockLinear');
  out.backwardFn = () => blockLinearBackward(out.grad!, x, blocks, pieces, inF, outF, frozen);
  return out;
}

/** Rows of `buf` (width `cols`) for the pieces of block b: a view for one piece, else gathered. */
function blockRowsOf(buf: Float32Array, cols: number, pieces: readonly [number, number][], b: number, k: number): Float32Array {
  if (pieces.length === k) return buf.subarray(pieces[b]![0] * cols, pieces[b]![1] * cols);
  const parts: Float32Array[] = [];
  for (let j = b; j < pieces.length; j += k) parts.push(buf.subarray(pieces[j]![0] * cols, pieces[j]![1] * cols));
  const outBuf = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { outBuf.set(p, at); at += p.length; }
  return outBuf;
}

function blockLinearBackward(g: Float32Array, x: Tensor, blocks: readonly LinearBlock[], pieces: readonly [number, number][], inF: number, outF: number, frozen: FrozenBlocks | null): void {
  const k = blocks.length;
  if (x.requiresGrad) {
    // Before any weight below is updated in place.
    const feeds: Parameters<SyncSession['run']>[0] = {};
    const baked = frozen?.blocks.length ?? 0;
    blocks.forEach((b, i) => { if (i >= baked) feeds[`W${i}`] = { type: 'float32', data: b.weight.data, dims: [outF, inF] }; });
    pieces.forEach(([s, e], j) => { feeds[`G${j}`] = { type: 'float32', data: g.subarray(s * outF, e * outF), dims: [e - s, outF] }; });
    accumulateGrad(x, blockSession('inputGradient', pieces.length, k, frozen).run(feeds)['Y']!.data as Float32Array, true);
  }
  blocks.forEach((b, i) => {
    if (inBackwardRate(b.weight) === undefined && !b.weight.requiresGrad && !b.bias.requiresGrad) return; // frozen: gather nothing
    const gb = blockRowsOf(g, outF, pieces, i, k);
    linearParameterBackward(gb, blockRowsOf(x.data, inF, pieces, i, k), b.weight, b.bias, gb.length / outF, outF, inF);
  });
}
