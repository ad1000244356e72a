/**
 * In-memory form of a features dataset (the on-disk contract of `manifest.json`,
 * `text.safetensors`, `train.safetensors`, `test.safetensors`).
 */

/** `manifest.json` of a features dataset directory. */
export interface FeaturesManifest {
  format: 'clap4clip-features';
  version: 1;
  /** Encoder id or description, e.g. `Xenova/clip-vit-base-patch16` or `synthetic`. */
  encoder: string;
  /** Embedding width D. */
  dim: number;
  /** CLIP's frozen logit scale exp(logit_scale), 100 for OpenAI models. */
  logitScale: number;
  /** Class names in dataset label order (length C). */
  classNames: string[];
  /** Prompt templates with `{}` for the class name (length P). */
  templates: string[];
  /** Free-form extra facts (e.g. `synthetic: true`, generator settings, encoder dtype). */
  extra?: Record<string, unknown>;
}

/** One split: features [N, V, D] (unit norm per view) and labels [N] (dataset labels). */
export interface FeaturesSplit {
  features: Float32Array;
  labels: Int32Array;
  n: number;
  views: number;
  dim: number;
}

/** A whole features dataset. `text` is e[c, p] with shape [C, P, D], unit norm. */
export interface FeaturesDataset {
  manifest: FeaturesManifest;
  text: Float32Array;
  numClasses: number;
  numTemplates: number;
  train: FeaturesSplit;
  test: FeaturesSplit;
}
