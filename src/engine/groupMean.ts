/** A mean over the leading axis, shared by CLAP's noise (its T samples) and evaluation (T sets of logits). */

/** mean over r of values [groups, rest] -> [rest]. */
export function meanOverGroups(values: Float32Array, groups: number): Float32Array {
  const rest = values.length / groups;
  const out = new Float32Array(rest);
  for (let r = 0; r < groups; r++) for (let i = 0; i < rest; i++) out[i]! += values[r * rest + i]!;
  for (let i = 0; i < rest; i++) out[i]! /= groups;
  return out;
}
