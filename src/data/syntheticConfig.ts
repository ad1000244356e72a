/** Configuration of the synthetic CLIP-like world: sizes, model knobs, presets, validation. */
import { Clap4ClipError } from '../util/errors.js';


export interface SyntheticConfig {
  /** Seed of the single `Rng` every draw comes from (a safe integer). */
  seed: number;
  /** Number of classes C. */
  numClasses: number;
  /** Number of superclasses; classes are spread over them as evenly as possible (1..C).
   *  When not given, round(C / 5) (at least 1): superclasses of 5 as in CIFAR-100. */
  numSuperclasses: number;
  /** Training images per class. */
  trainPerClass: number;
  /** Test images per class. */
  testPerClass: number;
  /** Embedding width D (>= 4). */
  dim: number;
  /** Number of prompt templates P. */
  numTemplates: number;
  /** Views per image: 1 (image only) or 2 (image and its mirror image). */
  views: 1 | 2;
  /** Rank r of the semantic subspace S (capped at D - 3). */
  semanticDim: number;
  /** w: share of the superclass component in a text anchor; sibling anchors have cosine ~w. */
  superclassShare: number;
  /** lambda: norm of the per-class offset of the image class centre from its text anchor. */
  imageOffset: number;
  /** sigma: standard deviation of the within-class image noise along each direction of S. */
  withinClassNoise: number;
  /** Norm of the isotropic nuisance noise eta added to every image (all D coordinates). */
  nuisanceNoise: number;
  /** beta_i: weight of the cross-modal common direction u in image features. */
  sharedImage: number;
  /** beta_t: weight of the cross-modal common direction u in text features. */
  sharedText: number;
  /** gamma: weight of the image-only direction g (the modality gap, image side). */
  imageGap: number;
  /** kappa: weight of the text-only direction h (the modality gap, text side). */
  textGap: number;
  /** Norm of each template offset tau_p (shared by all classes). */
  templateOffset: number;
  /** Norm of each class x template perturbation nu_cp. */
  templateNoise: number;
  /** rho_s: correlation of the within-class noise of the two views (1 = identical). */
  mirrorSemantic: number;
  /** rho_n: correlation of the nuisance noise of the two views (1 = identical). */
  mirrorNuisance: number;
}

/**
 * Knobs of the generative model, shared by the presets. Tuned at the CIFAR-100 shape (seeds 0-2):
 * zero-shot test accuracy ~0.64-0.66, nearest class mean ~0.91, mean cosine of an image with its
 * own class text ~0.30 and with other classes ~0.20, image-image ~0.70, text-text ~0.72, view 0 vs
 * view 1 ~0.95, and ~55 % of zero-shot errors fall inside the true class's superclass.
 */
const MODEL_DEFAULTS = {
  semanticDim: 64,
  superclassShare: 0.7,
  imageOffset: 0.7,
  withinClassNoise: 0.27,
  nuisanceNoise: 1.5,
  sharedImage: 2,
  sharedText: 1,
  imageGap: 4,
  textGap: 1.2,
  templateOffset: 0.35,
  templateNoise: 0.15,
  mirrorSemantic: 0.95,
  mirrorNuisance: 0.5,
} as const;

/** CIFAR-100-shaped default: 100 classes in 20 superclasses of 5, 500/100 images per class, D = 512,
 *  the 18 CIFAR templates of CLIP, 2 views. */
export const SYNTHETIC_DEFAULTS: SyntheticConfig = Object.freeze({
  seed: 0,
  numClasses: 100,
  numSuperclasses: 20,
  trainPerClass: 500,
  testPerClass: 100,
  dim: 512,
  numTemplates: 18,
  views: 2,
  ...MODEL_DEFAULTS,
});

/** Small preset for tests: 10 classes in 5 superclasses of 2, D = 32, 40/10 images per class, P = 4. */
export const SYNTHETIC_TINY: SyntheticConfig = Object.freeze({
  seed: 0,
  numClasses: 10,
  numSuperclasses: 5,
  trainPerClass: 40,
  testPerClass: 10,
  dim: 32,
  numTemplates: 4,
  views: 2,
  ...MODEL_DEFAULTS,
  semanticDim: 16,
});

/** The CLIP CIFAR templates, with "synthetic" inserted so nobody mistakes them for real prompts. */
const BASE_TEMPLATES = [
  'a synthetic photo of a {}.',
  'a blurry synthetic photo of a {}.',
  'a black and white synthetic photo of a {}.',
  'a low contrast synthetic photo of a {}.',
  'a high contrast synthetic photo of a {}.',
  'a bad synthetic photo of a {}.',
  'a good synthetic photo of a {}.',
  'a synthetic photo of a small {}.',
  'a synthetic photo of a big {}.',
  'a synthetic photo of the {}.',
  'a blurry synthetic photo of the {}.',
  'a black and white synthetic photo of the {}.',
  'a low contrast synthetic photo of the {}.',
  'a high contrast synthetic photo of the {}.',
  'a bad synthetic photo of the {}.',
  'a good synthetic photo of the {}.',
  'a synthetic photo of the small {}.',
  'a synthetic photo of the big {}.',
];

