/**
 * Turning what a user passes (paths, encoded bytes, RGB pixels, feature arrays) into checked,
 * unit-norm features [n, D]. Every problem is a Clap4ClipError that says which input is wrong.
 */
import { decodeImageFile } from '../data/datasets/imageFolder.js';
import type { ClipEncoder, RgbImage } from '../encoders/types.js';
import { Clap4ClipError } from '../util/errors.js';
import type { ImageInput, PredictInputs } from './types.js';

/** A thing that looks like decoded pixels: `{ width, height, data }`. */
function isRgbImage(x: unknown): x is RgbImage {
  if (x === null || typeof x !== 'object' || x instanceof Uint8Array) return false;
  const o = x as Record<string, unknown>;
  return typeof o['width'] === 'number' && typeof o['height'] === 'number' && (o['data'] instanceof Uint8Array || o['data'] instanceof Uint8ClampedArray);
}

/**
 * Decodes a path or encoded bytes to 8-bit RGB with the same rules as the image-folder datasets
 * (alpha dropped, converted to sRGB, EXIF orientation not applied); pixels pass through checked.
 */
export async function decodeImage(input: ImageInput, what: string): Promise<RgbImage> {
  if (isRgbImage(input)) {
    if (!Number.isInteger(input.width) || !Number.isInteger(input.height) || input.width < 1 || input.height < 1 || input.data.length !== input.width * input.height * 3) {
      throw new Clap4ClipError(`${what}: an RGB image needs width * height * 3 bytes (got ${input.data.length} for ${input.width}x${input.height})`);
    }
    return input;
  }
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new Clap4ClipError(`${what}: expected a file path, encoded image bytes (Buffer / Uint8Array) or { width, height, data } RGB pixels, got ${describe(input)}`);
  }
  const source = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  try {
    return await decodeImageFile(source);
  } catch (err) {
    if (err instanceof Clap4ClipError) throw err; // names the file already (a folder given as an image), or not the image's fault (a missing decoder package)
    const where = typeof input === 'string' ? { file: input } : {};
    throw new Clap4ClipError(`${typeof input === 'string' ? '' : `${what}: `}cannot decode the image (${(err as Error).message})`, { ...where, cause: err });
  }
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name}`;
  return typeof x === 'object' ? 'an object' : typeof x;
}

/**
 * Checks `data` as `rows` x `dim` finite values and scales every row to unit L2 norm (a copy).
 * @returns [rows, D]
 */
export function unitRows(data: Float32Array, dim: number, what: string): Float32Array {
  if (!(data instanceof Float32Array)) throw new Clap4ClipError(`${what}: expected a Float32Array, got ${describe(data)}`);
  if (data.length === 0 || data.length % dim !== 0) {
    throw new Clap4ClipError(`${what}: ${data.length} values is not a whole number of rows of D = ${dim} (expected [n, ${dim}], n >= 1)`);
  }
  const rows = data.length / dim;
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let j = 0; j < dim; j++) {
      const v = data[o + j]!;
      if (!Number.isFinite(v)) throw new Clap4ClipError(`${what}: row ${r} holds a non-finite value (${v}) at column ${j}`);
      s += v * v;
    }
    if (s === 0) throw new Clap4ClipError(`${what}: row ${r} is all zeros (a feature needs a direction)`);
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) out[o + j] = data[o + j]! * inv;
  }
  return out;
}

/** Encodes images in batches of `batch` (1: each image alone, so its feature cannot depend on the others). */
export async function encodeImages(encoder: ClipEncoder | null, images: readonly ImageInput[], what: string, batch: number): Promise<Float32Array> {
  if (encoder === null) throw new Clap4ClipError(`${what}: images need a classifier created with an encoder; this one works on features only (pass Float32Array features)`);
  const D = encoder.info.dim;
  const out = new Float32Array(images.length * D);
  for (let s = 0; s < images.length; s += batch) {
    const part = images.slice(s, s + batch);
    const decoded = await Promise.all(part.map((im, j) => decodeImage(im, `${what} image ${s + j}`)));
    out.set(await encoder.encodeImages(decoded), s * D);
  }
  return unitRows(out, D, `${what} (encoded)`);
}

/**
 * The features [n, D] of `predict` / `calibrateNovelty` inputs: a flat Float32Array [n, D], or a
 * list whose items are images (encoded one at a time) or single features [D].
 */
export async function inputFeatures(inputs: PredictInputs, dim: number, encoder: ClipEncoder | null, what: string): Promise<{ features: Float32Array; n: number }> {
  if (inputs instanceof Float32Array) {
    const features = unitRows(inputs, dim, what);
    return { features, n: features.length / dim };
  }
  if (!Array.isArray(inputs)) throw new Clap4ClipError(`${what}: expected a Float32Array [n, ${dim}] or an array of images / features, got ${describe(inputs)}`);
  if (inputs.length === 0) throw new Clap4ClipError(`${what}: no inputs`);
  const features = new Float32Array(inputs.length * dim);
  for (let i = 0; i < inputs.length; i++) {
    const x: unknown = inputs[i];
    const row = x instanceof Float32Array
      ? (x.length === dim ? unitRows(x, dim, `${what} [${i}]`) : fail(`${what} [${i}]: a feature must have D = ${dim} values, got ${x.length}`))
      : await encodeImages(encoder, [x as ImageInput], `${what} [${i}]`, 1);
    features.set(row, i * dim);
  }
  return { features, n: inputs.length };
}

function fail(problem: string): never {
  throw new Clap4ClipError(problem);
}
