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


/** The signature of `loadClipEncoder` in `encoders/clip.ts`. */
export type LoadClipEncoder = (
  idOrDir: string,
  opts: { offline?: boolean; cacheDir?: string; dtype?: string; device?: string; threads?: number },
) => Promise<ClipEncoder>;

/** Loaded on use: transformers.js is optional, and a missing one becomes an error naming it. */
async function defaultLoader(): Promise<LoadClipEncoder> {
  return (await importClipModule()).loadClipEncoder;
}

export function featuresHelp(): string {
  return [
    'Usage: clap4clip features --dataset NAME --root DIR --encoder ID|DIR --out DIR [options]',
    '       clap4clip features merge --out DIR SHARD_DIR...',
    '',
    `  --dataset NAME         one of [${DATASET_NAMES.join(', ')}]`,
    ...DATASET_NAMES.map((n) => `                           ${n}: ${DATASETS[n].summary}`),
    '  --root DIR             dataset folder',
    '  --encoder ID|DIR       CLIP-family model id (e.g. Xenova/clip-vit-base-patch16) or local folder',
    '  --out DIR              features dataset folder to write (resumes an interrupted run in DIR)',
    '  --views 1|2            train views: 2 = image + mirror image (default, the reference flip), 1 = half the cost',
    '  --batch-size N         encoder inputs per batch (default 32)',
    '  --chunk-size N         images per resumable chunk (default 1024)',
    '  --shard i/N            compute shard i of N (0-based, e.g. a job array index); then `features merge`',
    '  --on-bad-image MODE    fail (default) or skip: corrupt images are listed in DIR/bad_images.json',
    '  --on-empty-class MODE  fail (default) or skip: a class with no train or no test images is left out, with a warning',
    '  --templates FILE       prompt templates (JSON array or one per line, each with {}); default: the dataset\'s',
    '  --class-names FILE     class names, one per line in label order (or JSON {"folder": "name"})',
    '  --train-list FILE, --test-list FILE   split lists: "relative/path label" per line',
    '  --split-seed N, --test-fraction F     seeded per-class split when the layout has none (default 0, 0.2)',
    '  --offline              never touch the network (model must be in the cache or a folder)',
    '  --cache-dir DIR        model cache folder',
    '  --dtype NAME           model weights dtype (default fp32)',
    '  --device NAME          onnxruntime device (default cpu)',
    '  --threads N            onnxruntime threads (default: onnxruntime\'s choice); images decode on sharp\'s own threads',
    '  --overwrite            replace a finished dataset (or chunks of another extraction) in DIR',
    '  --quiet                no progress lines',
  ].join('\n');
}

interface Parsed {
  flags: Map<string, string>;
  positional: string[];
}

const VALUE_FLAGS = ['--dataset', '--root', '--encoder', '--out', '--views', '--batch-size', '--chunk-size', '--shard', '--on-bad-image', '--on-empty-class', '--templates',
  '--class-names', '--train-list', '--test-list', '--split-seed', '--test-fraction', '--cache-dir', '--dtype', '--device', '--threads'];
const BOOL_FLAGS = ['--offline', '--overwrite', '--quiet', '--help', '-h'];

function parse(args: string[], allowed: string[], allowPositional: boolean): Parsed {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) {
      if (!allowPositional) throw new Clap4ClipError(`features: unexpected argument ${JSON.stringify(arg)}; see clap4clip features --help`);
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (!allowed.includes(flag)) throw new Clap4ClipError(`features: unknown option ${flag}; see clap4clip features --help`);
    if (BOOL_FLAGS.includes(flag)) flags.set(flag, 'true');
    else {
      const v = eq >= 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new Clap4ClipError(`features: option ${flag} needs a value`);
      flags.set(flag, v);
    }
  }
  return { flags, positional };
}

function intFlag(flags: Map<string, string>, name: string, min: number): number | undefined {
  const v = flags.get(name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) < min) throw new Clap4ClipError(`features: ${name} must be an integer >= ${min}, got "${v}"`);
  return Number(v);
}

