/** CCA-CL's method options (`--method-options`), with the reference's values as defaults (ccaCl.ts). */
import { Clap4ClipError } from '../../util/errors.js';

export const CCA_CL_SOLVERS = ['low-rank', 'eigh'] as const;

export interface CcaClOptions {
  /** Random Fourier features D'. */
  rffDim: number;
  /** RBF bandwidth: W ~ N(0, 1 / sigma^2). */
  sigma: number;
  /** Rows per shuffled batch within which the statistics are centred. */
  batchSize: number;
  /** Jitter on Szz and Suu and floor of their eigenvalues. */
  ridge: number;
  /** Share of the squared canonical correlations kept, (0, 1]. */
  energy: number;
  /** Temperature of the logits. */
  tau: number;
  /** "low-rank" (one Cholesky, exact) or "eigh" (the reference's three D' x D' eigendecompositions; small D' only). */
  solver: (typeof CCA_CL_SOLVERS)[number];
  /**
   * Indices of the dataset's templates averaged into t_c (null: all). The reference averages a
   * subset for ImageNet-R (`CCA_CL_IMAGENET_R_TEMPLATES`, 7 of CLIP's 80) and two bird templates
   * for CUB; a method sees template features, not strings, so the caller picks them by index.
   */
  templates: number[] | null;
}

/** The 7 templates of `utils/templates.json` "imagenetr" (all in CLIP's ImageNet list). */
export const CCA_CL_IMAGENET_R_TEMPLATES: readonly string[] = Object.freeze([
  'itap of a {}.', 'a bad photo of the {}.', 'a origami {}.', 'a photo of the large {}.', 'a {} in a video game.', 'art of the {}.', 'a photo of the small {}.',
]);

export const CCA_CL_DEFAULTS: Readonly<CcaClOptions> = Object.freeze({
  rffDim: 6144,
  sigma: 1,
  batchSize: 64,
  ridge: 1e-4,
  energy: 0.999,
  tau: 0.07,
  solver: 'low-rank',
  templates: null,
});

type Check = (v: unknown) => string | null;
const integer = (min: number, max: number): Check => (v) => (Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? null : `an integer in [${min}, ${max}]`);
const positive: Check = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a finite number > 0');
const CHECKS: Record<keyof CcaClOptions, Check> = {
  rffDim: integer(1, 16384),
  sigma: positive,
  batchSize: integer(1, 1 << 20),
  ridge: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a finite number >= 0'),
  energy: (v) => (typeof v === 'number' && v > 0 && v <= 1 ? null : 'a number in (0, 1]'),
  tau: positive,
  solver: (v) => (typeof v === 'string' && (CCA_CL_SOLVERS as readonly string[]).includes(v) ? null : `one of [${CCA_CL_SOLVERS.join(', ')}]`),
  templates: (v) => (v === null || (Array.isArray(v) && v.length > 0 && v.every((i) => Number.isInteger(i) && i >= 0) && new Set(v).size === v.length) ? null : 'null or a non-empty list of distinct template indices >= 0'),
};

/** Checks cca-cl's own options: known keys, each in its range. */
export function ccaClOptions(given: Record<string, unknown>): CcaClOptions {
  const known = Object.keys(CHECKS);
  for (const [k, v] of Object.entries(given)) {
    const check = (CHECKS as Record<string, Check>)[k];
    if (check === undefined) throw new Clap4ClipError(`cca-cl: unknown option "${k}": must be one of [${known.join(', ')}]`);
    const want = check(v);
    if (want !== null) throw new Clap4ClipError(`cca-cl: option "${k}" must be ${want}, got ${JSON.stringify(v)}`);
  }
  return { ...CCA_CL_DEFAULTS, ...(structuredClone(given) as Partial<CcaClOptions>) };
}