/** P distinct templates: the 18 base ones, then numbered variants of them. */
export function syntheticTemplates(p: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < p; i++) {
    const base = BASE_TEMPLATES[i % BASE_TEMPLATES.length]!;
    const round = Math.floor(i / BASE_TEMPLATES.length);
    out.push(round === 0 ? base : `${base} (variant ${round + 1})`);
  }
  return out;
}

/** `class_000`, `class_001`, ... (at least 3 digits, more when C > 1000). */
export function syntheticClassNames(c: number): string[] {
  const width = Math.max(3, String(Math.max(0, c - 1)).length);
  return Array.from({ length: c }, (_, i) => `class_${String(i).padStart(width, '0')}`);
}

/** Largest number of floats one split may hold (a typed array of float32 must stay addressable). */
const MAX_SPLIT_FLOATS = 2 ** 30;

function configError(problem: string): Clap4ClipError {
  return new Clap4ClipError(`synthetic dataset config: ${problem}`);
}

/** Merge `partial` over `SYNTHETIC_DEFAULTS` (numSuperclasses, when missing, follows numClasses) and
 *  check every field; throws a `Clap4ClipError` naming the field. */
export function resolveSyntheticConfig(partial: Partial<SyntheticConfig> = {}): SyntheticConfig {
  if (partial === null || typeof partial !== 'object') throw configError('expected an object');
  const known = new Set(Object.keys(SYNTHETIC_DEFAULTS));
  for (const key of Object.keys(partial)) {
    if (!known.has(key)) throw configError(`unknown field "${key}" (known: ${[...known].join(', ')})`);
  }
  const merged: Record<string, unknown> = { ...SYNTHETIC_DEFAULTS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) merged[k] = v;
  if (partial.numSuperclasses === undefined && typeof merged['numClasses'] === 'number') {
    // Not given: superclasses of 5 classes, as in CIFAR-100 (20 for the default 100 classes).
    merged['numSuperclasses'] = Math.max(1, Math.round(merged['numClasses'] / 5));
  }
  const cfg = merged as unknown as SyntheticConfig;

  const int = (name: keyof SyntheticConfig, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    const v = cfg[name] as unknown;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
      throw configError(`${name} must be an integer ${range}, got ${String(v)}`);
    }
  };
  const real = (name: keyof SyntheticConfig, min: number, max = Infinity): void => {
    const v = cfg[name] as unknown;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max}]`;
      throw configError(`${name} must be a finite number ${range}, got ${String(v)}`);
    }
  };

  if (typeof cfg.seed !== 'number' || !Number.isSafeInteger(cfg.seed)) {
    throw configError(`seed must be a safe integer, got ${String(cfg.seed)}`);
  }
  int('numClasses', 1);
  int('numSuperclasses', 1, cfg.numClasses);
  int('trainPerClass', 1);
  int('testPerClass', 1);
  int('dim', 4);
  int('numTemplates', 1);
  if (cfg.views !== 1 && cfg.views !== 2) throw configError(`views must be 1 or 2, got ${String(cfg.views)}`);
  int('semanticDim', 1);
  real('superclassShare', 0, 1);
  real('imageOffset', 0);
  real('withinClassNoise', 0);
  real('nuisanceNoise', 0);
  real('sharedImage', 0);
  real('sharedText', 0);
  real('imageGap', 0);
  real('textGap', 0);
  real('templateOffset', 0);
  real('templateNoise', 0);
  real('mirrorSemantic', 0, 1);
  real('mirrorNuisance', 0, 1);

  for (const [split, perClass] of [['train', cfg.trainPerClass], ['test', cfg.testPerClass]] as const) {
    const floats = cfg.numClasses * perClass * cfg.views * cfg.dim;
    if (floats > MAX_SPLIT_FLOATS) {
      throw configError(`the ${split} split would hold ${floats} floats (numClasses x ${split}PerClass x views x dim), more than ${MAX_SPLIT_FLOATS}`);
    }
  }
  if (cfg.numClasses * cfg.numTemplates * cfg.dim > MAX_SPLIT_FLOATS) {
    throw configError(`the text features would hold more than ${MAX_SPLIT_FLOATS} floats`);
  }
  return Object.freeze({ ...cfg });
}
