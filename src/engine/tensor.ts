/**
 * The autodiff core, in micrograd's pattern: every operation builds its output tensor and, right
 * below, the closure that pushes the output's gradient into its inputs (`+=` accumulation).
 * `backward()` sorts the graph once and runs the closures in reverse order.
 *
 * Data is row-major Float32Array. Operations never mutate their inputs, so a reshape may share
 * its input's buffer.
 */

let gradEnabled = true;

/** Runs `fn` without recording a tape (evaluation, parameter updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Plain-SGD learning rates of the parameters that the running `backward` updates in place. */
let inBackwardRates: ReadonlyMap<Tensor, number> | null = null;

/**
 * The learning rate with which an op's backward may update parameter `p` in place instead of
 * accumulating its gradient (`SGD.backwardStep`), or undefined. Set only for a parameter whose
 * gradient comes from exactly one op, so the update is the whole of its plain SGD step.
 */
export function inBackwardRate(p: Tensor): number | undefined {
  return inBackwardRates?.get(p);
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  /** Inputs this tensor was computed from (empty for leaves and untracked results). */
  parents: Tensor[];
  /** Pushes `this.grad` into the parents' gradients. */
  backwardFn: (() => void) | null = null;
  readonly op: string;
  /** Optional name (parameters carry their dotted path). */
  name?: string;

  constructor(data: Float32Array, shape: readonly number[], requiresGrad = false, parents: Tensor[] = [], op = 'leaf') {
    if (data.length !== sizeOf(shape)) {
      throw new Error(`Tensor: data has ${data.length} values but shape ${shapeToString(shape)} needs ${sizeOf(shape)}`);
    }
    this.data = data;
    this.shape = shape;
    this.requiresGrad = requiresGrad;
    this.parents = parents;
    this.op = op;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  static from(values: ArrayLike<number>, shape?: readonly number[], requiresGrad = false): Tensor {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    return new Tensor(data, shape ?? [data.length], requiresGrad);
  }

  static zeros(shape: readonly number[], requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)), [...shape], requiresGrad);
  }

  static full(shape: readonly number[], value: number, requiresGrad = false): Tensor {
    return new Tensor(new Float32Array(sizeOf(shape)).fill(value), [...shape], requiresGrad);
  }

  static scalar(value: number, requiresGrad = false): Tensor {
    return new Tensor(Float32Array.of(value), [], requiresGrad);
  }

  item(): number {
    if (this.size !== 1) throw new Error(`item(): tensor of shape ${shapeToString(this.shape)} is not a scalar`);
    return this.data[0]!;
  }

  /** A new leaf sharing no tape with this tensor. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  zeroGrad(): void {
    this.grad = null;
  }

  /**
   * Back-propagates from this tensor (a scalar unless `seed` gives the output gradient).
   * Afterwards the tape is cut so intermediate buffers can be collected; leaves keep `.grad`.
   */
  backward(seed?: Float32Array, opts: BackwardOptions = {}): void {
    if (!this.requiresGrad) throw new Error('backward(): tensor does not require grad (no trainable input, or computed under noGrad)');
    if (!seed && this.size !== 1) throw new Error(`backward(): needs a seed gradient for non-scalar shape ${shapeToString(this.shape)}`);
    const order = topologicalOrder(this);
    accumulateGrad(this, seed ?? Float32Array.of(1));
    inBackwardRates = opts.sgdRates ? singleConsumerRates(order, opts.sgdRates) : null;
    try {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i]!;
        if (t.backwardFn && t.grad) t.backwardFn();
      }
    } finally {
      inBackwardRates = null;
    }
    for (const t of order) {
      if (t.parents.length > 0) {
        t.parents = [];
        t.backwardFn = null;
        t.grad = null;
      }
    }
  }
}

export interface BackwardOptions {
  /**
   * Parameters to update in place with plain SGD (p -= lr * dL/dp) during the pass, by learning
   * rate. Ops that can (linear's weight and bias) fold the update into the gradient product; every
   * other parameter of the map gets its `.grad` as usual and is left to the optimizer.
   */
  sgdRates?: ReadonlyMap<Tensor, number>;
}

/**
 * The entries of `rates` whose tensor, a leaf without a pending gradient, feeds exactly one op;
 * and for a leaf used only through slices that view disjoint rows of its buffer, each used by one
 * op (cross-attention's q rows and k/v rows of one in-projection), those slices: each one's op
 * updates its own rows in place.
 */
function singleConsumerRates(order: readonly Tensor[], rates: ReadonlyMap<Tensor, number>): Map<Tensor, number> {
  const consumers = new Map<Tensor, Tensor[]>();
  for (const t of order) {
    for (const p of t.parents) {
      const list = consumers.get(p);
      if (list) list.push(t);
      else consumers.set(p, [t]);
    }
  }
  const out = new Map<Tensor, number>();
  for (const [p, lr] of rates) {
    if (p.grad !== null || p.parents.length > 0) continue;
    const uses = consumers.get(p) ?? [];
    if (uses.length === 1) out.set(p, lr);
    else if (uses.length > 1 && areDisjointRowViews(p, uses, consumers)) for (const c of uses) out.set(c, lr);
  }
  return out;
}

/** Whether each of `slices` is a slice viewing `p`'s buffer (no copy), used by one op, over disjoint ranges. */
function areDisjointRowViews(p: Tensor, slices: readonly Tensor[], consumers: ReadonlyMap<Tensor, Tensor[]>): boolean {
  const ranges: [number, number][] = [];
  for (const c of slices) {
    if (c.op !== 'slice' || c.data.buffer !== p.data.buffer || consumers.get(c)?.length !== 1) return false;
    ranges.push([c.data.byteOffset, c.data.byteOffset + c.data.byteLength]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  return ranges.every((r, i) => i === 0 || ranges[i - 1]![1] <= r[0]);
}

/** Depth-first post-order without recursion (graphs can be thousands of nodes deep). */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, next] = top;
    if (next < t.parents.length) {
      top[1] = next + 1;
      const p = t.parents[next]!;
      if (p.requiresGrad && !visited.has(p)) {
        visited.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/**
 * Adds `g` into `t.grad`. With `owned`, the caller hands over a buffer that may become the
 * gradient itself (saves a copy on the common single-consumer path): a fresh one, or the op's own
 * output gradient, which is dead once the op's backwardFn has run (every contribution to it came
 * before, in reverse topological order, and `backward` drops it afterwards), so a backwardFn may
 * also compute its input's gradient over it in place. Only one input may be handed the buffer.
 */
export function accumulateGrad(t: Tensor, g: Float32Array, owned = false): void {
  if (!t.requiresGrad) return;
  if (g.length !== t.size) throw new Error(`gradient of length ${g.length} for tensor of shape ${shapeToString(t.shape)} (op ${t.op})`);
  if (t.grad === null) {
    t.grad = owned ? g : g.slice();
    return;
  }
  const tg = t.grad;
  for (let i = 0; i < tg.length; i++) tg[i]! += g[i]!;
}

/**
 * Creates an operation's output. The tape is recorded only when gradients are enabled and some
 * input needs them; `backward` is then attached by the caller.
 */
export function result(data: Float32Array, shape: readonly number[], parents: Tensor[], op: string): Tensor {
  const track = gradEnabled && parents.some((p) => p.requiresGrad);
  return new Tensor(data, shape, track, track ? parents : [], op);
}
