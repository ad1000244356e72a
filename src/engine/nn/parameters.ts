/**
 * Parameters without a Module base class (tinygrad's `get_state_dict`, micrograd's `parameters()`):
 * a layer is any object whose fields hold tensors, and the dotted path of a field is the
 * parameter's name (`selfAttn.outProj.weight`), which is also its checkpoint key.
 */
import { Tensor } from '../tensor.js';

/** A trainable tensor: a leaf with `requiresGrad`, optionally named by its dotted path. */
export type Parameter = Tensor;

/** A leaf tensor that requires grad. */
export function parameter(data: Float32Array, shape: readonly number[], name?: string): Parameter {
  const p = new Tensor(data, [...shape], true);
  if (name !== undefined) p.name = name;
  return p;
}

export interface NamedParametersOptions {
  /** Also list tensors with `requiresGrad` false (frozen weights; what a checkpoint needs). */
  includeFrozen?: boolean;
}

/**
 * `[dottedPath, tensor]` for every tensor reachable through `obj`'s own enumerable fields, in
 * field order (declaration order for class fields, insertion order for plain objects); array
 * elements are named by index (`layers.0.weight`). Like torch's `named_parameters`, a tensor
 * reachable twice is listed once, under its first path, and cycles are not followed.
 * Typed arrays, functions and `null` fields are skipped.
 */
export function namedParameters(obj: unknown, prefix = '', opts: NamedParametersOptions = {}): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const seen = new Set<unknown>();
  const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);
  const visit = (value: unknown, path: string): void => {
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (value instanceof Tensor) {
      if (value.requiresGrad || opts.includeFrozen) out.push([path, value]);
      return;
    }
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => visit(v, join(path, String(i))));
      return;
    }
    for (const key of Object.keys(value)) visit((value as Record<string, unknown>)[key], join(path, key));
  };
  visit(obj, prefix);
  return out;
}

/** The trainable tensors of `obj`, in `namedParameters` order. */
export function parameters(obj: unknown): Tensor[] {
  return namedParameters(obj).map(([, t]) => t);
}

/** Clears the gradients of `obj`'s trainable tensors (to `null`, so an unused one is skipped by SGD). */
export function zeroGrad(obj: unknown): void {
  for (const p of parameters(obj)) p.zeroGrad();
}

/** Number of scalar values in `obj`'s trainable tensors. */
export function countParameters(obj: unknown, opts: NamedParametersOptions = {}): number {
  return namedParameters(obj, '', opts).reduce((n, [, t]) => n + t.size, 0);
}

/** Stamps every tensor of `obj` (frozen ones included) with its dotted path as `name`; returns `obj`. */
export function nameParameters<T>(obj: T, prefix = ''): T {
  for (const [path, t] of namedParameters(obj, prefix, { includeFrozen: true })) t.name = path;
  return obj;
}
