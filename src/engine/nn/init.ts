/**
 * PyTorch's default initializations (`torch.nn.init`), drawn from an explicit seeded `Rng`.
 * The bounds are torch's formulas exactly; the draws are not torch's (no RNG parity), but a seed
 * always gives the same values. Every function fills row-major in one pass, one draw per value.
 */
import type { Rng } from '../random.js';
import { parameter, type Parameter } from './parameters.js';

/** `calculate_gain('leaky_relu', a)` = sqrt(2 / (1 + a^2)). */
export function leakyReluGain(a: number): number {
  return Math.sqrt(2 / (1 + a * a));
}

/** Bound of `xavier_uniform_`: gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniformBound(fanIn: number, fanOut: number, gain = 1): number {
  return gain * Math.sqrt(6 / (fanIn + fanOut));
}

/**
 * Bound of `kaiming_uniform_(w, a)` in mode fan_in with the leaky-ReLU gain:
 * gain * sqrt(3 / fan_in). With a = sqrt(5) (nn.Linear) this is 1 / sqrt(fan_in).
 */
export function kaimingUniformBound(fanIn: number, a = Math.sqrt(5)): number {
  return leakyReluGain(a) * Math.sqrt(3 / fanIn);
}

/** U(-bound, bound) values for a tensor of `shape`. */
export function uniformParameter(shape: readonly number[], bound: number, rng: Rng): Parameter {
  const data = new Float32Array(shape.reduce((n, d) => n * d, 1));
  rng.fillUniform(data, -bound, bound);
  return parameter(data, shape);
}

/**
 * `nn.init.xavier_uniform_` on a weight [out, in]: fan_in = in, fan_out = out.
 * @param shape [out, in]
 */
export function xavierUniform(shape: readonly [number, number], rng: Rng, gain = 1): Parameter {
  const [out, inF] = shape;
  return uniformParameter(shape, xavierUniformBound(inF, out, gain), rng);
}

/**
 * nn.Linear's weight init, `kaiming_uniform_(w, a = sqrt(5))`: U(+-1/sqrt(in)) up to rounding.
 * @returns weight [out, in]
 */
export function kaimingUniformLinear(out: number, inF: number, rng: Rng): Parameter {
  return uniformParameter([out, inF], kaimingUniformBound(inF, Math.sqrt(5)), rng);
}

/**
 * nn.Linear's bias init: U(+-1/sqrt(fan_in)) (0 when fan_in = 0, as torch).
 * @returns bias [out]
 */
export function linearBiasUniform(out: number, fanIn: number, rng: Rng): Parameter {
  return uniformParameter([out], fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0, rng);
}
