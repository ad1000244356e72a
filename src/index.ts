/**
 * clap4clip: continual learning for CLIP on frozen features (CLAP4CLIP, Jha et al., NeurIPS 2024).
 * These grouped exports are the whole public API; everything else is internal.
 *
 * @example An application that keeps learning (see `examples/incremental.ts` for a full program).
 * ```ts
 * import { createClassifier } from 'clap4clip';
 * const clf = await createClassifier({ encoder: 'Xenova/clip-vit-base-patch16' });
 * await clf.learn({ classes: [{ name: 'cat', images: ['cat1.jpg'] }, { name: 'dog', images: ['dog1.jpg'] }] });
 * console.log(await clf.predict(['query.jpg']));
 * // [{ top: [{ label: 'cat', probability: 0.97 }, { label: 'dog', probability: 0.03 }],
 * //    entropy: 0.13, mcVariance: 21.4, noveltyScore: -41.2, isNovel: null }]
 * ```
 * @example The class-incremental benchmark protocol on the built-in synthetic world.
 * ```ts
 * import { createMethod, generateSyntheticDataset, methodSetupFor, resolveRunConfig, runClassIncremental,
 *   SYNTHETIC_PRESETS, averageAccuracy } from 'clap4clip';
 * const config = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5 });
 * const dataset = generateSyntheticDataset(SYNTHETIC_PRESETS[config.syntheticPreset]);
 * const method = await createMethod(config.method, methodSetupFor(config, dataset));
 * const result = await runClassIncremental(config, dataset, method);
 * console.log(averageAccuracy(result.accuracyMatrix)); // 0.88
 * ```
 */
import type { LoadClipOptions } from './encoders/clip.js';
import type { ClipEncoder } from './encoders/types.js';
import { importClipModule } from './encoders/clipModule.js';

// ---------------------------------------------------------------------------------------------
// Incremental classifier for applications (src/api)

/** `createClassifier(options)`: an empty classifier over an encoder or precomputed features; `loadClassifier(dir)`: a saved one. */
export { createClassifier, loadClassifier } from './api/classifier.js';
/** Types of the classifier: options, inputs, tasks, progress, predictions, calibration. */
export type {
  CalibrateOptions, CalibrationOptions, ClassExamples, ClassifierCalibration, HeldOutSet, TemperatureCalibration, ClassifierInfo, ClassifierOptions, ClassProbability, ImageInput, IncrementalClassifier,
  LearnProgress, LearnResult, LearnTask, LoadClassifierOptions, NoveltyCalibration, Prediction, PredictInput, PredictInputs,
  PredictOptions,
} from './api/types.js';
/** The exemplar memory budget (`{ kind: 'total' | 'perClass', size }`) and the exemplar selectors. */
export type { MemoryBudget } from './memory/memory.js';
export { SELECTOR_NAMES, type SelectorName } from './memory/selectors.js';

// ---------------------------------------------------------------------------------------------
// Benchmark protocol (spec sections 5-8)

/** `runClassIncremental(config, dataset, method)`: the task step (train, fit, memory, finetune), then evaluate, per task. */
export { runClassIncremental, methodSetupFor, scenarioFor } from './run/loop.js';
/** The task step both front ends run, and the run's generator streams. */
export { runTaskStep, type TaskRecord } from './cl/taskStep.js';
export { runStreams, type RunStreams } from './cl/streams.js';
export type { LoopOptions, LoopResult, StepRecord } from './run/loop.js';
/** `resolveRunConfig(partial)`: the validated run config over the reference defaults; the synthetic presets. */
export { DEFAULT_RUN_CONFIG, resolveRunConfig, SYNTHETIC_PRESETS } from './run/config.js';
export type { RunConfig } from './run/config.js';
/** `createMethod(name, setup)`: methods by name (the registry: clap, clap-deterministic, zeroshot, clip-adapter, simplecil, ranpac, ...). */
export { createMethod, METHOD_NAMES, type MethodName } from './methods/registry.js';
export type { Method, MethodSetup, MethodState, MethodTraits, Prediction as MethodPrediction, SgdSchedule, TaskClasses, TaskData, TaskInfo } from './methods/method.js';

// ---------------------------------------------------------------------------------------------
// Metrics (pure functions of arrays, spec section 7)

/** Accuracy matrix A[t][k]: average / last accuracy, backward transfer, forgetting. */
export { averageAccuracy, backwardTransfer, forgetting, lastAccuracy, topOneAccuracy } from './eval/accuracyMatrix.js';
export type { AccuracyMatrix } from './eval/accuracyMatrix.js';
/** Calibration: ECE over 15 bins, its per-batch mean, reliability bins, softmax confidences. */
export { ece, perBatchMeanEce, reliabilityBins, softmaxConfidences } from './eval/calibration.js';
/** Novel data detection: scores from logits and AUROC / AUPR / FPR at 95 % TPR (known = positive). */
export { aupr, auroc, energyScore, fpr95, mcVariance, mspScore, predictiveEntropy } from './eval/novelty.js';

// ---------------------------------------------------------------------------------------------
// Data and encoders

/** Features datasets on disk (manifest.json + safetensors) and the generated synthetic CLIP-like world. */
export { loadFeaturesDataset, writeFeaturesDataset } from './data/featuresDataset.js';
export { generateSyntheticDataset } from './data/synthetic.js';
export type { FeaturesDataset, FeaturesManifest, FeaturesSplit } from './data/types.js';
/** CLIP's prompt templates (18 CIFAR-100, 80 ImageNet). */
export { CIFAR100_TEMPLATES, IMAGENET_TEMPLATES } from './data/datasets/templates.js';
export type { ClipEncoder, EncoderInfo, RgbImage } from './encoders/types.js';
export type { LoadClipOptions } from './encoders/clip.js';

/**
 * Loads a CLIP-family model through transformers.js: a hub id (`Xenova/clip-vit-base-patch16`) or
 * a model folder, offline by default. transformers.js is an optional package imported on first use,
 * so programs that work on precomputed features need not install it; without it this throws a
 * Clap4ClipError naming the package and the install command.
 */
export async function loadClipEncoder(idOrDir: string, options: LoadClipOptions = {}): Promise<ClipEncoder> {
  return (await importClipModule()).loadClipEncoder(idOrDir, options);
}

/**
 * Per-template text features e[c, p] of class names, [C, P, D] row-major: `{}` in each template is
 * replaced by the class name (`_` -> space), encoded and L2-normalized.
 */
export async function classTextFeatures(encoder: ClipEncoder, classNames: readonly string[], templates: readonly string[]): Promise<Float32Array> {
  return (await importClipModule()).classTextFeatures(encoder, classNames, templates);
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Every error thrown on purpose is a Clap4ClipError; problems with a file are DataErrors naming it;
 * a folder another writer holds (a `save()` into a folder being saved into) is a FolderBusyError
 * naming the folder and its holder.
 */
export { Clap4ClipError, DataError, FolderBusyError, type LockHolder } from './util/errors.js';
