/**
 * The record of a multi-run invocation, `invocation.json` at the top of its directory: the layout
 * (comparison or repeated runs) and the config keys given, from which `--resume DIR` rebuilds every
 * run's config. A one-run directory needs none: its `config.json` is the record.
 */
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { writeJsonAtomic } from '../../util/atomicWrite.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import { readFailure } from '../../util/inputFile.js';
import { readRunConfig } from '../runDirectory.js';
import { RECORDED_DEFAULT_METHODS, resolveInvocationConfig, type InvocationConfig, type Invocation, type RecordedInvocation } from './plan.js';

export const INVOCATION_FILE = 'invocation.json';
const INVOCATION_FORMAT = 'clap4clip-invocation';
const MAX_INVOCATION_BYTES = 1024 * 1024;

/** Records a multi-run invocation in `root/invocation.json` (atomically). */
export async function writeInvocation(inv: Invocation): Promise<void> {
  try {
    await mkdir(inv.root, { recursive: true });
  } catch (err) {
    throw new Clap4ClipError(`cannot create the run directory (${(err as Error).message})`, { file: inv.root, cause: err });
  }
  const methods = inv.config.kind === 'comparison' ? { methods: inv.config.methods } : {};
  await writeJsonAtomic(path.join(inv.root, INVOCATION_FILE), { format: INVOCATION_FORMAT, version: 1, compare: inv.layout === 'comparison', ...methods, config: inv.partial });
}

/**
 * What `dir` holds: one run (its config.json), the record of a multi-run invocation, or nothing
 * (null). Both files are validated (the record by resolving its configs); problems are DataErrors
 * naming the file.
 */
export async function readInvocation(dir: string): Promise<RecordedInvocation | null> {
  const config = await readRunConfig(dir);
  if (config !== null) return { layout: 'one run', partial: { ...config }, config: { kind: 'method', config } };
  const file = path.join(dir, INVOCATION_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw readFailure(file, 'run record', err);
  }
  if (bytes.length > MAX_INVOCATION_BYTES) throw new DataError(file, `is ${bytes.length} bytes, too large for a run record (limit ${MAX_INVOCATION_BYTES})`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new DataError(file, `not valid JSON (${(err as Error).message}); truncated or corrupt?`, { cause: err });
  }
  const o = raw as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new DataError(file, 'must hold a JSON object');
  if (o['format'] !== INVOCATION_FORMAT || o['version'] !== 1) throw new DataError(file, `is not a clap4clip run record ("format" ${JSON.stringify(o['format'])}, "version" ${JSON.stringify(o['version'])}; expected "${INVOCATION_FORMAT}", 1)`);
  const compare = o['compare'];
  if (typeof compare !== 'boolean') throw new DataError(file, `"compare" must be true or false, got ${JSON.stringify(compare)}`);
  const partial = o['config'];
  if (partial === null || typeof partial !== 'object' || Array.isArray(partial)) throw new DataError(file, '"config" must be a JSON object');
  // A comparison lists its methods; records written before --methods existed ran the first default list.
  const methods = o['methods'] ?? (compare ? RECORDED_DEFAULT_METHODS : undefined);
  if (methods !== undefined && (!compare || !Array.isArray(methods) || !methods.every((m) => typeof m === 'string'))) {
    throw new DataError(file, `"methods" must be a list of method names, and only in a comparison (got ${JSON.stringify(methods)} with "compare" ${compare})`);
  }
  let resolved: InvocationConfig;
  try {
    resolved = resolveInvocationConfig(compare ? (methods as string[]) : null, partial as Record<string, unknown>);
  } catch (err) {
    if (err instanceof Clap4ClipError) throw new DataError(file, `"config" is invalid: ${err.message}`, { cause: err });
    throw err;
  }
  return { layout: compare ? 'comparison' : 'repeated runs', partial: partial as Record<string, unknown>, config: resolved };
}
