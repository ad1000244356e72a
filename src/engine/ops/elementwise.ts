/**
 * Elementwise operations with NumPy broadcasting. A broadcast operand is first expanded to the
 * output shape, so every kernel is one flat loop; its gradient is summed back by `sumToShape`.
 */
import { broadcastIndex, broadcastShapes, sumToShape } from '../broadcast.js';
import { accumulateGrad, result, sizeOf, Tensor } from '../tensor.js';
import { erf } from './erf.js';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `x`'s data laid out over `outShape` (shared when no broadcast is needed). */
export function expandData(x: Tensor, outShape: readonly number[]): Float32Array {
  if (sameShape(x.shape, outShape)) return x.data;
  const out = new Float32Array(sizeOf(outShape));
  if (x.size === 1) return out.fill(x.data[0]!);
  const trailing = x.shape.length <= outShape.length
    && x.shape.every((d, i) => d === outShape[outShape.length - x.shape.length + i]);
  if (trailing) {
    for (let o = 0; o < out.length; o += x.size) out.set(x.data, o);
    return out;
  }
  const idx = broadcastIndex(x.shape, outShape);
  const xd = x.data;
  for (let i = 0; i < out.length; i++) out[i] = xd[idx[i]!]!;
  return out;
}

function asTensor(x: Tensor | number): Tensor {
  return typeof x === 'number' ? Tensor.scalar(x) : x;
}

export function add(a: Tensor | number, b: Tensor | number): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const ad = expandData(ta, shape), bd = expandData(tb, shape);
  const o = new Float32Array(ad.length);
  for (let i = 0; i < o.length; i++) o[i] = ad[i]! + bd[i]!;
  const out = result(o, shape, [ta, tb], 'add');
  out.backwardFn = () => {
    const g = out.grad!;
    accumulateGrad(ta, sumToShape(g, shape, ta.shape));
    accumulateGrad(tb, sumToShape(g, shape, tb.shape));
  };
  return out;
}

export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const ad = expandData(ta, shape), bd = expandData(tb, shape);
  const o = new Float32Array(ad.length);
  for (let i = 0; i < o.length; i++) o[i] = ad[i]! - bd[i]!;
  const out = result(o, shape, [ta, tb], 'sub');
  out.backwardFn = () => {
    const g = out.grad!;
    accumulateGrad(ta, sumToShape(g, shape, ta.shape));
    if (!tb.requiresGrad) return;
    const gb = sumToShape(g, shape, tb.shape);
    const neg = new Float32Array(gb.length);
    for (let i = 0; i < neg.length; i++) neg[i] = -gb[i]!;
    accumulateGrad(tb, neg, true);
  };
  return out;
}

export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const ad = expandData(ta, shape), bd = expandData(tb, shape);
  const o = new Float32Array(ad.length);
  for (let i = 0; i < o.length; i++) o[i] = ad[i]! * bd[i]!;
  const out = result(o, shape, [ta, tb], 'mul');
  out.backwardFn = () => {
    const g = out.grad!;
    if (ta.requiresGrad) {
      const ga = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) ga[i] = g[i]! * bd[i]!;
      accumulateGrad(ta, sumToShape(ga, shape, ta.shape), true);
    }
    if (tb.requiresGrad) {
      const gb = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) gb[i] = g[i]! * ad[i]!;
      accumulateGrad(tb, sumToShape(gb, shape, tb.shape), true);
    }
  };
  return out;
}

export function div(a: Tensor | number, b: Tensor | number): Tensor {
  const ta = asTensor(a), tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const ad = expandData(ta, shape), bd = expandData(tb, shape);
  const o = new Float32Array(ad.length);
  for (let i = 0; i < o.length; i++) o[i] = ad[i]! / bd[i]!;
  const out = result(o, shape, [ta, tb], 'div');
  out.backwardFn = () => {
    const g = out.grad!;
    if (ta.requiresGrad) {
      const ga = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) ga[i] = g[i]! / bd[i]!;
      accumulateGrad(ta, sumToShape(ga, shape, ta.shape), true);
    }
    if (tb.requiresGrad) {
      const gb = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) gb[i] = -g[i]! * o[i]! / bd[i]!;
      accumulateGrad(tb, sumToShape(gb, shape, tb.shape), true);
    }
  };
  return out;
}

/**
 * Builds a unary op from its forward function and its derivative, written in terms of the input
 * x and the output y (whichever is cheaper).
 */
function unary(name: string, f: (x: number) => number, df: (x: number, y: number) => number) {
  return (x: Tensor): Tensor => {
    const xd = x.data;
    const o = new Float32Array(xd.length);
    for (let i = 0; i < o.length; i++) o[i] = f(xd[i]!);
    const out = result(o, x.shape, [x], name);
    out.backwardFn = () => {
      const g = out.grad!;
      const gx = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) gx[i] = g[i]! * df(xd[i]!, o[i]!);
      accumulateGrad(x, gx, true);
    };
    return out;
  };
}

export const neg = unary('neg', (x) => -x, () => -1);
export const exp = unary('exp', Math.exp, (_x, y) => y);
export const log = unary('log', Math.log, (x) => 1 / x);
export const sqrt = unary('sqrt', Math.sqrt, (_x, y) => 0.5 / y);
export const square = unary('square', (x) => x * x, (x) => 2 * x);
export const relu = unary('relu', (x) => (x > 0 ? x : 0), (x) => (x > 0 ? 1 : 0));
export const tanh = unary('tanh', Math.tanh, (_x, y) => 1 - y * y);
export const sigmoid = unary('sigmoid', (x) => 1 / (1 + Math.exp(-x)), (_x, y) => y * (1 - y));

/** softplus(x) = log(1 + e^x), PyTorch's threshold 20 (linear above it). */
export const softplus = unary(
  'softplus',
  (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  (x) => (x > 20 ? 1 : 1 / (1 + Math.exp(-x))),
);

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU, x * Phi(x) with the erf form (PyTorch's default `approximate='none'`). */
export const gelu = unary(
  'gelu',
  (x) => 0.5 * x * (1 + erf(x * INV_SQRT2)),
  (x) => 0.5 * (1 + erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
);

export function addScalar(x: Tensor, c: number): Tensor {
  return add(x, c);
}

export function mulScalar(x: Tensor, c: number): Tensor {
  const xd = x.data;
  const o = new Float32Array(xd.length);
  for (let i = 0; i < o.length; i++) o[i] = xd[i]! * c;
  const out = result(o, x.shape, [x], 'mulScalar');
  out.backwardFn = () => {
    const g = out.grad!;
    const gx = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) gx[i] = g[i]! * c;
    accumulateGrad(x, gx, true);
  };
  return out;
}

export function powScalar(x: Tensor, p: number): Tensor {
  return unary(`pow${p}`, (v) => v ** p, (v) => p * v ** (p - 1))(x);
}
