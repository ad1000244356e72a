/**
 * The incremental classifier for applications: one call to create, then `learn` new classes as
 * they come, `predict` with calibrated probabilities and uncertainty, flag novel inputs, `save`.
 *
 * @example Features only (no encoder): the synthetic world of `generateSyntheticDataset`.
 * ```ts
 * const clf = await createClassifier({ dim: 32 });
 * await clf.learn({ classes: [{ name: 'cat', features: catFeatures, textFeatures: catText }, ...] });
 * const [out] = await clf.predict(someFeature);
 * // { top: [{ label: 'cat', probability: 0.93 }, ...], entropy: 0.31, mcVariance: 4.2,
 * //   noveltyScore: -33.7, isNovel: null }
 * ```
 * @example With a CLIP model (ids and folders load offline unless `encoderOptions.offline` is false).
 * ```ts
 * const clf = await createClassifier({ encoder: 'Xenova/clip-vit-base-patch16' });
 * await clf.learn({ classes: [{ name: 'cat', images: ['cat1.jpg', catPngBuffer] }, { name: 'dog', images: [...] }] });
 * await clf.calibrate({ classes: [{ name: 'cat', images: heldOutCats }, ...] }); // temperature + isNovel at 95 % TPR
 * const out = await clf.predict(['query.jpg'], { topK: 3 });
 * await clf.save('my-classifier'); clf.dispose();
 * const again = await loadClassifier('my-classifier');   // same predictions
 * ```
 */
import { IMAGENET_TEMPLATES } from '../data/datasets/templates.js';
import type { ClipEncoder } from '../encoders/types.js';
import type { LoadClipOptions } from '../encoders/clip.js';
import { importClipModule } from '../encoders/clipModule.js';
import { perClassQuota } from '../memory/memory.js';
import { getSelector, type SelectorName } from '../memory/selectors.js';
import { getMethodEntry } from '../methods/registry.js';
import { DEFAULT_RUN_CONFIG } from '../run/config.js';
import { Clap4ClipError, shown } from '../util/errors.js';
import { emptyState, newMethod, type ClassifierSettings, type ModelState } from './core.js';
import { inputFeatures } from './inputs.js';
import { learnTask, prepareTask } from './learn.js';
import { readClassifier, saveClassifier } from './persist.js';
import { calibrateState, checkCalibrateOptions, heldOutFeatures } from './calibrate.js';
import { noveltyScores, predictFeatures, thresholdAtRate } from './predict.js';
import type {
  CalibrateOptions, CalibrationOptions, ClassifierCalibration, ClassifierInfo, HeldOutSet, ClassifierOptions, IncrementalClassifier, LearnResult, LearnTask, LoadClassifierOptions,
  NoveltyCalibration, Prediction, PredictInputs, PredictOptions,
} from './types.js';

const OPTION_KEYS = ['encoder', 'encoderOptions', 'templates', 'dim', 'logitScale', 'method', 'options', 'samples', 'batchSize', 'memory', 'selector', 'seed'];

function checkKeys(o: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Clap4ClipError(`${what}: unknown option "${k}": must be one of [${known.join(', ')}]`);
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Clap4ClipError(`createClassifier: "${name}" must be an integer >= 1, got ${shown(v)}`);
  return v;
}

/** An encoder from an id / folder (loaded here, owned) or an object (the caller's). */
async function resolveEncoder(encoder: string | ClipEncoder, options: LoadClipOptions | undefined, what: string): Promise<{ encoder: ClipEncoder; owned: boolean }> {
  if (typeof encoder === 'string') {
    const { loadClipEncoder } = await importClipModule();
    return { encoder: await loadClipEncoder(encoder, options ?? {}), owned: true };
  }
  const ok = encoder !== null && typeof encoder === 'object' && typeof encoder.encodeImages === 'function' && typeof encoder.encodeTexts === 'function' && Number.isInteger(encoder.info?.dim);
  if (!ok) throw new Clap4ClipError(`${what}: "encoder" must be a model id, a model folder or a ClipEncoder`);
  return { encoder, owned: false };
}

