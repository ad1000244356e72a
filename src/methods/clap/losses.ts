/**
 * CLAP's regularizers (spec section 4): the KL term, language-aware past-task regularization
 * (LASP), the ortho loss and the global-mean distillation of the hierarchical variant.
 */
import { crossEntropy, klDiagGaussian, matmul, mean, mulScalar, square, sub } from '../../engine/ops/index.js';
import { Tensor } from '../../engine/tensor.js';

/** A diagonal Gaussian prior; broadcastable against the posterior's mu and sigma. */
export interface GaussianPrior {
  mu: Tensor;
  sigma: Tensor;
}

/**
 * weight * mean over rows (classes, and global samples in the hierarchical variant) of
 * sum_d KL(N(mu, sigma) || prior) (spec: 0.001 * mean over the n_i classes of per-class sums).
 * @param mu [..., n, D]
 * @param sigma [..., n, D]
 * @param prior N(0, I) when omitted
 * @returns scalar
 */
export function klTerm(mu: Tensor, sigma: Tensor, prior?: GaussianPrior, weight = 0.001): Tensor {
  const perRow = prior ? klDiagGaussian(mu, sigma, prior.mu, prior.sigma) : klDiagGaussian(mu, sigma);
  return mulScalar(mean(perRow), weight);
}

function identityTargets(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

/**
 * LASP from means: the similarity S[c, c'] = mean_r mean_p e[c, p] . z^(r)[c'] is bilinear, so it
 * equals Ebar[c] . zbar[c'] with Ebar = mean_p e and zbar = mean_r z: one [n, D] x [D, n] product
 * instead of T * P of them.
 * @param ebar mean template features of the task's classes [n, D] (constant)
 * @param zbar mean sampled offsets of the task's classes [n, D]
 * @returns CE(S, identity targets), mean over rows (unweighted: beta is applied by the caller)
 */
export function laspFromMeans(ebar: Tensor, zbar: Tensor): Tensor {
  const s = matmul(ebar, zbar, { transB: true });
  return crossEntropy(s, identityTargets(ebar.shape[0]!));
}

/**
 * LASP_i in the spec's shapes: S[c, c'] = mean_r mean_p e[c, p] . z^(r)[c'], CE(S, identity).
 * @param ePerTemplate per-template text features of the task's classes [n, P, D] (constant)
 * @param z sampled offsets [T, n, D]
 * @returns scalar (unweighted)
 */
export function laspTerm(ePerTemplate: Tensor | Float32Array, z: Tensor, numTemplates?: number): Tensor {
  const [, n, d] = z.shape as [number, number, number];
  const e = ePerTemplate instanceof Tensor ? ePerTemplate.data : ePerTemplate;
  const p = ePerTemplate instanceof Tensor ? ePerTemplate.shape[1]! : numTemplates ?? e.length / (n * d);
  if (e.length !== n * p * d) throw new Error(`laspTerm: ${e.length} template values for [${n}, ${p}, ${d}]`);
  const ebar = new Float32Array(n * d);
  for (let c = 0; c < n; c++) {
    for (let t = 0; t < p; t++) for (let j = 0; j < d; j++) ebar[c * d + j]! += e[(c * p + t) * d + j]! / p;
  }
  return laspFromMeans(new Tensor(ebar, [n, d]), mean(z, [0]));
}

/**
 * Ortho loss (reference `--ortho-loss`): the per-class mean offsets of all tasks should be
 * distinguishable from each other: CE(M M^T, identity), M [C, D] (not normalized, as the reference).
 * @param zbar per-class mean offsets [C, D]
 * @returns scalar (unweighted)
 */
export function orthoTerm(zbar: Tensor): Tensor {
  return crossEntropy(matmul(zbar, zbar, { transB: true }), identityTargets(zbar.shape[0]!));
}

/**
 * Distillation of the hierarchical variant: MSE (mean over all elements, `F.mse_loss`) between
 * the previous model's global means (detached) and the current global means of the old classes.
 * @param mu current global means of the old classes [C_old, D]
 * @param previousMu the previous model's global means [C_old, D] (constant)
 * @returns scalar (unweighted)
 */
export function distillTerm(mu: Tensor, previousMu: Tensor): Tensor {
  return mean(square(sub(mu, previousMu)));
}
