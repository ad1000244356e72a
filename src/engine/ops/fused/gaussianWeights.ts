/**
 * Fused: one pass over [T, C, D] for the reparameterized class weights.
 * Primitive twin: add(h, add(mu, mul(sigma, eps))) with eps as a [T, C, D] tensor (compared in
 * `fused.test.ts`).
 */
import { accumulateGrad, result, shapeToString, Tensor } from '../../tensor.js';

/**
 * Reparameterized samples of Gaussian class weights, w^(r) = h + mu + sigma * eps^(r)
 * (spec section 3: z = mu + sigma * eps, w = h + z), in one pass over [T, C, D].
 * The composition of broadcasts would expand h, mu and sigma to [T, C, D] and sum them back in
 * backward: five extra passes over a million values per CLAP step.
 *
 * @param h adapted text features [C, D] (pass null when the weights are z alone)
 * @param mu means [C, D]
 * @param sigma standard deviations [C, D]
 * @param eps standard normal noise [T, C, D] (no gradient)
 * @returns w [T, C, D]
 */
export function sampleGaussianWeights(h: Tensor | null, mu: Tensor, sigma: Tensor, eps: Float32Array, samples: number): Tensor {
  const cd = mu.size;
  if (sigma.size !== cd || (h && h.size !== cd) || eps.length !== samples * cd) {
    throw new Error(`sampleGaussianWeights: mu ${shapeToString(mu.shape)}, sigma ${shapeToString(sigma.shape)}, eps of ${eps.length} values for T = ${samples}`);
  }
  const md = mu.data, sd = sigma.data, hd = h?.data;
  const w = new Float32Array(samples * cd);
  for (let r = 0; r < samples; r++) {
    const off = r * cd;
    if (hd) for (let i = 0; i < cd; i++) w[off + i] = hd[i]! + md[i]! + sd[i]! * eps[off + i]!;
    else for (let i = 0; i < cd; i++) w[off + i] = md[i]! + sd[i]! * eps[off + i]!;
  }
  const parents = h ? [h, mu, sigma] : [mu, sigma];
  const out = result(w, [samples, ...mu.shape], parents, 'sampleGaussianWeights');
  out.backwardFn = () => {
    const gSum = new Float32Array(cd);
    const gSigma = new Float32Array(cd);
    sampledWeightsBackward(out.grad!, eps, gSum, gSigma);
    if (h) accumulateGrad(h, gSum);
    // h (if any) has copied or added gSum already, so mu may keep the buffer.
    accumulateGrad(mu, gSum, true);
    accumulateGrad(sigma, gSigma, true);
  };
  return out;
}

/** Over the T samples of g [T, C*D]: gSum += sum_r g^(r), gSigma += sum_r g^(r) * eps^(r). */
function sampledWeightsBackward(g: Float32Array, eps: Float32Array, gSum: Float32Array, gSigma: Float32Array): void {
  const cd = gSum.length;
  for (let off = 0; off < g.length; off += cd) {
    for (let i = 0; i < cd; i++) {
      const gi = g[off + i]!;
      gSum[i]! += gi;
      gSigma[i]! += gi * eps[off + i]!;
    }
  }
}
