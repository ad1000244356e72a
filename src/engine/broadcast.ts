/**
 * NumPy broadcasting: the shape rule, index mapping for binary kernels, and the one place where a
 * broadcast gradient is summed back to its input's shape (tinygrad keeps this in one helper too).
 */
import { shapeToString, sizeOf } from './tensor.js';

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`cannot broadcast shapes ${shapeToString(a)} and ${shapeToString(b)}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` aligned to `outShape`, 0 along broadcast dimensions. */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const n = outShape.length;
  const strides = new Array<number>(n).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const outAxis = n - shape.length + i;
    strides[outAxis] = shape[i] === 1 ? 0 : stride;
    stride *= shape[i]!;
  }
  return strides;
}

/**
 * For each output element (row-major over `outShape`), the flat index into an input of `shape`.
 * Used by binary kernels when the shapes differ in a way the fast paths do not cover.
 */
export function broadcastIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const total = sizeOf(outShape);
  const idx = new Int32Array(total);
  const strides = broadcastStrides(shape, outShape);
  const n = outShape.length;
  if (n === 0) return idx;
  const counter = new Array<number>(n).fill(0);
  const last = n - 1;
  const innerSize = outShape[last]!;
  const innerStride = strides[last]!;
  let base = 0;
  for (let o = 0; o < total; o += innerSize) {
    for (let j = 0; j < innerSize; j++) idx[o + j] = base + j * innerStride;
    // advance the odometer over the outer dimensions
    for (let ax = last - 1; ax >= 0; ax--) {
      counter[ax]!++;
      base += strides[ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      base -= strides[ax]! * outShape[ax]!;
      counter[ax] = 0;
    }
  }
  return idx;
}

/** Sums `grad` (shaped `fromShape`) over the broadcast dimensions so that it has `toShape`. */
export function sumToShape(grad: Float32Array, fromShape: readonly number[], toShape: readonly number[]): Float32Array {
  if (fromShape.length === toShape.length && fromShape.every((d, i) => d === toShape[i])) return grad;
  const out = new Float32Array(sizeOf(toShape));
  const toSize = out.length;
  // Fast path: `toShape` equals the trailing dims of `fromShape` (bias-like broadcast).
  const trailing = toShape.length <= fromShape.length
    && toShape.every((d, i) => d === fromShape[fromShape.length - toShape.length + i]);
  if (trailing) {
    for (let o = 0; o < grad.length; o += toSize) {
      for (let j = 0; j < toSize; j++) out[j]! += grad[o + j]!;
    }
    return out;
  }
  const idx = broadcastIndex(toShape, fromShape);
  for (let i = 0; i < grad.length; i++) out[idx[i]!]! += grad[i]!;
  return out;
}

/** Normalizes a possibly negative axis for a tensor of rank `ndim`. */
export function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new Error(`axis ${axis} out of range for rank ${ndim}`);
  return a;
}
