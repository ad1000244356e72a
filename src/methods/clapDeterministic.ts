/**
 * The deterministic ablation of CLAP (the paper's "w/o probabilistic" variant): the same VGA,
 * task encoders with language-aware init and LASP, but no sampling.
 *
 *     mu_i = A_i h_i + a_i          w = h + mu          logits = logitScale * f w^T   [1, B, C]
 *     L = CE + beta * sum_{i in S} LASP_i(e, mu_i)
 *
 * Choices, where the probabilistic model has no counterpart:
 * - Only the mu map exists (weight [D, D]); there is no sigma to learn.
 * - T = 1 (one "sample", z = mu): predictions have `samples` = 1.
 * - No KL term: with sigma gone, KL(N(mu, sigma) || N(0, I)) would reduce to an L2 penalty on mu
 *   plus a constant, which is a different regularizer rather than an ablation of the
 *   distribution; leaving it out isolates the effect of sampling.
 * - LASP uses mu in place of the mean of the samples.
 * The hierarchical encoder and non-standard priors need sampling and are rejected.
 */
import { Clap4ClipError } from '../util/errors.js';
import type { MethodSetup } from './method.js';
import { buildClapMethod, type ClapMethod } from './clap/clap.js';
import { validateClapConfig, type ClapConfigInput } from './clap/config.js';

export function createClapDeterministic(setup: Pick<MethodSetup, 'dim' | 'logitScale'>, config: ClapConfigInput = {}): ClapMethod {
  const resolved = validateClapConfig(config);
  if (resolved.hierarchical.enabled) throw new Clap4ClipError('clap-deterministic: hierarchical.enabled needs sampling; leave it off');
  if (resolved.prior.kind !== 'standard') throw new Clap4ClipError(`clap-deterministic: prior "${resolved.prior.kind}" has no KL term to act on; leave it "standard"`);
  return buildClapMethod('clap-deterministic', setup, { ...resolved, samples: 1 }, true);
}