/** `i/N` with 0 <= i < N. */
export function parseShard(v: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]), count = Number(m?.[2]);
  if (m === null || count < 1 || index >= count) throw new Clap4ClipError(`features: --shard must be i/N with 0 <= i < N (0-based), got "${v}"`);
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
    const { flags, positional } = parse(args.slice(1), ['--out', '--overwrite', '--help', '-h'], true);
    if (flags.has('--help') || flags.has('-h')) {
      io.stdout.write(featuresHelp() + '\n');
      return 0;
    }
    const out = flags.get('--out');
    if (out === undefined) throw new Clap4ClipError('features merge: --out DIR is required');
    if (positional.length === 0) throw new Clap4ClipError('features merge: give the shard directories to join');
    const r = await mergeShards(positional, out, { overwrite: flags.has('--overwrite') });
    io.stdout.write(`merged ${positional.length} shards -> ${out}${r.badImages.length > 0 ? ` (${r.badImages.length} bad images skipped, see bad_images.json)` : ''}\n`);
    return 0;
  }
  const { flags } = parse(args, [...VALUE_FLAGS, ...BOOL_FLAGS], false);
  if (flags.has('--help') || flags.has('-h')) {
    io.stdout.write(featuresHelp() + '\n');
    return 0;
  }
  const need = (name: string): string => {
    const v = flags.get(name);
    if (v === undefined) throw new Clap4ClipError(`features: ${name} is required; see clap4clip features --help`);
    return v;
  };
  const dataset = need('--dataset'), root = need('--root'), encoderId = need('--encoder'), out = need('--out');
  if (!isDatasetName(dataset)) throw new Clap4ClipError(`features: --dataset must be one of [${DATASET_NAMES.join(', ')}], got "${dataset}"`);
  const views = intFlag(flags, '--views', 1) ?? 2;
  if (views !== 1 && views !== 2) throw new Clap4ClipError(`features: --views must be 1 or 2, got ${views}`);
  const onBad = flags.get('--on-bad-image') ?? 'fail';
  if (onBad !== 'skip' && onBad !== 'fail') throw new Clap4ClipError(`features: --on-bad-image must be one of [skip, fail], got "${onBad}"`);
  const onEmpty = flags.get('--on-empty-class') ?? 'fail';
  if (onEmpty !== 'skip' && onEmpty !== 'fail') throw new Clap4ClipError(`features: --on-empty-class must be one of [skip, fail], got "${onEmpty}"`);
  const fraction = flags.get('--test-fraction');
  if (fraction !== undefined && !(Number(fraction) >= 0 && Number(fraction) < 1)) throw new Clap4ClipError(`features: --test-fraction must be in [0, 1), got "${fraction}"`);
  const shardArg = flags.get('--shard');
  const shard = shardArg === undefined ? undefined : parseShard(shardArg);
  const batchSize = intFlag(flags, '--batch-size', 1), chunkSize = intFlag(flags, '--chunk-size', 1), threads = intFlag(flags, '--threads', 1);
  const templatesFile = flags.get('--templates');

  // Read the dataset before loading the model, so data errors show up at once.
  const { images, entry } = await readDataset(dataset, {
    root,
    classNamesFile: flags.get('--class-names'),
    trainList: flags.get('--train-list'),
    testList: flags.get('--test-list'),
    splitSeed: intFlag(flags, '--split-seed', 0),
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
    progress: flags.has('--quiet') ? undefined : progressPrinter(io),
    log: (line) => io.stderr.write(`features: ${line}\n`),
    overwrite: flags.has('--overwrite'),
  };
  const load = deps.loadEncoder ?? (await defaultLoader());
  const encoder = await load(encoderId, {
    offline: flags.has('--offline'),
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
    const bad = r.badImages.length > 0 ? `; ${r.badImages.length} bad images skipped (see ${out}/bad_images.json)` : '';
    if (r.complete) io.stdout.write(`wrote features of ${dataset} with ${encoder.info.id} (D = ${encoder.info.dim}) -> ${out} (${r.chunksComputed} chunks computed, ${r.chunksReused} reused${bad})\n`);
    else io.stdout.write(`shard ${shard!.index}/${shard!.count} done -> ${out} (${r.chunksComputed} chunks computed, ${r.chunksReused} reused${bad}); join all shards with: clap4clip features merge --out DIR SHARD_DIR...\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await encoder.dispose();
  }
}
