/**
 * Where a CLIP-family model lives on disk, and whether it is all there, checked before
 * transformers.js is called: its own messages name one path at most, and a missing
 * tokenizer_config.json makes it build a broken tokenizer instead of failing. Every error here says
 * WHAT is missing and WHERE it was looked for.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { Clap4ClipError } from '../util/errors.js';
import { readInputFileSync } from '../util/inputFile.js';

/** ONNX file suffix per dtype (transformers.js `DEFAULT_DTYPE_SUFFIX_MAPPING`). */
export const DTYPE_SUFFIX: Readonly<Record<string, string>> = {
  fp32: '', fp16: '_fp16', int8: '_int8', uint8: '_uint8', q8: '_quantized', q4: '_q4', q4f16: '_q4f16', bnb4: '_bnb4',
};

/** The JSON files every model folder needs, and the two ONNX towers (relative to the folder). */
export const JSON_FILES = ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'] as const;

export function onnxFiles(dtype: string): { text: string; vision: string } {
  const suffix = DTYPE_SUFFIX[dtype];
  if (suffix === undefined) throw new Clap4ClipError(`unknown dtype "${dtype}"; expected one of ${Object.keys(DTYPE_SUFFIX).join(', ')}`);
  return { text: `onnx/text_model${suffix}.onnx`, vision: `onnx/vision_model${suffix}.onnx` };
}

/**
 * Default model cache: `$CLAP4CLIP_MODEL_CACHE`, else `$XDG_CACHE_HOME/clap4clip/models`, else
 * `~/.cache/clap4clip/models`. Laid out as the hub and transformers.js's file cache:
 * `<cache>/<org>/<name>/<file>`. Never inside node_modules.
 */
export function defaultModelCacheDir(): string {
  const env = process.env['CLAP4CLIP_MODEL_CACHE'];
  if (env) return resolve(env);
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'clap4clip', 'models');
}

/** A local folder: absolute, relative with a leading `.`, or an existing directory. Else a hub id. */
export function isLocalPath(idOrDir: string): boolean {
  return isAbsolute(idOrDir) || idOrDir.startsWith('.') || (existsSync(idOrDir) && statSync(idOrDir).isDirectory());
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/**
 * The folder holding a model for offline use: the folder itself for a local path; for a hub id,
 * the first of `<root>/<org>/<name>` over `roots` that has a config.json.
 */
export function locateModelFolder(idOrDir: string, roots: readonly string[]): string {
  if (isLocalPath(idOrDir)) {
    const dir = resolve(idOrDir);
    if (!existsSync(dir)) throw new Clap4ClipError('model folder not found', { file: dir });
    if (!statSync(dir).isDirectory()) throw new Clap4ClipError('model path is not a folder', { file: dir });
    return dir;
  }
  if (!HUB_ID.test(idOrDir)) {
    throw new Clap4ClipError(`"${idOrDir}" is neither a local folder nor a model id like "Xenova/clip-vit-base-patch16"`);
  }
  const candidates = roots.map((r) => join(r, ...idOrDir.split('/')));
  const found = candidates.find((c) => existsSync(join(c, 'config.json')));
  if (found === undefined) {
    throw new Clap4ClipError(
      `model "${idOrDir}" is not available offline: no config.json in ${candidates.join(' or ')}. ` +
        `Fetch it where there is network (e.g. \`huggingface-cli download ${idOrDir} --local-dir ${candidates[0]}\`, ` +
        'or loadClipEncoder with offline: false and the same cache folder) and copy the folder here, or pass a local folder.',
    );
  }
  return found;
}

/**
 * Checks that `dir` has every file the loader reads and that the JSON files parse; throws naming
 * every missing file with its full path, or the first unreadable one.
 */
export function checkModelFolder(dir: string, dtype: string): void {
  const { text, vision } = onnxFiles(dtype);
  const needed = [...JSON_FILES, text, vision];
  const missing = needed.map((f) => join(dir, f)).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    const hint = dtype === 'fp32' ? '' : ` (dtype ${dtype} reads the "${DTYPE_SUFFIX[dtype]}" ONNX files)`;
    throw new Clap4ClipError(`incomplete model folder, missing ${missing.join(', ')}${hint}`, { file: dir });
  }
  for (const f of JSON_FILES) readJsonFile(join(dir, f));
}

/** Parsed JSON object of `file`, or a Clap4ClipError naming it. */
export function readJsonFile(file: string): Record<string, unknown> {
  const text = readInputFileSync(file, 'JSON file of the model').toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Clap4ClipError(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { file, cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Clap4ClipError('expected a JSON object', { file });
  return value as Record<string, unknown>;
}
