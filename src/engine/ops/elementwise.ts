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

/** One flat loop over the output shape: out[i] from a[i], b[i] (operands already expanded). */
type Kernel = (out: Float32Array, a: Float32Array, b: Float32Array) => void;

/**
 * How an operand's gradient is formed from the output gradient g: a loop over the output shape
 * (from g, the expanded operands and the output y) run before the broadcast reduction; or 'pass' /
 * 'negate', g itself or -g, applied after the reduction so no pass over the output shape runs.
 */
type Partial = 'pass' | 'negate' | ((out: Float32Array, g: Float32Array, a: Float32Array, b: Float32Array, y: Float32Array) => void);

/**
 * Builds an elementwise binary op with NumPy broadcasting from its forward loop and each operand's
 * gradient rule. Both operands are expanded to the output shape, so each loop is flat; each
 * gradient is summed back to its operand's shape. The loops are whole-array functions written per
 * op: a per-element callback shared by the four ops is not inlined by V8 and ran 4x slower.
 */
function binary(name: string, forward: Kernel, da: Partial, db: Partial) {
  return (a: Tensor | number, b: Tensor | number): Tensor => {
    const ta = asTensor(a), tb = asTensor(b);
    const shape = broadcastShapes(ta.shape, tb.shape);
    const ad = expandData(ta, shape), bd = expandData(tb, shape);
    const y = new Float32Array(ad.length);
    forward(y, ad, bd);
    const out = result(y, shape, [ta, tb], name);
    out.backwardFn = () => {
      const g = out.grad!;
      const push = (t: Tensor, rule: Partial): void => {
        if (!t.requiresGrad) return;
        if (rule === 'pass') return accumulateGrad(t, sumToShape(g, shape, t.shape));
        if (rule === 'negate') {
          const s = sumToShape(g, shape, t.shape);
          const n = new Float32Array(s.length);
          for (let i = 0; i < n.length; i++) n[i] = -s[i]!;
          return accumulateGrad(t, n, true);
        }
        const gt = new Float32Array(g.length);
        rule(gt, g, ad, bd, y);
        accumulateGrad(t, sumToShape(gt, shape, t.shape), true);
      };
      push(ta, da);
      push(tb, db);
    };
    return out;
  };
}

export const add = binary('add', (o, a, b) => { for (let i = 0; i < o.length; i++) o[i] = a[i]! + b[i]!; }, 'pass', 'pass');

export const sub = binary('sub', (o, a, b) => { for (let i = 0; i < o.length; i++) o[i] = a[i]! - b[i]!; }, 'pass', 'negate');

export const mul = binary(
  'mul',
  (o, a, b) => { for (let i = 0; i < o.length; i++) o[i] = a[i]! * b[i]!; },
  (o, g, _a, b) => { for (let i = 0; i < o.length; i++) o[i] = g[i]! * b[i]!; },
  (o, g, a) => { for (let i = 0; i < o.length; i++) o[i] = g[i]! * a[i]!; },
);

/** d(a/b)/db = -a/b^2 = -y/b, from the output y. */
export const div = binary(
  'div',
  (o, a, b) => { for (let i = 0; i < o.length; i++) o[i] = a[i]! / b[i]!; },
  (o, g, _a, b) => { for (let i = 0; i < o.length; i++) o[i] = g[i]! / b[i]!; },
  (o, g, _a, b, y) => { for (let i = 0; i < o.length; i++) o[i] = -g[i]! * y[i]! / b[i]!; },
);

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
