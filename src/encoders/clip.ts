/**
 * CLIP-family encoders through transformers.js: a hub id (`Xenova/clip-vit-base-patch16`) or a
 * local folder in the same layout (`modelFolder.ts`), loaded offline by default.
 *
 * - Images go through the model's own CLIPImageProcessor (preprocessor_config.json): for OpenAI
 *   CLIP, shorter side to 224 bicubic, center crop 224, CLIP mean/std. Known differences from the
 *   reference's PIL/torchvision transform: transformers.js resizes with sharp's bicubic affine, which
 *   does not antialias when shrinking (PIL does), and crops at floor((W - 224) / 2) where torchvision
 *   rounds. Both vanish for square images that are enlarged (CIFAR-100's 32 px); whether sharp's
 *   bicubic then equals PIL's pixel for pixel was not checked (no PIL on the development machine).
 * - Text is tokenized by the model's tokenizer, truncated keeping the final EOS (transformers.js
 *   truncation would cut it off and CLIP pools at the EOS), then padded with the pad token.
 * - Embeddings are L2-normalized here, row by row.
 *
 * What differs between model types (which transformers.js classes, output names, padding) is the
 * `FAMILIES` table keyed by config.json `model_type`.
 */
import {
  AutoConfig,
  AutoImageProcessor,
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  RawImage,
  SiglipTextModel,
  SiglipVisionModel,
  Tensor,
  env,
} from '@huggingface/transformers';
import { join } from 'node:path';
import { Clap4ClipError } from '../util/errors.js';
import { checkModelFolder, defaultModelCacheDir, isLocalPath, locateModelFolder, onnxFiles, readJsonFile } from './modelFolder.js';
import type { ClipEncoder, EncoderInfo, RgbImage } from './types.js';

export interface LoadClipOptions {
  /** No network at all (default true): the model must be on disk. */
  offline?: boolean;
  /** Hub-layout cache `<cacheDir>/<org>/<name>/...`, read offline and filled online. Default `defaultModelCacheDir()`. */
  cacheDir?: string;
  /** Weights' dtype, picks the ONNX files (`fp32` default: quantized exports shift embeddings). */
  dtype?: string;
  /** onnxruntime execution device (`cpu` default). */
  device?: string;
  /** onnxruntime intra-op threads; default: onnxruntime's own choice. */
  threads?: number;
}

interface TjsTensor { dims: number[]; data: ArrayLike<number> & { length: number } }
interface TjsSession { inputNames: string[]; outputNames: string[]; inputMetadata?: { name: string; shape?: (number | string)[] }[] }
interface TjsModel {
  (inputs: Record<string, unknown>): Promise<Record<string, TjsTensor>>;
  sessions: Record<string, TjsSession>;
  dispose(): Promise<unknown>;
}
interface TowerClass { from_pretrained(id: string, options: object): Promise<unknown> }
interface TjsTokenizer {
  (texts: string[], options: object): { input_ids: number[][] };
  model_max_length: number;
  pad_token_id: number | undefined;
}
type TjsProcessor = (images: unknown[]) => Promise<{ pixel_values: TjsTensor }>;

export interface ModelFamily {
  textModel: TowerClass;
  visionModel: TowerClass;
  textOutput: string;
  imageOutput: string;
  /** `longest`: pad a batch to its longest text; `max_length`: every text to model_max_length. */
  textPadding: 'longest' | 'max_length';
  /** exp(logit_scale) when config.json has no trained `logit_scale`. */
  defaultLogitScale: number;
}

/**
 * Model types and what they need. Only `clip` is tested (tiny fixture); the other rows follow the
 * transformers.js documentation of those exports and are untested here (no weights can be fetched).
 * A text graph with a fixed sequence length (some MobileCLIP exports) is always padded to it.
 */
