/**
 * `calibrate(heldOut)`: post-hoc temperature scaling of the classifier (Guo et al. 2017), fitted
 * on labelled held-out examples of KNOWN classes, i.e. examples the classifier has not learned
 * from. The same examples set the novelty threshold (as `calibrateNovelty` does), so one call
 * prepares both.
 *
 * After it, `predict` reports softmax(mean logits / T) and the entropy of those probabilities;
 * the argmax, and so every top-1 label, is unchanged. Novelty scores stay on the raw logits
 * (-logsumexp z) unless `novelty: 'calibrated'` asks for the temperature-scaled energy
 * (-T logsumexp(z / T), Liu et al. 2020), in which case the threshold is set on that score too.
 * `learn` clears the calibration (the model changed).
 */
import type { ClipEncoder } from '../encoders/types.js';
import { fitTemperature } from '../eval/temperature.js';
import { Clap4ClipError } from '../util/errors.js';
import type { ClassifierSettings, ModelState } from './core.js';
import { encodeImages, unitRows } from './inputs.js';
import { noveltyScores, rawMeanLogits, thresholdAtRate } from './predict.js';
import type { CalibrateOptions, HeldOutSet, ClassifierCalibration, NoveltyCalibration, TemperatureCalibration } from './types.js';

const ENCODE_BATCH = 32;
const NOVELTY_MODES = ['raw', 'calibrated'] as const;

function checkKeys(o: object, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw new Clap4ClipError(`${what}: unknown key "${k}": must be one of [${known.join(', ')}]`);
}

/** Checks the options before any encoding. */
export function checkCalibrateOptions(options: CalibrateOptions): { rate: number; novelty: 'raw' | 'calibrated' } {
  if (options === null || typeof options !== 'object') throw new Clap4ClipError('calibrate: options must be an object');
  checkKeys(options, ['truePositiveRate', 'novelty'], 'calibrate');
  const rate = options.truePositiveRate ?? 0.95;
  thresholdAtRate(new Float64Array(1), rate);
  const novelty = options.novelty ?? 'raw';
  if (!NOVELTY_MODES.includes(novelty)) throw new Clap4ClipError(`calibrate: "novelty" must be one of [${NOVELTY_MODES.join(', ')}], got ${JSON.stringify(novelty)}`);
  return { rate, novelty };
}

/** The held-out examples as unit-norm features [n, D] with their labels [n] (positions of known classes). */
export async function heldOutFeatures(heldOut: HeldOutSet, settings: ClassifierSettings, state: ModelState, encoder: ClipEncoder | null): Promise<{ features: Float32Array; labels: Int32Array; n: number }> {
  if (heldOut === null || typeof heldOut !== 'object' || !Array.isArray(heldOut.classes) || heldOut.classes.length === 0) {
    throw new Clap4ClipError('calibrate: expected { classes: [{ name, images?, features? }] } with held-out examples of learned classes');
  }
  checkKeys(heldOut, ['classes'], 'calibrate');
  if (state.method === null) throw new Clap4ClipError('calibrate: the classifier has learned no classes yet (call learn first)');
  const D = settings.dim;
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  for (const [i, c] of heldOut.classes.entries()) {
    const what = `calibrate: classes[${i}]`;
    if (c === null || typeof c !== 'object') throw new Clap4ClipError(`${what}: expected { name, images?, features? }`);
    checkKeys(c, ['name', 'images', 'features'], what);
    const label = state.classes.indexOf(c.name);
    if (label < 0) throw new Clap4ClipError(`${what}: "${String(c.name)}" is not a learned class (held-out examples must be of known classes)`);
    if (c.images !== undefined && !Array.isArray(c.images)) throw new Clap4ClipError(`${what}: "images" must be an array`);
    const before = parts.reduce((n, p) => n + p.length, 0);
    if (c.features !== undefined) parts.push(unitRows(c.features, D, `${what} features`));
    if (c.images !== undefined && c.images.length > 0) parts.push(await encodeImages(encoder, c.images, what, ENCODE_BATCH));
    const rows = (parts.reduce((n, p) => n + p.length, 0) - before) / D;
    if (rows === 0) throw new Clap4ClipError(`${what}: no examples of "${c.name}" (give "images" or "features")`);
    for (let r = 0; r < rows; r++) labels.push(label);
  }
  const features = new Float32Array(labels.length * D);
  let o = 0;
  for (const p of parts) {
    features.set(p, o);
    o += p.length;
  }
  return { features, labels: Int32Array.from(labels), n: labels.length };
}

/** Fits T on the held-out features and sets the novelty threshold; returns the calibrated state (not committed). */
export function calibrateState(state: ModelState, features: Float32Array, labels: Int32Array, n: number, rate: number, novelty: 'raw' | 'calibrated'): { state: ModelState; result: ClassifierCalibration } {
  const C = state.classes.length;
  const logits = rawMeanLogits(state, features, n, 'calibrate');
  const fit = fitTemperature(logits, n, C, labels);
  const temperature: TemperatureCalibration = { temperature: fit.temperature, nllBefore: fit.nllBefore, nllAfter: fit.nllAfter, samples: n, novelty };
  const withT: ModelState = { ...state, calibration: temperature };
  const threshold: NoveltyCalibration = thresholdAtRate(noveltyScores(withT, features, n), rate);
  return { state: { ...withT, novelty: threshold }, result: { temperature: { ...temperature }, novelty: { ...threshold } } };
}
