/**
 * Public types of the incremental classifier (`createClassifier`, `loadClassifier`).
 *
 * Shapes use the spec's letters: D = embedding width, P = prompt templates, T = Monte-Carlo
 * samples, C = classes learned so far. Feature arrays are row-major float32.
 */
import type { RgbImage } from '../encoders/types.js';
import type { LoadClipOptions } from '../encoders/clip.js';
import type { ClipEncoder } from '../encoders/types.js';
import type { TaskRecord } from '../cl/taskStep.js';
import type { MemoryBudget } from '../memory/memory.js';
import type { SelectorName } from '../memory/selectors.js';
import type { MethodName } from '../methods/registry.js';

/**
 * One image: a file path, the bytes of an encoded file (PNG, JPEG, WebP...: anything sharp
 * decodes), or decoded 8-bit RGB pixels. Needs a classifier created with an encoder; paths and
 * bytes also need the optional package `sharp`.
 */
export type ImageInput = string | Uint8Array | RgbImage;

/** One input of `predict`: an image, or one precomputed unit-norm image feature [D]. */
export type PredictInput = ImageInput | Float32Array;

/**
 * The inputs of `predict` / `calibrateNovelty`: precomputed features as one flat array [n, D], or a
 * list of images and/or single features [D].
 */
export type PredictInputs = Float32Array | readonly PredictInput[];

/** Options of `createClassifier`. Every field is optional except the source of features (`encoder` or `dim`). */
export interface ClassifierOptions {
  /**
   * The frozen CLIP model: a model id (`Xenova/clip-vit-base-patch16`), a model folder in the
   * transformers.js layout, or a loaded `ClipEncoder`. Without it the classifier works on
   * precomputed features only (`dim` required). An encoder passed as an object is not disposed by
   * `dispose()`; one loaded from an id or folder is. An id or folder needs the optional packages
   * `@huggingface/transformers` and `sharp` (without them: a Clap4ClipError naming the package).
   */
  encoder?: string | ClipEncoder;
  /** How to load `encoder` when it is an id or folder (default: offline, fp32, the library's model cache). */
  encoderOptions?: LoadClipOptions;
  /**
   * Prompt templates with `{}` for the class name, used to compute a class's text features from its
   * name when the class brings no `textFeatures` (encoder mode). Default: CLIP's 80 ImageNet templates.
   */
  templates?: readonly string[];
  /** Embedding width D. Required without an encoder; checked against the encoder's otherwise. */
  dim?: number;
  /** CLIP's logit scale exp(logit_scale). Default: the encoder's (100 for OpenAI CLIP), else 100. */
  logitScale?: number;
  /** Method name from the method registry (`METHOD_NAMES`). Default `clap`. */
  method?: MethodName;
  /**
   * Method options, validated by the method (CLAP: `epochs` 5, `finetuneEpochs` 2, `lr`,
   * `laspWeight` 15, `klWeight` 0.001, `vga`, ...). `samples` and `batchSize` are top-level options.
   */
  options?: Record<string, unknown>;
  /** Monte-Carlo samples T per prediction. Default 20 (the reference's `forward_times`). */
  samples?: number;
  /** Training batch size B. Default 32. */
  batchSize?: number;
  /**
   * Exemplar memory budget (the memory keeps image FEATURES, never images). Default
   * `{ kind: 'total', size: 2000 }`: 2000 exemplars split evenly over the classes learned so far.
   */
  memory?: MemoryBudget;
  /** Exemplar selector (`SELECTOR_NAMES`: `random`, `first`, `herding`, `entropy`, ...). Default `random`. */
  selector?: SelectorName;
  /** Seed of every random draw (initialization, batches, memory, test-time noise). Default 0. */
  seed?: number;
}

/** Options of `loadClassifier`. */
export interface LoadClassifierOptions {
  /**
   * The encoder to attach: an id, folder or loaded `ClipEncoder`; `null` for none (features only).
   * Default: the saved classifier's encoder id, loaded with `encoderOptions`; none for a
   * features-only classifier.
   */
  encoder?: string | ClipEncoder | null;
  encoderOptions?: LoadClipOptions;
}

