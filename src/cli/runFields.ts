/**
 * The options of the run settings, made from `RUN_CONFIG_FIELDS` (the one table of settings):
 * `--memory-size N` for `memorySize`, with its help and the default `clap4clip run` really uses
 * (the benchmark world's, QUICK_BENCHMARK, where it differs). Shared by `run` and `params`.
 */
import { DEFAULT_RUN_CONFIG, flagOf, RUN_CONFIG_FIELDS, type FieldSpec } from '../run/config.js';
import { QUICK_BENCHMARK } from '../run/invocation/index.js';
import type { OptionSpec, ParsedCommandLine } from './args.js';
import { Clap4ClipError } from '../util/errors.js';
import { readInputText } from '../util/inputFile.js';

const flagName = (key: string): string => flagOf(key).slice(2);
const show = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** How the default of a field reads: the benchmark world's value first, the full protocol's after it. */
function defaultText(f: FieldSpec): string | undefined {
  const quick = (QUICK_BENCHMARK as Record<string, unknown>)[f.key];
  const full = DEFAULT_RUN_CONFIG[f.key];
  if (quick !== undefined) return `${show(quick)}; ${show(full)} with --full${f.key === 'syntheticPreset' ? '' : ' or --data DIR'}`;
  if (f.defaultText !== undefined) return f.defaultText;
  if (full === null || full === undefined || f.boolean || (typeof full === 'object' && Object.keys(full).length === 0)) return undefined;
  return show(full);
}

export const FIELD_OPTIONS: readonly OptionSpec[] = RUN_CONFIG_FIELDS.map((f) => ({
  name: flagName(f.key),
  type: f.boolean ? 'boolean' : 'string',
  arg: f.arg,
  help: f.help,
  defaultText: defaultText(f),
  negatable: f.boolean,
}));

/** The run settings given as flags: converted by their field (`values`) and as typed (`typed`), by key. */
export function configValues(p: ParsedCommandLine): { values: Record<string, unknown>; typed: Record<string, unknown> } {
  const values: Record<string, unknown> = {};
  const typed: Record<string, unknown> = {};
  for (const f of RUN_CONFIG_FIELDS) {
    const v = p.values[flagName(f.key)];
    if (v === undefined) continue;
    typed[f.key] = v;
    values[f.key] = typeof v === 'boolean' ? v : f.fromFlag ? f.fromFlag(v) : v;
  }
  return { values, typed };
}

/** The `--config FILE` of `run` and `params`: a JSON object of run settings (errors name the file). */
export async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  const textContent = await readInputText(file, 'config file');
  let value: unknown;
  try {
    value = JSON.parse(textContent);
  } catch (err) {
    throw new Clap4ClipError(`the config file is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Clap4ClipError('the config file must hold a JSON object', { file });
  return value as Record<string, unknown>;
}