export const FAMILIES: Readonly<Record<string, ModelFamily>> = {
  // OpenAI CLIP, and any export declaring model_type "clip" (MobileCLIP ports that do so load through
  // this row, untested; one declaring another type needs its own row). Causal mask + EOS pooling make
  // the padding invisible, so the shorter `longest` padding gives the same embeddings as 77.
  clip: {
    textModel: CLIPTextModelWithProjection as unknown as TowerClass,
    visionModel: CLIPVisionModelWithProjection as unknown as TowerClass,
    textOutput: 'text_embeds',
    imageOutput: 'image_embeds',
    textPadding: 'longest',
    defaultLogitScale: 100,
  },
  // SigLIP (untested): pools the last position, trained with every text padded to max length (64);
  // its embeddings are the `pooler_output` of each tower.
  siglip: {
    textModel: SiglipTextModel as unknown as TowerClass,
    visionModel: SiglipVisionModel as unknown as TowerClass,
    textOutput: 'pooler_output',
    imageOutput: 'pooler_output',
    textPadding: 'max_length',
    defaultLogitScale: 100,
  },
};

/** Texts per forward pass of the text tower (bounds memory for 200 classes x 80 templates). */
const TEXT_BATCH = 256;

/**
 * Token ids of a batch as one int64 [N, L] tensor: sequences longer than `maxLength` keep their
 * first maxLength - 1 tokens and their last (EOS), as OpenAI's `clip.tokenize(truncate=True)`;
 * shorter ones are padded with `padId` (mask 0) to the longest, or to `maxLength`.
 */
export function fitTokenIds(ids: number[][], maxLength: number, padId: number, padTo: 'longest' | 'max_length'): { ids: BigInt64Array; mask: BigInt64Array; length: number } {
  const cut = ids.map((s) => (s.length > maxLength ? [...s.slice(0, maxLength - 1), s[s.length - 1]!] : s));
  const length = padTo === 'max_length' ? maxLength : Math.max(...cut.map((s) => s.length));
  const out = new BigInt64Array(ids.length * length).fill(BigInt(padId));
  const mask = new BigInt64Array(ids.length * length);
  cut.forEach((s, i) => {
    s.forEach((t, j) => {
      out[i * length + j] = BigInt(t);
      mask[i * length + j] = 1n;
    });
  });
  return { ids: out, mask, length };
}

/** Rows of `data` [rows, dim] scaled to unit L2 norm (float64 sums); a zero or non-finite row is an error. */
export function l2NormalizeRows(data: ArrayLike<number>, rows: number, dim: number, what: string): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[r * dim + j]! ** 2;
    const norm = Math.sqrt(s);
    if (!(norm > 0 && Number.isFinite(norm))) throw new Clap4ClipError(`${what}: row ${r} of the model output has norm ${norm}`);
    for (let j = 0; j < dim; j++) out[r * dim + j] = data[r * dim + j]! / norm;
  }
  return out;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs one transformers.js load step; its failure becomes a Clap4ClipError naming `file`. */
async function step<T>(what: string, file: string, load: () => Promise<unknown>): Promise<T> {
  try {
    return (await load()) as T;
  } catch (err) {
    throw new Clap4ClipError(`cannot load the ${what}: ${message(err)}`, { file, cause: err });
  }
}

function outputOf(result: Record<string, TjsTensor>, name: string, rows: number, file: string): TjsTensor {
  const t = result[name];
  if (t === undefined) throw new Clap4ClipError(`the model has no output "${name}" (outputs: ${Object.keys(result).join(', ')})`, { file });
  if (t.dims.length !== 2 || t.dims[0] !== rows) throw new Clap4ClipError(`output "${name}" has shape [${t.dims.join(', ')}], expected [${rows}, D]`, { file });
  return t;
}

/** Fixed sequence length of the text graph's input_ids, if it has one. */
function fixedTextLength(session: TjsSession): number | null {
  const dim = session.inputMetadata?.find((m) => m.name === 'input_ids')?.shape?.[1];
  return typeof dim === 'number' ? dim : null;
}

