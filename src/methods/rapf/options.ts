/**
 * RAPF's options: the authors' three configurations (linlany/RAPF `configs/class/*.yaml`) as
 * presets, each key overridable. Every value below is read from those files and from `main.py`
 * `run_class_incremental` (the constants it hard-codes).
 *
 * | option | cifar100 | imagenet-r | cub200 | from |
 * | --- | --- | --- | --- | --- |
 * | batch size (the run's `--batch-size`) | 100 | 64 | 32 | yaml `train_batch_size` |
 * | beta | 2 | 1 | 1 | yaml `beta` |
 * | classesPerBatch k | 2 | 5 | 10 | `main.py` `list_for_one_batch` (by `cfg.dataset`; 4 for CIFAR-100 in steps of 5) |
 * | threshold theta | 0.55 | 0.65 | 0.65 | yaml `threshold` |
 * | mixBias b | 0.6 | 0.7 | 0.8 | yaml `mix_bias` |
 * | shrinkage | off | on | on | yaml `shrinkage` |
 * | epochs, lr, milestones, gamma | 15, 1e-3, [4, 10], 0.1 | same | same | yaml `epochs`, `lr`, `milestones`; `MultiStepLR(gamma=0.1)` |
 * | pseudoPerClass, hardPerPair | 10, 20 (x beta) | same | same | `main.py` `int(10*cfg.beta)`, `int(20*cfg.beta)` |
 * | margin | 0.1 | 0.1 | 0.1 | `main.py` hinge `+ 0.1` (CUB's yaml `margin: 0.2` is never read) |
 * | jitter | 1e-6 (authors 1e-4 on raw features) | same | same | `models.py` `analyze_mean_cov` |
 *
 * The batch size belongs to the run (one per run, default 32): pass `--batch-size 100` (64, 32) for
 * the authors' setting; a preset cannot change it.
 */
import { Clap4ClipError } from '../../util/errors.js';

export const RAPF_PRESETS = ['cifar100', 'imagenet-r', 'cub200'] as const;
export type RapfPreset = (typeof RAPF_PRESETS)[number];

export interface RapfOptions {
  preset: RapfPreset;
  /** Scales the pseudo-features per class (10 beta) and per hard pair (20 beta). */
  beta: number;
  /** Old classes whose pseudo-features join each batch's CE (k). */
  classesPerBatch: number;
  /** Hard pair (o, n) when |tt_o - tt_n|_2 < threshold. */
  threshold: number;
  /** b in the fusion mask min(1, Delta / max Delta + b). */
  mixBias: number;
  /** Sample from S + d I + o (11^T - I) instead of S. */
  shrinkage: boolean;
  /** Added to every class covariance's diagonal. */
  jitter: number;
  epochs: number;
  lr: number;
  milestones: number[];
  gamma: number;
  /** Pseudo-features per old class in the CE, before x beta. */
  pseudoPerClass: number;
  /** Samples per hard pair in the hinge loss, before x beta. */
  hardPerPair: number;
  margin: number;
  /**
   * Which template p of the cache's e[c, p] is RAPF's single "a good photo of a {}.": an index, or
   * null for the normalized mean over templates (the synthetic world's and any cache's fallback).
   * In the project's CIFAR-100 list (`src/data/datasets/templates.ts`) it is index 6.
   */
  templateIndex: number | null;
}

const COMMON = { epochs: 15, lr: 1e-3, milestones: [4, 10], gamma: 0.1, pseudoPerClass: 10, hardPerPair: 20, margin: 0.1, jitter: 1e-6, templateIndex: null };

export const RAPF_PRESET_VALUES: Readonly<Record<RapfPreset, RapfOptions>> = Object.freeze({
  cifar100: { ...COMMON, preset: 'cifar100', beta: 2, classesPerBatch: 2, threshold: 0.55, mixBias: 0.6, shrinkage: false },
  'imagenet-r': { ...COMMON, preset: 'imagenet-r', beta: 1, classesPerBatch: 5, threshold: 0.65, mixBias: 0.7, shrinkage: true },
  cub200: { ...COMMON, preset: 'cub200', beta: 1, classesPerBatch: 10, threshold: 0.65, mixBias: 0.8, shrinkage: true },
});

function fail(message: string): never {
  throw new Clap4ClipError(`rapf: ${message}`);
}

function number(key: string, v: unknown, min: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    fail(`option "${key}" must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Checks RAPF's options: a known preset, known keys, each value in range. */
export function rapfOptions(given: Record<string, unknown>): RapfOptions {
  const preset = given['preset'] ?? 'cifar100';
  if (!RAPF_PRESETS.includes(preset as RapfPreset)) fail(`option "preset" must be one of [${RAPF_PRESETS.join(', ')}], got ${JSON.stringify(preset)}`);
  const o: RapfOptions = { ...RAPF_PRESET_VALUES[preset as RapfPreset], milestones: [...RAPF_PRESET_VALUES[preset as RapfPreset].milestones] };
  const known = Object.keys(o);
  for (const [k, v] of Object.entries(given)) {
    switch (k) {
      case 'preset': break;
      case 'beta': case 'threshold': case 'mixBias': case 'jitter': case 'lr': case 'margin': o[k] = number(k, v, 0); break;
      case 'gamma': o.gamma = number(k, v, 0); break;
      case 'classesPerBatch': case 'epochs': case 'pseudoPerClass': case 'hardPerPair': o[k] = number(k, v, 0, true); break;
      case 'shrinkage':
        if (typeof v !== 'boolean') fail(`option "shrinkage" must be true or false, got ${JSON.stringify(v)}`);
        o.shrinkage = v;
        break;
      case 'milestones':
        if (!Array.isArray(v)) fail(`option "milestones" must be an array of epochs, got ${JSON.stringify(v)}`);
        o.milestones = v.map((e) => number('milestones', e, 0, true));
        break;
      case 'templateIndex':
        o.templateIndex = v === null ? null : number(k, v, 0, true);
        break;
      default: fail(`unknown option "${k}": must be one of [${known.join(', ')}]`);
    }
  }
  return o;
}
