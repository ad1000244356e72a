/**
 * Checking a method's own options against its defaults: every key must be one of the defaults', and every value must pass the check the method gives for it. Each
 * method file keeps its defaults, its checks and its error wording; this only walks them.
 */
import { Clap4ClipError } from '../util/errors.js';

/** Returns a problem ("must be ...") or null when the value is acceptable. */
export type OptionCheck = (value: unknown) => string | null;

/** `given` over `defaults`, each given value checked; throws Clap4ClipError naming the method and the key. */
export function checkedOptions<T extends object>(method: string, given: Record<string, unknown>, defaults: Readonly<T>, checks: { [K in keyof T]: OptionCheck }): T {
  const known = Object.keys(defaults);
  for (const [key, value] of Object.entries(given)) {
    if (!known.includes(key)) throw new Clap4ClipError(`${method}: unknown option "${key}": must be one of [${known.join(', ')}]`);
    const problem = checks[key as keyof T](value);
    if (problem !== null) throw new Clap4ClipError(`${method}: option "${key}" ${problem}, got ${JSON.stringify(value)}`);
  }
  return { ...defaults, ...(given as Partial<T>) };
}

/** A finite number in (min, max] or [min, max]. */
export function numberIn(min: number, max: number, openMin = false): OptionCheck {
  return (v) => (typeof v === 'number' && Number.isFinite(v) && (openMin ? v > min : v >= min) && v <= max ? null : `must be a number in ${openMin ? '(' : '['}${min}, ${max}]`);
}

/** An integer in [min, max]. */
export function integerIn(min: number, max: number): OptionCheck {
  return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer in [${min}, ${max}]`);
}

/**
 * The note of a method whose logits are cosines or regression outputs at the authors' scale: at
 * s = 1 the softmax over them is nearly uniform, so ECE, MSP and entropy describe that scale.
 */
export function logitScaleNotes(method: string, logitScale: number): string[] {
  if (logitScale !== 1) return [];
  return [`${method}: logits at the authors' scale s = 1 leave the softmax close to uniform, so its ECE, MSP and entropy describe that scale, not the method's ranking (option logitScale)`];
}