/** Validates the options against the defaults (DEFAULT_RUN_CONFIG: the library's run defaults). */
function resolveSettings(o: ClassifierOptions, encoder: ClipEncoder | null): ClassifierSettings {
  const what = 'createClassifier';
  if (encoder === null && o.dim === undefined) throw new Clap4ClipError(`${what}: give an "encoder" (model id, folder or ClipEncoder) or the feature width "dim" for precomputed features`);
  const dim = o.dim === undefined ? encoder!.info.dim : positiveInt(o.dim, 'dim');
  if (encoder !== null && dim !== encoder.info.dim) throw new Clap4ClipError(`${what}: "dim" is ${dim} but the encoder's embeddings have D = ${encoder.info.dim}`);
  const logitScale = o.logitScale ?? encoder?.info.logitScale ?? 100;
  if (typeof logitScale !== 'number' || !Number.isFinite(logitScale) || logitScale <= 0) throw new Clap4ClipError(`${what}: "logitScale" must be a number > 0, got ${shown(logitScale)}`);
  const templates = o.templates ?? IMAGENET_TEMPLATES;
  if (!Array.isArray(templates) || templates.length === 0 || !templates.every((t) => typeof t === 'string' && t.includes('{}'))) {
    throw new Clap4ClipError(`${what}: "templates" must be a non-empty array of strings containing "{}" (where the class name goes)`);
  }
  const method = o.method ?? 'clap';
  if (typeof method !== 'string') throw new Clap4ClipError(`${what}: "method" must be a string`);
  getMethodEntry(method); // unknown names fail here, with the list
  const methodOptions = o.options ?? {};
  if (methodOptions === null || typeof methodOptions !== 'object' || Array.isArray(methodOptions)) throw new Clap4ClipError(`${what}: "options" must be an object of method options`);
  for (const k of ['samples', 'batchSize']) {
    if (k in methodOptions) throw new Clap4ClipError(`${what}: "${k}" is a classifier option: pass { ${k} } next to "options", not inside it`);
  }
  const memory = o.memory ?? { kind: DEFAULT_RUN_CONFIG.memoryKind, size: DEFAULT_RUN_CONFIG.memorySize };
  if (memory === null || typeof memory !== 'object' || (memory.kind !== 'total' && memory.kind !== 'perClass')) {
    throw new Clap4ClipError(`${what}: "memory" must be { kind: 'total' | 'perClass', size }`);
  }
  perClassQuota(memory, 1);
  const selector = o.selector ?? DEFAULT_RUN_CONFIG.selector;
  getSelector(selector);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new Clap4ClipError(`${what}: "seed" must be a safe integer, got ${shown(seed)}`);
  return {
    method,
    methodOptions: structuredClone(methodOptions),
    samples: o.samples === undefined ? DEFAULT_RUN_CONFIG.samples : positiveInt(o.samples, 'samples'),
    batchSize: o.batchSize === undefined ? DEFAULT_RUN_CONFIG.batchSize : positiveInt(o.batchSize, 'batchSize'),
    memory: { kind: memory.kind, size: memory.size },
    selector: selector as SelectorName,
    dim,
    logitScale,
    templates: [...templates],
    encoderId: encoder?.info.id ?? null,
    seed,
  };
}

/** Creates a throwaway method, so bad method options fail at creation, not at the first learn. */
async function checkMethodOptions(settings: ClassifierSettings): Promise<void> {
  await newMethod(settings);
}

class Classifier implements IncrementalClassifier {
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(
    private readonly settings: ClassifierSettings,
    private state: ModelState,
    private readonly encoder: ClipEncoder | null,
    private readonly ownsEncoder: boolean,
  ) {}

