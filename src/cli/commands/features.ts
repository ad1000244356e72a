/**
 * `clap4clip features`: images of a dataset → a features dataset directory (the input of `run`),
 * with progress, resumable chunks, shards and a merge step. See `featuresHelp()`.
 */
import { DATASET_NAMES, DATASETS, isDatasetName, readDataset } from '../../data/datasets/registry.js';
import { loadTemplatesFile } from '../../data/datasets/templates.js';
import { extractFeatures, mergeShards, type ExtractOptions, type ExtractProgress } from '../../encoders/featureCache.js';
import { importClipModule } from '../../encoders/clipModule.js';
import type { ClipEncoder } from '../../encoders/types.js';
import { Clap4ClipError } from '../../util/errors.js';
import { PROCESS_IO, type CommandIO } from './io.js';
import { choiceValue, intValue, JSON_OPTION, parseOrHelp, QUIET_OPTION, renderHelp, requiredValue, UsageError, type CommandSpec, type OptionSpec } from '../args.js';
import { inFlagTerms } from '../userTerms.js';


/** The signature of `loadClipEncoder` in `encoders/clip.ts`. */
export type LoadClipEncoder = (
  idOrDir: string,
  opts: { offline?: boolean; cacheDir?: string; dtype?: string; device?: string; threads?: number },
) => Promise<ClipEncoder>;

/** Loaded on use: transformers.js is optional, and a missing one becomes an error naming it. */
async function defaultLoader(): Promise<LoadClipEncoder> {
  return (await importClipModule()).loadClipEncoder;
}

const opt = (name: string, arg: string, help: string, defaultText?: string): OptionSpec => ({ name, type: 'string', arg, help, defaultText });

export const FEATURES_SPEC: CommandSpec = {
  name: 'features',
  summary: "Encode a dataset's images with a CLIP-family model into a features dataset (the input of `clap4clip run --data DIR`); resumable, shardable.",
  usage: ['features --dataset NAME --root DIR --encoder MODEL --out DIR', 'features merge --out DIR SHARD_DIR...'],
  description: ['An interrupted extraction resumes from its finished chunks when run again with the same options. `features merge` joins the shards of --shard i/N into one dataset.'],
  options: [
    opt('dataset', 'NAME', `the dataset's layout, one of ${DATASET_NAMES.join(', ')} (see Datasets below)`),
    opt('root', 'DIR', 'dataset folder'),
    opt('encoder', 'MODEL', 'CLIP-family model id (e.g. Xenova/clip-vit-base-patch16) or a local model folder'),
    opt('out', 'DIR', 'features dataset folder to write'),
    opt('views', '1|2', 'training views: 2 = image and its mirror image (as the paper), 1 = half the cost', '2'),
    opt('batch-size', 'N', 'images per encoder batch', '32'),
    opt('chunk-size', 'N', 'images per resumable chunk', '1024'),
    opt('shard', 'i/N', 'compute shard i of N (0-based, e.g. a job array index); then `features merge`'),
    opt('on-bad-image', 'MODE', 'fail, or skip (corrupt images are listed in DIR/bad_images.json)', 'fail'),
    opt('on-empty-class', 'MODE', 'fail, or skip (a class with no training or no test images is left out, with a warning)', 'fail'),
    opt('templates', 'FILE', 'prompt templates (JSON array, or one per line, each with {})', "the dataset's"),
    opt('class-names', 'FILE', 'class names, one per line in label order (or JSON {"folder": "name"})'),
    opt('train-list', 'FILE', 'training split list: "relative/path label" per line'),
    opt('test-list', 'FILE', 'test split list: "relative/path label" per line'),
    opt('split-seed', 'N', 'seed of the per-class split when the layout has none', '0'),
    opt('test-fraction', 'F', 'test share of the per-class split', '0.2'),
    { name: 'offline', type: 'boolean', help: 'never touch the network (the model must be in the cache or a folder)' },
    opt('cache-dir', 'DIR', 'model cache folder'),
    opt('dtype', 'NAME', 'model weights dtype', 'fp32'),
    opt('device', 'NAME', 'onnxruntime device', 'cpu'),
    opt('threads', 'N', "onnxruntime threads (images decode on sharp's own threads)", "onnxruntime's choice"),
    { name: 'overwrite', type: 'boolean', help: 'replace a finished dataset (or chunks of another extraction) in DIR' },
    JSON_OPTION,
    QUIET_OPTION,
  ],
  sections: [{ title: 'Datasets', rows: DATASET_NAMES.map((n) => [n, DATASETS[n].summary] as const) }],
  examples: ['features --dataset image-folder --root photos --encoder ./tiny-clip --offline --out feats/photos'],
};

