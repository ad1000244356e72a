/** Sum and mean over axes. The gradient of a reduction broadcasts back over the reduced axes. */
import { broadcastIndex, normAxis } from '../broadcast.js';
import { accumulateGrad, result, Tensor } from '../tensor.js';

function reducedShapes(shape: readonly number[], axes: number[] | undefined, keepDims: boolean) {
  const ndim = shape.length;
  const set = new Set((axes ?? shape.map((_, i) => i)).map((a) => normAxis(a, ndim)));
  const kept = shape.map((d, i) => (set.has(i) ? 1 : d));
  const out = keepDims ? kept : shape.filter((_, i) => !set.has(i));
  return { kept, out, count: shape.reduce((n, d, i) => (set.has(i) ? n * d : n), 1) };
}

/** Sums over `axes` (all axes when omitted). */
export function sum(x: Tensor, axes?: number[], keepDims = false): Tensor {
  const { kept, out: outShape } = reducedShapes(x.shape, axes, keepDims);
  const xd = x.data;
  const inner = x.shape.length ? x.shape[x.shape.length - 1]! : 1;
  const lastOnly = kept.length > 0 && kept[kept.length - 1] === 1 && kept.slice(0, -1).every((d, i) => d === x.shape[i]);
  let o: Float32Array;
  let idx: Int32Array | null = null;
  if (lastOnly) {
    // Row sums: the common case (softmax denominators, per-class KL) without an index map.
    o = new Float32Array(xd.length / inner);
    for (let r = 0; r < o.length; r++) {
      let s = 0;
      for (let j = 0, base = r * inner; j < inner; j++) s += xd[base + j]!;
      o[r] = s;
    }
  } else {
    idx = broadcastIndex(kept, x.shape);
    o = new Float32Array(kept.reduce((a, b) => a * b, 1));
    for (let i = 0; i < xd.length; i++) o[idx[i]!]! += xd[i]!;
  }
  const out = result(o, outShape, [x], 'sum');
  out.backwardFn = () => accumulateGrad(x, sumBackward(out.grad!, xd.length, inner, idx), true);
  return out;
}

/** Mean over `axes` (all axes when omitted). */
export function mean(x: Tensor, axes?: number[], keepDims = false): Tensor {
  const { count } = reducedShapes(x.shape, axes, keepDims);
  const s = sum(x, axes, keepDims);
  const sd = s.data;
  const o = new Float32Array(sd.length);
  for (let i = 0; i < o.length; i++) o[i] = sd[i]! / count;
  const out = result(o, s.shape, [s], 'mean');
  out.backwardFn = () => accumulateGrad(s, dividedBy(out.grad!, count), true);
  return out;
}

/** The sum's gradient spread back over the summed elements (row sums, or through an index map). */
function sumBackward(g: Float32Array, size: number, inner: number, idx: Int32Array | null): Float32Array {
  const gx = new Float32Array(size);
  if (idx === null) {
    for (let r = 0; r < g.length; r++) gx.fill(g[r]!, r * inner, (r + 1) * inner);
  } else {
    for (let i = 0; i < gx.length; i++) gx[i] = g[idx[i]!]!;
  }
  return gx;
}

function dividedBy(a: Float32Array, c: number): Float32Array {
  const o = new Float32Array(a.length);
  for (let i = 0; i < o.length; i++) o[i] = a[i]! / c;
  return o;
}
