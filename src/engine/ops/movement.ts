/** Shape and layout operations: reshape, permute/transpose, concat, slice, row gather. */
import { normAxis } from '../broadcast.js';
import { accumulateGrad, result, shapeToString, sizeOf, Tensor } from '../tensor.js';

/** Same data, new shape; one dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  if (sizeOf(resolved) !== x.size || shape.filter((d) => d === -1).length > 1 || !resolved.every(Number.isInteger)) {
    throw new Error(`reshape: cannot view shape ${shapeToString(x.shape)} as ${shapeToString(shape)}`);
  }
  const out = result(x.data, resolved, [x], 'reshape');
  out.backwardFn = () => accumulateGrad(x, out.grad!, true); // see accumulateGrad: a dead output's gradient is handed down
  return out;
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Source index of each destination element for an axis permutation. */
function permuteIndex(shape: readonly number[], perm: readonly number[]): Int32Array {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const srcStrides = perm.map((p) => inStrides[p]!);
  const total = sizeOf(shape);
  const idx = new Int32Array(total);
  const n = outShape.length;
  const counter = new Array<number>(n).fill(0);
  let src = 0;
  for (let o = 0; o < total; o++) {
    idx[o] = src;
    for (let ax = n - 1; ax >= 0; ax--) {
      counter[ax]!++;
      src += srcStrides[ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      src -= srcStrides[ax]! * outShape[ax]!;
      counter[ax] = 0;
    }
  }
  return idx;
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const n = x.ndim;
  if (perm.length !== n || new Set(perm.map((p) => normAxis(p, n))).size !== n) {
    throw new Error(`permute: ${shapeToString(perm)} is not a permutation of the axes of ${shapeToString(x.shape)}`);
  }
  const p = perm.map((a) => normAxis(a, n));
  const idx = permuteIndex(x.shape, p);
  const xd = x.data;
  const o = new Float32Array(xd.length);
  for (let i = 0; i < o.length; i++) o[i] = xd[idx[i]!]!;
  const out = result(o, p.map((a) => x.shape[a]!), [x], 'permute');
  out.backwardFn = () => accumulateGrad(x, scatter(out.grad!, idx), true);
  return out;
}

/** Swaps two axes (the last two by default). */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const ia = normAxis(a, x.ndim), ib = normAxis(b, x.ndim);
  perm[ia] = ib;
  perm[ib] = ia;
  return permute(x, perm);
}

/** Layout of a tensor seen as [outer, axisLen, inner] around `axis`. */
function around(shape: readonly number[], axis: number) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { outer, inner, len: shape[axis]! };
}

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const ref = xs[0]!;
  const ax = normAxis(axis, ref.ndim);
  for (const x of xs) {
    if (x.ndim !== ref.ndim || x.shape.some((d, i) => i !== ax && d !== ref.shape[i])) {
      throw new Error(`concat: shape ${shapeToString(x.shape)} does not match ${shapeToString(ref.shape)} outside axis ${ax}`);
    }
  }
  const total = xs.reduce((n, x) => n + x.shape[ax]!, 0);
  const shape = ref.shape.map((d, i) => (i === ax ? total : d));
  const { outer, inner } = around(shape, ax);
  const o = new Float32Array(sizeOf(shape));
  const rowOut = total * inner;
  let offset = 0;
  const offsets: number[] = [];
  for (const x of xs) {
    offsets.push(offset);
    const chunk = x.shape[ax]! * inner;
    for (let r = 0; r < outer; r++) o.set(x.data.subarray(r * chunk, (r + 1) * chunk), r * rowOut + offset);
    offset += chunk;
  }
  const out = result(o, shape, xs, 'concat');
  out.backwardFn = () => {
    const g = out.grad!;
    xs.forEach((x, k) => {
      if (!x.requiresGrad) return;
      const chunk = x.shape[ax]! * inner;
      const gx = new Float32Array(x.size);
      for (let r = 0; r < outer; r++) gx.set(g.subarray(r * rowOut + offsets[k]!, r * rowOut + offsets[k]! + chunk), r * chunk);
      accumulateGrad(x, gx, true);
    });
  };
  return out;
}

/** Elements start..end-1 along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis(axis, x.ndim);
  const { outer, inner, len } = around(x.shape, ax);
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= len && start <= end)) {
    throw new Error(`slice: [${start}, ${end}) out of range for axis ${ax} of ${shapeToString(x.shape)}`);
  }
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const chunk = (end - start) * inner;
  // One contiguous run (leading axis, e.g. rows of an attention weight) is a view, as reshape.
  const o = outer === 1 ? x.data.subarray(start * inner, end * inner) : new Float32Array(outer * chunk);
  if (outer > 1) for (let r = 0; r < outer; r++) o.set(x.data.subarray(r * len * inner + start * inner, r * len * inner + end * inner), r * chunk);
  const out = result(o, shape, [x], 'slice');
  out.backwardFn = () => {
    // Add straight into x's gradient region: sibling slices (q, k, v of one projection) then
    // share one buffer instead of each allocating and adding a full-size copy.
    if (!x.requiresGrad) return;
    const g = out.grad!;
    const fresh = x.grad === null;
    x.grad ??= new Float32Array(x.size);
    const gx = x.grad;
    for (let r = 0; r < outer; r++) {
      const base = r * len * inner + start * inner;
      if (fresh) gx.set(g.subarray(r * chunk, (r + 1) * chunk), base);
      else addInto(gx, base, g, r * chunk, chunk);
    }
  };
  return out;
}

/** Rows `indices` of x along axis 0 (indices may repeat; gradients add up). */
export function gatherRows(x: Tensor, indices: Int32Array | number[]): Tensor {
  const rows = x.shape[0]!;
  const inner = x.size / rows;
  const idx = Int32Array.from(indices);
  const o = new Float32Array(idx.length * inner);
  for (let k = 0; k < idx.length; k++) {
    const r = idx[k]!;
    if (!(r >= 0 && r < rows)) throw new Error(`gatherRows: index ${r} out of range [0, ${rows})`);
    o.set(x.data.subarray(r * inner, (r + 1) * inner), k * inner);
  }
  const out = result(o, [idx.length, ...x.shape.slice(1)], [x], 'gatherRows');
  out.backwardFn = () => {
    if (!x.requiresGrad) return;
    const g = out.grad!;
    x.grad ??= new Float32Array(x.size);
    const gx = x.grad;
    for (let k = 0; k < idx.length; k++) addInto(gx, idx[k]! * inner, g, k * inner, inner);
  };
  return out;
}

/** gx[idx[i]] = g[i]: a permutation's gradient. */
function scatter(g: Float32Array, idx: Int32Array): Float32Array {
  const gx = new Float32Array(g.length);
  for (let i = 0; i < g.length; i++) gx[idx[i]!] = g[i]!;
  return gx;
}

/** dst[dstAt + j] += src[srcAt + j] for j < n. */
function addInto(dst: Float32Array, dstAt: number, src: Float32Array, srcAt: number, n: number): void {
  for (let j = 0; j < n; j++) dst[dstAt + j]! += src[srcAt + j]!;
}