/** One class to learn: its name and labelled examples (images and/or features). */
export interface ClassExamples {
  /** Class name, unique over everything the classifier has learned. In encoder mode it fills the templates. */
  name: string;
  /** Training images (encoder mode). */
  images?: readonly ImageInput[];
  /** Precomputed image features [n, D] (unit norm; other norms are normalized). */
  features?: Float32Array;
  /**
   * Per-template text features e[p] of this class [P, D] (unit norm; normalized otherwise). Required
   * without an encoder; with one, it replaces the features computed from `templates`. P must be the
   * same for every class of a classifier.
   */
  textFeatures?: Float32Array;
}

/** What `learn` reports while it trains. */
export interface LearnProgress {
  /** Index of the task being learned (0 for the first `learn`). */
  task: number;
  /** `train`: learning the new task; `finetune`: class-balanced finetuning on the memory (second task on). */
  phase: 'train' | 'finetune';
  /** Iterations done in this phase (1-based). */
  iteration: number;
  /** Iterations of this phase. */
  total: number;
  /** Loss of the iteration just run. */
  loss: number;
}

/** A task: a set of new classes. */
export interface LearnTask {
  classes: readonly ClassExamples[];
  /** Called after every training iteration. */
  onProgress?: (progress: LearnProgress) => void;
}

/** What one `learn` did. */
/**
 * What `learn` produced: the task step's record (`TaskRecord` of src/cl/taskStep.ts, the same one
 * the run loop keeps per step), with the new classes' labels and the seconds of the whole call.
 */
export interface LearnResult extends Omit<TaskRecord, 'seconds'> {
  /** The new classes' labels: incremental positions [classStart, classEnd). */
  classStart: number;
  classEnd: number;
  /** Wall-clock seconds of the whole call (encoding included). */
  seconds: number;
}

/** Options of `predict`. */
export interface PredictOptions {
  /** How many classes to list per input, most probable first (capped at C). Default 5. */
  topK?: number;
}

/** A class with its probability. */
export interface ClassProbability {
  label: string;
  /**
   * softmax of the mean over the Monte-Carlo samples of the logits (spec section 7), divided by
   * the fitted temperature once `calibrate` has run (`Prediction.calibrated`).
   */
  probability: number;
}

/** The prediction of one input. */
export interface Prediction {
  /** The `topK` most probable classes, highest first (ties: the earlier-learned class first). */
  top: ClassProbability[];
  /** True when the probabilities (and entropy) are temperature-scaled by `calibrate`, false when raw. */
  calibrated: boolean;
  /** Predictive entropy of the probabilities, in nats, in [0, log C]. */
  entropy: number;
  /** MC variance of the logits: mean over classes of the variance over the T samples (0 when T = 1). */
  mcVariance: number;
  /**
   * Novelty score = minus the energy score, -logsumexp(mean logits): HIGHER = MORE NOVEL (less
   * like anything learned). Comparable between inputs of one classifier state only. On the raw
   * logits even after `calibrate`, unless it was called with `novelty: 'calibrated'`
   * (then -T logsumexp(mean logits / T)).
   */
  noveltyScore: number;
  /** noveltyScore > the calibrated threshold; null until `calibrateNovelty` has run on the current model. */
  isNovel: boolean | null;
}

/** Options of `calibrateNovelty`. */
export interface CalibrationOptions {
  /** Share of held-out KNOWN inputs that must not be flagged novel, in (0, 1]. Default 0.95. */
  truePositiveRate?: number;
}

/** The threshold set by `calibrateNovelty`. */
export interface NoveltyCalibration {
  /** `isNovel` is noveltyScore > threshold. */
  threshold: number;
  /** Share of the held-out inputs at or below the threshold (>= the requested rate). */
  truePositiveRate: number;
  /** Number of held-out inputs. */
  samples: number;
}

