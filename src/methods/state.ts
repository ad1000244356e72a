/**
 * Saving and loading a method's tensors by name: the checks every `loadState` makes (no tensor
 * missing, none extra, every shape equal) and the copy, in one place.
 */
import { Tensor } from '../engine/tensor.js';
import { DataError } from '../util/errors.js';
import type { MethodState, TensorSource } from './method.js';

/** Copies of `named` (later training cannot change a saved state). */
export function copiedTensors(named: readonly [string, Tensor][]): MethodState['tensors'] {
  return named.map(([name, t]) => [name, new Tensor(t.data.slice(), [...t.shape])]);
}

/** The saved tensors as a name -> tensor map (what `loadState` receives). */
export function tensorSource(tensors: readonly [string, Tensor][]): TensorSource {
  return new Map(tensors.map(([name, t]) => [name, { shape: t.shape, data: t.data }]));
}

/**
 * Copies `saved` into the method's own tensors in place (optimizers keep pointing at them),
 * after checking that both hold the same names with the same shapes.
 */
export function loadTensorsInto(own: readonly [string, Tensor][], saved: TensorSource, source: string, method: string): void {
  const ownNames = new Set(own.map(([n]) => n));
  for (const name of saved.keys()) {
    if (!ownNames.has(name)) throw new DataError(source, `holds tensor "${name}" that ${method} does not have (different method options?)`);
  }
  for (const [name, t] of own) {
    const s = saved.get(name);
    if (s === undefined) throw new DataError(source, `tensor "${name}" of ${method} is missing (different method options?)`);
    if (JSON.stringify(s.shape) !== JSON.stringify(t.shape)) throw new DataError(source, `tensor "${name}" has shape ${JSON.stringify(s.shape)}, ${method} has ${JSON.stringify(t.shape)} (different D or options?)`);
  }
  for (const [name, t] of own) t.data.set(saved.get(name)!.data);
}

/** A saved tensor that must exist, with its shape checked (method buffers such as text features). */
export function savedTensor(saved: TensorSource, name: string, shape: readonly number[], source: string, method: string): Float32Array {
  const s = saved.get(name);
  if (s === undefined) throw new DataError(source, `tensor "${name}" of ${method} is missing`);
  if (JSON.stringify(s.shape) !== JSON.stringify(shape)) throw new DataError(source, `tensor "${name}" has shape ${JSON.stringify(s.shape)}, ${method} expects ${JSON.stringify(shape)}`);
  return s.data;
}

/** Tasks from a state's metadata, checked (contiguous, ascending). */
export function savedTasks(meta: Record<string, unknown>, source: string, method: string): { index: number; classStart: number; classEnd: number }[] {
  const tasks = meta['tasks'];
  if (!Array.isArray(tasks)) throw new DataError(source, `${method} state: "tasks" must be an array`);
  let end = 0;
  return tasks.map((t, i) => {
    const ok = t !== null && typeof t === 'object' && t.index === i && t.classStart === end && Number.isInteger(t.classEnd) && t.classEnd > end;
    if (!ok) throw new DataError(source, `${method} state: task ${i} ${JSON.stringify(t)} does not follow the task ending at class ${end}`);
    end = t.classEnd as number;
    return { index: i, classStart: t.classStart as number, classEnd: end };
  });
}