/** transformers.js's own model folders (read offline as a fallback), taken before we change them. */
const TJS_DEFAULT_DIRS: string[] = [env.cacheDir, env.localModelPath].filter((p): p is string => typeof p === 'string' && p.length > 0);

function configureEnvironment(offline: boolean, cacheDir: string): void {
  // transformers.js's defaults would download from the hub and cache inside node_modules.
  env.allowRemoteModels = !offline;
  env.allowLocalModels = true;
  env.useFSCache = !offline;
  env.cacheDir = cacheDir;
}

/**
 * Loads a CLIP-family model through transformers.js. Offline (default), a hub id is looked up in
 * `cacheDir`, then in transformers.js's own `cacheDir` and `localModelPath`; nothing is written.
 * Online, missing files are downloaded into `cacheDir`.
 */
export async function loadClipEncoder(idOrDir: string, options: LoadClipOptions = {}): Promise<ClipEncoder> {
  const { offline = true, dtype = 'fp32', device = 'cpu', threads } = options;
  const cacheDir = options.cacheDir ?? defaultModelCacheDir();
  const files = onnxFiles(dtype);
  configureEnvironment(offline, cacheDir);
  const hub = { cache_dir: cacheDir, local_files_only: offline };

  // Offline or local: resolve and check the folder first, then hand transformers.js its absolute path.
  const local = offline || isLocalPath(idOrDir);
  const source = local ? locateModelFolder(idOrDir, [cacheDir, ...TJS_DEFAULT_DIRS.filter((p) => p !== cacheDir)]) : idOrDir;
  if (local) checkModelFolder(source, dtype);
  const where = (f: string): string => (local ? join(source, f) : `${idOrDir}/${f} (cache ${cacheDir})`);

  const config = local
    ? readJsonFile(where('config.json'))
    : await step<Record<string, unknown>>('config', where('config.json'), () => AutoConfig.from_pretrained(source, hub));
  const modelType = String(config['model_type'] ?? '');
  const family = FAMILIES[modelType];
  if (family === undefined) {
    throw new Clap4ClipError(`unsupported model_type "${modelType}"; supported: ${Object.keys(FAMILIES).join(', ')}`, { file: where('config.json') });
  }

  const towerOptions = { ...hub, dtype, device, ...(threads === undefined ? {} : { session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 } }) };
  const tokenizer = await step<TjsTokenizer>('tokenizer', where('tokenizer.json'), () => AutoTokenizer.from_pretrained(source, hub));
  const processor = await step<TjsProcessor>('image processor', where('preprocessor_config.json'), () => AutoImageProcessor.from_pretrained(source, hub));
  const textModel = await step<TjsModel>('text tower', where(files.text), () => family.textModel.from_pretrained(source, towerOptions));
  let visionModel: TjsModel | undefined;
  try {
    visionModel = await step<TjsModel>('vision tower', where(files.vision), () => family.visionModel.from_pretrained(source, towerOptions));
    return await makeEncoder({ idOrDir, dtype, config, family, tokenizer, processor, textModel, visionModel, where, files });
  } catch (err) {
    // Release the native sessions already created before reporting.
    await Promise.allSettled([textModel.dispose(), visionModel?.dispose()]);
    throw err;
  }
}

interface EncoderParts {
  idOrDir: string;
  dtype: string;
  config: Record<string, unknown>;
  family: ModelFamily;
  tokenizer: TjsTokenizer;
  processor: TjsProcessor;
  textModel: TjsModel;
  visionModel: TjsModel;
  where: (file: string) => string;
  files: { text: string; vision: string };
}