/** Held-out examples of learned classes for `calibrate` (never examples the classifier learned from). */
export interface HeldOutSet {
  classes: readonly { name: string; images?: readonly ImageInput[]; features?: Float32Array }[];
}

/** Options of `calibrate`. */
export interface CalibrateOptions {
  /** Share of the held-out inputs that must not be flagged novel, in (0, 1]. Default 0.95. */
  truePositiveRate?: number;
  /** Novelty score on the raw logits (default) or on the temperature-scaled ones. */
  novelty?: 'raw' | 'calibrated';
}

/** The temperature fitted by `calibrate` (Guo et al. 2017). */
export interface TemperatureCalibration {
  /** T > 0: probabilities are softmax(mean logits / T). */
  temperature: number;
  /** Mean negative log-likelihood of the held-out labels at T = 1 and at the fitted T (after <= before). */
  nllBefore: number;
  nllAfter: number;
  /** Held-out inputs it was fitted on. */
  samples: number;
  /** Which logits the novelty score uses. */
  novelty: 'raw' | 'calibrated';
}

/** What `calibrate` set: the temperature and the novelty threshold. */
export interface ClassifierCalibration {
  temperature: TemperatureCalibration;
  novelty: NoveltyCalibration;
}

/** Facts about a classifier. */
export interface ClassifierInfo {
  method: string;
  /** Embedding width D. */
  dim: number;
  /** Monte-Carlo samples T. */
  samples: number;
  /** Id or folder of the encoder the features come from (null: created for precomputed features only). */
  encoder: string | null;
  /** Class names in label order. */
  classes: readonly string[];
  /** Task boundaries: task i owns labels [classStart, classEnd). */
  tasks: readonly { index: number; classStart: number; classEnd: number }[];
  /** Exemplars (features) in the memory. */
  memorySize: number;
  /** The novelty calibration of the current model (null: none). */
  novelty: NoveltyCalibration | null;
  /** The temperature of the current model (null: raw probabilities). */
  calibration: TemperatureCalibration | null;
}

/** A classifier that keeps learning new classes. Methods run one at a time, in call order. */
export interface IncrementalClassifier {
  /** Current facts (a snapshot). */
  readonly info: ClassifierInfo;
  /**
   * Learns a new set of classes (one CLAP task): trains on the new examples plus the memory,
   * updates the memory, and from the second task on finetunes on the memory. On failure the
   * classifier is unchanged. Clears the novelty calibration (the model changed).
   */
  learn(task: LearnTask): Promise<LearnResult>;
  /** Predicts each input on its own, with a fixed noise stream: an input's output does not depend on the others. */
  predict(inputs: PredictInputs, options?: PredictOptions): Promise<Prediction[]>;
  /**
   * Fits the temperature of the probabilities (minimum NLL of the held-out labels) and sets the
   * `isNovel` threshold, both from labelled held-out examples of KNOWN classes the classifier has
   * not learned from. Kept by `save`; cleared by `learn`.
   */
  calibrate(heldOut: HeldOutSet, options?: CalibrateOptions): Promise<ClassifierCalibration>;
  /** Sets the `isNovel` threshold from held-out inputs of KNOWN classes at the chosen true-positive rate. */
  calibrateNovelty(heldOutKnown: PredictInputs, options?: CalibrationOptions): Promise<NoveltyCalibration>;
  /**
   * Writes the classifier under `dir` (created if needed) and returns the absolute path of the new
   * save: a sub-folder `dir/classifier-<tasks>-<suffix>/`, which `dir/latest` names. Pass `dir`
   * itself (not the returned sub-folder) to `loadClassifier`. Crash-safe: the previous save stays
   * loadable until the new one is complete, and is removed after.
   */
  save(dir: string): Promise<string>;
  /** Releases the encoder if the classifier loaded it. Later calls fail. */
  dispose(): Promise<void>;
}