  /** Runs `fn` after everything called before it: one operation at a time, in call order. */
  private run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(() => {
      if (this.disposed) throw new Clap4ClipError(`${name}: the classifier was disposed`);
      return fn();
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  get info(): ClassifierInfo {
    const s = this.state;
    return {
      method: this.settings.method,
      dim: this.settings.dim,
      samples: this.settings.samples,
      encoder: this.settings.encoderId,
      classes: [...s.classes],
      tasks: s.tasks.map((t) => ({ ...t })),
      memorySize: s.bank.labels.length,
      novelty: s.novelty ? { ...s.novelty } : null,
      calibration: s.calibration ? { ...s.calibration } : null,
    };
  }

  learn(task: LearnTask): Promise<LearnResult> {
    return this.run('learn', async () => {
      const classes = await prepareTask(task, this.settings, this.state, this.encoder);
      const { state, result } = await learnTask(this.settings, this.state, classes, task.onProgress);
      this.state = state; // commit: nothing above changed the classifier
      return result;
    });
  }

  predict(inputs: PredictInputs, options: PredictOptions = {}): Promise<Prediction[]> {
    return this.run('predict', async () => {
      if (options === null || typeof options !== 'object') throw new Clap4ClipError('predict: options must be an object');
      checkKeys(options, ['topK'], 'predict');
      const topK = options.topK ?? 5;
      if (!Number.isInteger(topK) || topK < 1) throw new Clap4ClipError(`predict: "topK" must be an integer >= 1, got ${shown(topK)}`);
      const { features, n } = await inputFeatures(inputs, this.settings.dim, this.encoder, 'predict');
      return predictFeatures(this.state, features, n, topK);
    });
  }

  calibrate(heldOut: HeldOutSet, options: CalibrateOptions = {}): Promise<ClassifierCalibration> {
    return this.run('calibrate', async () => {
      const { rate, novelty } = checkCalibrateOptions(options);
      const { features, labels, n } = await heldOutFeatures(heldOut, this.settings, this.state, this.encoder);
      const { state, result } = calibrateState(this.state, features, labels, n, rate, novelty);
      this.state = state;
      return result;
    });
  }

  calibrateNovelty(heldOutKnown: PredictInputs, options: CalibrationOptions = {}): Promise<NoveltyCalibration> {
    return this.run('calibrateNovelty', async () => {
      if (options === null || typeof options !== 'object') throw new Clap4ClipError('calibrateNovelty: options must be an object');
      checkKeys(options, ['truePositiveRate'], 'calibrateNovelty');
      const rate = options.truePositiveRate ?? 0.95;
      thresholdAtRate(new Float64Array(1), rate); // checks the rate before any encoding
      const { features, n } = await inputFeatures(heldOutKnown, this.settings.dim, this.encoder, 'calibrateNovelty');
      const calibration = thresholdAtRate(noveltyScores(this.state, features, n), rate);
      this.state = { ...this.state, novelty: calibration };
      return { ...calibration };
    });
  }

  save(dir: string): Promise<string> {
    return this.run('save', async () => {
      if (typeof dir !== 'string' || dir === '') throw new Clap4ClipError('save: "dir" must be a non-empty path');
      return saveClassifier(dir, this.settings, this.state);
    });
  }

  dispose(): Promise<void> {
    const p = this.queue.then(async () => {
      if (this.disposed) return;
      this.disposed = true;
      if (this.ownsEncoder && this.encoder) await this.encoder.dispose();
    });
    this.queue = p.catch(() => undefined);
    return p;
  }
}

/**
 * Creates an empty incremental classifier (no classes yet: `learn` adds them).
 *
 * Defaults (the library's run defaults, spec sections 5-6): method `clap` with the reference's
 * hyper-parameters (5 epochs per task, lr 1.6e-3 with warm-up + cosine, 2 finetuning epochs at
 * lr / 10, LASP weight 15), T = 20 samples, batch 32, memory of 2000 exemplar features in total,
 * random exemplar selection, seed 0, CLIP's 80 ImageNet templates.
 *
 * @param options `encoder` (model id, folder or ClipEncoder) or `dim` (precomputed features [n, D])
 * @throws Clap4ClipError on an unknown option, method, selector or method option, or a bad value
 */
export async function createClassifier(options: ClassifierOptions): Promise<IncrementalClassifier> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new Clap4ClipError('createClassifier: expected an options object ({ encoder } or { dim })');
  checkKeys(options, OPTION_KEYS, 'createClassifier');
  const resolved = options.encoder === undefined ? null : await resolveEncoder(options.encoder, options.encoderOptions, 'createClassifier');
  try {
    const settings = resolveSettings(options, resolved?.encoder ?? null);
    await checkMethodOptions(settings);
    return new Classifier(settings, emptyState(settings.seed), resolved?.encoder ?? null, resolved?.owned ?? false);
  } catch (err) {
    if (resolved?.owned) await resolved.encoder.dispose().catch(() => undefined);
    throw err;
  }
}

/**
 * Loads a classifier written by `save(dir)`: same classes, memory, novelty threshold and generator
 * states, so it predicts exactly what the saved one did and continues learning the same way.
 * The encoder is the saved id (loaded with `encoderOptions`) unless `encoder` is given; a
 * features-only classifier needs none.
 * @throws DataError naming the file on a missing, incomplete or corrupted save
 */
export async function loadClassifier(dir: string, options: LoadClassifierOptions = {}): Promise<IncrementalClassifier> {
  if (options === null || typeof options !== 'object') throw new Clap4ClipError('loadClassifier: options must be an object');
  checkKeys(options, ['encoder', 'encoderOptions'], 'loadClassifier');
  const { settings, state } = await readClassifier(dir);
  const source = options.encoder === null ? undefined : options.encoder ?? settings.encoderId ?? undefined;
  const resolved = source === undefined ? null : await resolveEncoder(source, options.encoderOptions, 'loadClassifier');
  if (resolved && resolved.encoder.info.dim !== settings.dim) {
    if (resolved.owned) await resolved.encoder.dispose().catch(() => undefined);
    throw new Clap4ClipError(`loadClassifier: the encoder's embeddings have D = ${resolved.encoder.info.dim}, the saved classifier D = ${settings.dim}`);
  }
  const final: ClassifierSettings = { ...settings, encoderId: resolved ? resolved.encoder.info.id : settings.encoderId };
  return new Classifier(final, state, resolved?.encoder ?? null, resolved?.owned ?? false);
}