/** The ClipEncoder over loaded parts; runs one text forward to learn D. */
async function makeEncoder(parts: EncoderParts): Promise<ClipEncoder> {
  const { idOrDir, dtype, config, family, tokenizer, processor, textModel, visionModel, where, files } = parts;

  const textSession = textModel.sessions['model']!;
  const fixedLength = fixedTextLength(textSession);
  const maxLength = fixedLength ?? (Number.isFinite(tokenizer.model_max_length) ? tokenizer.model_max_length : 77);
  const padTo = fixedLength !== null ? 'max_length' : family.textPadding;
  const padId = tokenizer.pad_token_id;
  if (padId === undefined) throw new Clap4ClipError('the tokenizer has no pad token (pad_token or eos_token)', { file: where('tokenizer_config.json') });

  const storedScale = config['logit_scale'];
  const info: EncoderInfo = {
    id: idOrDir,
    dim: 0,
    dtype,
    logitScale: typeof storedScale === 'number' ? Math.exp(storedScale) : family.defaultLogitScale,
  };

  async function encodeTextBatch(texts: string[]): Promise<Float32Array> {
    const { input_ids } = tokenizer(texts, { padding: false, truncation: false, return_tensor: false });
    const fit = fitTokenIds(input_ids, maxLength, padId!, padTo);
    const dims = [texts.length, fit.length];
    const feeds: Record<string, unknown> = { input_ids: new Tensor('int64', fit.ids, dims) };
    if (textSession.inputNames.includes('attention_mask')) feeds['attention_mask'] = new Tensor('int64', fit.mask, dims);
    const out = outputOf(await textModel(feeds), family.textOutput, texts.length, where(files.text));
    return l2NormalizeRows(out.data, texts.length, out.dims[1]!, 'text embeddings');
  }

  const encoder: ClipEncoder = {
    info,
    async encodeImages(images: RgbImage[]): Promise<Float32Array> {
      if (images.length === 0) return new Float32Array(0);
      const raw = images.map((im, i) => {
        if (im.data.length !== im.width * im.height * 3) {
          throw new Clap4ClipError(`image ${i}: ${im.data.length} bytes for ${im.width}x${im.height} RGB (expected ${im.width * im.height * 3})`);
        }
        return new RawImage(im.data as Uint8ClampedArray, im.width, im.height, 3);
      });
      const { pixel_values } = await processor(raw);
      const out = outputOf(await visionModel({ pixel_values }), family.imageOutput, images.length, where(files.vision));
      if (out.dims[1] !== info.dim) throw new Clap4ClipError(`image embeddings have width ${out.dims[1]}, text embeddings ${info.dim}`, { file: where(files.vision) });
      return l2NormalizeRows(out.data, images.length, out.dims[1]!, 'image embeddings');
    },
    async encodeTexts(texts: string[]): Promise<Float32Array> {
      if (texts.length === 0) return new Float32Array(0);
      const parts: Float32Array[] = [];
      for (let i = 0; i < texts.length; i += TEXT_BATCH) parts.push(await encodeTextBatch(texts.slice(i, i + TEXT_BATCH)));
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        out.set(p, offset);
        offset += p.length;
      }
      return out;
    },
    async dispose(): Promise<void> {
      await Promise.all([textModel.dispose(), visionModel.dispose()]);
    },
  };

  // D from one real forward: the configs disagree on where it lives (projection_dim, hidden_size).
  info.dim = (await encoder.encodeTexts(['a'])).length;
  return encoder;
}

/**
 * Per-template text features e[c, p] = normalize(text(template_p with class c)), row-major
 * [C, P, D]: `{}` in a template is replaced by the class name with `_` turned into spaces.
 */
export async function classTextFeatures(encoder: ClipEncoder, classNames: readonly string[], templates: readonly string[]): Promise<Float32Array> {
  const bad = templates.find((t) => !t.includes('{}'));
  if (bad !== undefined) throw new Clap4ClipError(`template without "{}": "${bad}"`);
  if (classNames.length === 0 || templates.length === 0) return new Float32Array(0);
  const texts = classNames.flatMap((c) => templates.map((t) => t.replaceAll('{}', c.replaceAll('_', ' '))));
  return encoder.encodeTexts(texts);
}
