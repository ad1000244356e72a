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
      let gHandedDown = false; // g itself may become one operand's gradient (see accumulateGrad)
      const push = (t: Tensor, rule: Partial): void => {
        if (!t.requiresGrad) return;
        if (rule === 'pass') {
          const s = sumToShape(g, shape, t.shape);
          const own = s !== g || !gHandedDown;
          if (s === g) gHandedDown = true;
          return accumulateGrad(t, s, own);
        }
        if (rule === 'negate') return accumulateGrad(t, scaled(sumToShape(g, shape, t.shape), -1), true);
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

/** A unary op's loop: out[i] from x[i]. */
type UnaryKernel = (out: Float32Array, x: Float32Array) => void;
/** Its gradient loop: gx[i] from g[i] and the input x[i] or the output y[i] (whichever is cheaper). */
type UnaryGradient = (gx: Float32Array, g: Float32Array, x: Float32Array, y: Float32Array) => void;

/**
 * Builds a unary op from its forward loop and its gradient loop. Each op writes its own loops (as
 * `binary`): one loop calling a per-op f(x) is shared by all ops, so V8 neither inlines f nor
 * keeps its doubles unboxed.
 */
function unary(name: string, forward: UnaryKernel, gradient: UnaryGradient) {
  return (x: Tensor): Tensor => {
    const xd = x.data;
    const o = new Float32Array(xd.length);
    forward(o, xd);
    const out = result(o, x.shape, [x], name);
    out.backwardFn = () => {
      const g = out.grad!;
      gradient(g, g, xd, o); // in place: each loop reads g[i] before writing index i
      accumulateGrad(x, g, true);
    };
    return out;
  };
}

export const neg = unary('neg',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = -x[i]!; },
  (gx, g) => { for (let i = 0; i < gx.length; i++) gx[i] = -g[i]!; });
export const exp = unary('exp',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = Math.exp(x[i]!); },
  (gx, g, _x, y) => { for (let i = 0; i < gx.length; i++) gx[i] = g[i]! * y[i]!; });
export const log = unary('log',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = Math.log(x[i]!); },
  (gx, g, x) => { for (let i = 0; i < gx.length; i++) gx[i] = g[i]! / x[i]!; });
export const sqrt = unary('sqrt',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = Math.sqrt(x[i]!); },
  (gx, g, _x, y) => { for (let i = 0; i < gx.length; i++) gx[i] = 0.5 * g[i]! / y[i]!; });
export const square = unary('square',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = x[i]! * x[i]!; },
  (gx, g, x) => { for (let i = 0; i < gx.length; i++) gx[i] = 2 * g[i]! * x[i]!; });
export const relu = unary('relu',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = x[i]! > 0 ? x[i]! : 0; },
  (gx, g, x) => { for (let i = 0; i < gx.length; i++) gx[i] = x[i]! > 0 ? g[i]! : 0; });
export const tanh = unary('tanh',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = Math.tanh(x[i]!); },
  (gx, g, _x, y) => { for (let i = 0; i < gx.length; i++) gx[i] = g[i]! * (1 - y[i]! * y[i]!); });
export const sigmoid = unary('sigmoid',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = 1 / (1 + Math.exp(-x[i]!)); },
  (gx, g, _x, y) => { for (let i = 0; i < gx.length; i++) gx[i] = g[i]! * y[i]! * (1 - y[i]!); });

/** softplus(x) = log(1 + e^x), PyTorch's threshold 20 (linear above it). */
export const softplus = unary('softplus',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = x[i]! > 20 ? x[i]! : Math.log1p(Math.exp(x[i]!)); },
  (gx, g, x) => { for (let i = 0; i < gx.length; i++) gx[i] = x[i]! > 20 ? g[i]! : g[i]! / (1 + Math.exp(-x[i]!)); });

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Exact GELU, x * Phi(x) with the erf form (PyTorch's default `approximate='none'`). */
export const gelu = unary('gelu',
  (o, x) => { for (let i = 0; i < o.length; i++) o[i] = 0.5 * x[i]! * (1 + erf(x[i]! * INV_SQRT2)); },
  (gx, g, x) => {
    for (let i = 0; i < gx.length; i++) {
      const v = x[i]!;
      gx[i] = g[i]! * (0.5 * (1 + erf(v * INV_SQRT2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
    }
  });

/** a *= b elementwise, in place (on an op's output gradient, see accumulateGrad); returns a. */
export function multiplyInPlace(a: Float32Array, b: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i]! *= b[i]!;
  return a;
}

/** a *= c elementwise, in place (on an op's output gradient, see accumulateGrad); returns a. */
function scaleInPlace(a: Float32Array, c: number): Float32Array {
  for (let i = 0; i < a.length; i++) a[i]! *= c;
  return a;
}

/** a * c, elementwise, in a new array. */
export function scaled(a: Float32Array, c: number): Float32Array {
  const o = new Float32Array(a.length);
  for (let i = 0; i < o.length; i++) o[i] = a[i]! * c;
  return o;
}

export function addScalar(x: Tensor, c: number): Tensor {
  return add(x, c);
}

export function mulScalar(x: Tensor, c: number): Tensor {
  const out = result(scaled(x.data, c), x.shape, [x], 'mulScalar');
  out.backwardFn = () => accumulateGrad(x, scaleInPlace(out.grad!, c), true);
  return out;
}

export function powScalar(x: Tensor, p: number): Tensor {
  const xd = x.data;
  const o = new Float32Array(xd.length);
  for (let i = 0; i < o.length; i++) o[i] = xd[i]! ** p;
  const out = result(o, x.shape, [x], `pow${p}`);
  out.backwardFn = () => accumulateGrad(x, powScalarBackward(out.grad!, xd, p), true);
  return out;
}

/** d(x^p)/dx = p x^(p-1). */
function powScalarBackward(g: Float32Array, x: Float32Array, p: number): Float32Array {
  const gx = new Float32Array(g.length);
  for (let i = 0; i < gx.length; i++) gx[i] = g[i]! * p * x[i]! ** (p - 1);
  return gx;
}