export const FEATURES_MERGE_SPEC: CommandSpec = {
  name: 'features merge',
  summary: 'Join the shard directories of `features --shard i/N` into one features dataset.',
  usage: ['features merge --out DIR SHARD_DIR...'],
  positionals: [['SHARD_DIR', 'a shard directory written by `features --shard i/N`']],
  options: [opt('out', 'DIR', 'features dataset folder to write'), { name: 'overwrite', type: 'boolean', help: 'replace a dataset already in DIR' }, JSON_OPTION, QUIET_OPTION],
};

export function featuresHelp(columns = 80): string {
  return renderHelp(FEATURES_SPEC, columns);
}

/** `i/N` with 0 <= i < N. */
export function parseShard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]), count = Number(m?.[2]);
  if (m === null || count < 1 || index >= count) throw new UsageError(`features: --shard must be i/N with 0 <= i < N (0-based), got "${v}"`);
  return { index, count };
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${Math.round(s % 60)}s` : `${Math.round(s)}s`;
}

/** Progress on stderr: a rewritten line on a terminal, a line every 10 s in a log file. */
function progressPrinter(io: CommandIO): (p: ExtractProgress) => void {
  const tty = io.stderr.isTTY === true;
  let last = 0;
  return (p) => {
    const now = Date.now();
    const final = p.done === p.total;
    if (!final && now - last < (tty ? 500 : 10_000)) return;
    last = now;
    const eta = p.etaSeconds === null ? '' : `, ETA ${formatDuration(p.etaSeconds)}`;
    const line = `features: ${p.split} ${p.done}/${p.total} images, ${p.imagesPerSecond.toFixed(1)} images/s${eta}`;
    io.stderr.write(tty ? `\r\x1b[K${line}${final ? '\n' : ''}` : `${line}\n`);
  };
}

export async function featuresCommand(args: string[], io: CommandIO = PROCESS_IO, deps: { loadEncoder?: LoadClipEncoder } = {}): Promise<number> {
  if (args[0] === 'merge') {
    const p = parseOrHelp(FEATURES_MERGE_SPEC, args.slice(1));
    if (p.help) {
      io.stdout.write(renderHelp(FEATURES_MERGE_SPEC) + '\n');
      return 0;
    }
    const out = requiredValue(FEATURES_MERGE_SPEC, p, 'out');
    if (p.positionals.length === 0) throw new UsageError('features merge: give the shard directories to join; see clap4clip features merge --help');
    const r = await mergeShards(p.positionals, out, { overwrite: p.values['overwrite'] === true }).catch((err: unknown) => {
      throw inFlagTerms(err, '{ overwrite: true }', '--overwrite');
    });
    if (p.values['json'] === true) io.stdout.write(JSON.stringify({ directory: out, shards: p.positionals.length, badImages: r.badImages.length }) + '\n');
    else if (p.values['quiet'] !== true) io.stdout.write(`merged ${p.positionals.length} shards -> ${out}${r.badImages.length > 0 ? ` (${r.badImages.length} bad images skipped, see bad_images.json)` : ''}\n`);
    return 0;
  }
  const p = parseOrHelp(FEATURES_SPEC, args);
  if (p.help) {
    io.stdout.write(featuresHelp() + '\n');
    return 0;
  }
  const flags = new Map(Object.entries(p.values).map(([k, v]) => [`--${k}`, String(v)]));
  const need = (name: string): string => requiredValue(FEATURES_SPEC, p, name);
  const dataset = need('dataset'), root = need('root'), encoderId = need('encoder'), out = need('out');
  if (!isDatasetName(dataset)) choiceValue(FEATURES_SPEC, p, 'dataset', DATASET_NAMES);
  const views = intValue(FEATURES_SPEC, p, 'views', 1) ?? 2;
  if (views !== 1 && views !== 2) throw new UsageError(`features: --views must be 1 or 2, got ${views}`);
  const onBad = choiceValue(FEATURES_SPEC, p, 'on-bad-image', ['skip', 'fail'] as const) ?? 'fail';
  const onEmpty = choiceValue(FEATURES_SPEC, p, 'on-empty-class', ['skip', 'fail'] as const) ?? 'fail';
  const fraction = flags.get('--test-fraction');
  if (fraction !== undefined && !(Number(fraction) >= 0 && Number(fraction) < 1)) throw new UsageError(`features: --test-fraction must be in [0, 1), got ${JSON.stringify(fraction)}`);
  const shardArg = flags.get('--shard');
  const shard = shardArg === undefined ? undefined : parseShard(shardArg);
  const batchSize = intValue(FEATURES_SPEC, p, 'batch-size', 1), chunkSize = intValue(FEATURES_SPEC, p, 'chunk-size', 1), threads = intValue(FEATURES_SPEC, p, 'threads', 1);
  const templatesFile = flags.get('--templates');
  const quiet = p.values['quiet'] === true, json = p.values['json'] === true;

  // Read the dataset before loading the model, so data errors show up at once.
  const { images, entry } = await readDataset(dataset, {
    root,
    classNamesFile: flags.get('--class-names'),
    trainList: flags.get('--train-list'),
    testList: flags.get('--test-list'),
    splitSeed: intValue(FEATURES_SPEC, p, 'split-seed', 0),
    testFraction: fraction === undefined ? undefined : Number(fraction),
    emptyClasses: onEmpty,
  });
  const opts: Omit<ExtractOptions, 'encoder'> = {
    dataset: images,
    out,
    views,
    batchSize,
    chunkSize,
    shard,
    onBadImage: onBad,
    templates: templatesFile === undefined ? entry.templates : await loadTemplatesFile(templatesFile),
    progress: quiet ? undefined : progressPrinter(io),
    log: (line) => { if (!quiet) io.stderr.write(`features: ${line}\n`); },
    overwrite: p.values['overwrite'] === true,
  };
  const load = deps.loadEncoder ?? (await defaultLoader());
  const encoder = await load(encoderId, {
    offline: p.values['offline'] === true,
    cacheDir: flags.get('--cache-dir'),
    dtype: flags.get('--dtype'),
    device: flags.get('--device'),
    threads,
  });
  // Ctrl-C stops after the current batch; finished chunks stay for the next run.
  const abort = new AbortController();
  const onSigint = () => abort.abort(new Clap4ClipError('features: interrupted; run the same command again to resume'));
  process.once('SIGINT', onSigint);
  try {
    const r = await extractFeatures({ ...opts, encoder, signal: abort.signal });
    if (json) {
      io.stdout.write(JSON.stringify({ directory: out, dataset, encoder: encoder.info.id, dim: encoder.info.dim, complete: r.complete, shard: shard ?? null, chunksComputed: r.chunksComputed, chunksReused: r.chunksReused, badImages: r.badImages.length }) + '\n');
      return 0;
    }
    if (quiet) return 0;
    const bad = r.badImages.length > 0 ? `; ${r.badImages.length} bad images skipped (see ${out}/bad_images.json)` : '';
    if (r.complete) io.stdout.write(`wrote features of ${dataset} with ${encoder.info.id} (D = ${encoder.info.dim}) -> ${out} (${r.chunksComputed} chunks computed, ${r.chunksReused} reused${bad})\n`);
    else io.stdout.write(`shard ${shard!.index}/${shard!.count} done -> ${out} (${r.chunksComputed} chunks computed, ${r.chunksReused} reused${bad}); join all shards with: clap4clip features merge --out DIR SHARD_DIR...\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await encoder.dispose();
  }
}
