/**
 * CLAP's hyper-parameters, with the reference's values as defaults (spec sections 2-5), and the
 * optional components of spec section 4 as switches, all off by default.
 *
 * `validateClapConfig(partial)` is the only way to build a config: it fills defaults, rejects
 * unknown keys (suggesting the closest known one), wrong types and out-of-range values, and
 * returns a frozen, fully specified `ClapConfig` that can be printed, hashed and saved.
 */
import { Clap4ClipError } from '../../util/errors.js';

/** The visual-guided attention layer (one `TransformerDecoderLayer`). */
export interface VgaConfig {
  /** Attention heads (reference: 1). Must divide D. */
  heads: number;
  /** Feed-forward width (PyTorch default 2048). */
  ffDim: number;
  /** Dropout everywhere in the layer while learning a new task (0.1). */
  dropout: number;
}

/**
 * Prior of the KL term.
 * - `standard`: N(0, I) (the default).
 * - `dataDriven`: the task's own encoder applied to t + VGA(t, a random `contextSize` share of
 *   the batch) (reference `--use-np-prior`, `--context-size 0.67`); gradients flow through it as
 *   in the reference. Works for every task (the reference crashes after task 1).
 * - `frozen`: the task's encoder applied to Ebar = mean_p e (reference `--frozen-prior`), detached.
 */
export type PriorConfig =
  | { kind: 'standard' }
  | { kind: 'dataDriven'; contextSize: number }
  | { kind: 'frozen' };

/** Hierarchical global encoder over all classes (reference `--hierarchical`, `--distill`). */
export interface HierarchicalConfig {
  enabled: boolean;
  /** Samples of the global encoder T_g (reference `--forward-times-global` 10); predictions carry T * T_g samples. */
  globalSamples: number;
  /** MSE weight between the previous model's global means and the current ones on old classes (0.3; 0 = off). */
  distillWeight: number;
}

/** Ortho loss: CE of the similarity matrix of per-class mean offsets (reference `--ortho-loss`). */
export interface OrthoLossConfig {
  enabled: boolean;
  /** Weight (reference: 5). */
  weight: number;
}

export interface ClapConfig {
  /** Monte-Carlo samples T (reference README: 20). */
  samples: number;
  /** beta, the weight of the LASP term (15; 0 turns LASP off). */
  laspWeight: number;
  /** Weight of each KL term (0.001). */
  klWeight: number;
  /** Learning rate of a new task; default 1e-3 * batchSize / 20 (= 1.6e-3 for B = 32), as the reference. */
  lr: number;
  /** Epochs per task (5). */
  epochs: number;
  /** Epochs of class-balanced finetuning on the memory (2). */
  finetuneEpochs: number;
  /** Finetuning learning rate = lr * finetuneLrFactor (0.1). */
  finetuneLrFactor: number;
  /** Batch size B (32). */
  batchSize: number;
  vga: VgaConfig;
  /** sigma = softplus(.) * (1 - sigmaFloor) + sigmaFloor (0.001). */
  sigmaFloor: number;
  /** Learnable task tokens appended to the VGA queries (reference `--expandable-tokens`). */
  taskTokens: boolean;
  hierarchical: HierarchicalConfig;
  orthoLoss: OrthoLossConfig;
  prior: PriorConfig;
}

/** Deep-partial input of `validateClapConfig` (the prior is given whole: its `kind` decides its keys). */
export type ClapConfigInput = Partial<Omit<ClapConfig, 'vga' | 'hierarchical' | 'orthoLoss' | 'prior'>> & {
  vga?: Partial<VgaConfig>;
  hierarchical?: Partial<HierarchicalConfig>;
  orthoLoss?: Partial<OrthoLossConfig>;
  prior?: { kind: 'standard' } | { kind: 'dataDriven'; contextSize?: number } | { kind: 'frozen' };
};

/** Reference learning rate for batch size B: 1e-3 * B / 20. */
export function referenceLr(batchSize: number): number {
  return (1e-3 * batchSize) / 20;
}

export const DEFAULT_CLAP_CONFIG: Readonly<ClapConfig> = deepFreeze({
  samples: 20,
  laspWeight: 15,
  klWeight: 0.001,
  lr: referenceLr(32),
  epochs: 5,
  finetuneEpochs: 2,
  finetuneLrFactor: 0.1,
  batchSize: 32,
  vga: { heads: 1, ffDim: 2048, dropout: 0.1 },
  sigmaFloor: 0.001,
  taskTokens: false,
  hierarchical: { enabled: false, globalSamples: 10, distillWeight: 0.3 },
  orthoLoss: { enabled: false, weight: 5 },
  prior: { kind: 'standard' },
});

/** An invalid CLAP configuration; `path` is the dotted key (`vga.dropout`). */
export class ClapConfigError extends Clap4ClipError {
  constructor(readonly path: string, problem: string) {
    super(`clap config: ${path}: ${problem}`);
  }
}

type Check = (path: string, v: unknown) => void;

const int = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (path, v) => {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ClapConfigError(path, `must be an integer, got ${show(v)}`);
  if (v < min || v > max) throw new ClapConfigError(path, `must be in [${min}, ${max}], got ${v}`);
};

/** A finite number in [min, max] (or [min, max) with `maxOpen`; (min, ...] with `minOpen`). */
const num = (min: number, max: number, o: { minOpen?: boolean; maxOpen?: boolean } = {}): Check => (path, v) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ClapConfigError(path, `must be a finite number, got ${show(v)}`);
  const lo = o.minOpen ? v > min : v >= min;
  const hi = o.maxOpen ? v < max : v <= max;
  if (!lo || !hi) throw new ClapConfigError(path, `must be in ${o.minOpen ? '(' : '['}${min}, ${max}${o.maxOpen ? ')' : ']'}, got ${v}`);
};

const bool: Check = (path, v) => {
  if (typeof v !== 'boolean') throw new ClapConfigError(path, `must be a boolean, got ${show(v)}`);
};

const TOP: Record<string, Check> = {
  samples: int(1, 10_000),
  laspWeight: num(0, 1e6),
  klWeight: num(0, 1e6),
  lr: num(0, 10, { minOpen: true }),
  epochs: int(1, 100_000),
  finetuneEpochs: int(0, 100_000),
  finetuneLrFactor: num(0, 1e3, { minOpen: true }),
  batchSize: int(1, 1_000_000),
  sigmaFloor: num(0, 1, { minOpen: true, maxOpen: true }),
  taskTokens: bool,
};
const VGA: Record<string, Check> = { heads: int(1, 4096), ffDim: int(1, 1 << 20), dropout: num(0, 1, { maxOpen: true }) };
const HIER: Record<string, Check> = { enabled: bool, globalSamples: int(1, 10_000), distillWeight: num(0, 1e6) };
const ORTHO: Record<string, Check> = { enabled: bool, weight: num(0, 1e6) };
const PRIOR_KINDS = ['standard', 'dataDriven', 'frozen'] as const;
const NESTED = ['vga', 'hierarchical', 'orthoLoss', 'prior'];

/**
 * Fills defaults and checks every field.
 * @throws ClapConfigError naming the key: unknown keys (with the closest known key), wrong types,
 *   out-of-range values.
 */
export function validateClapConfig(partial: unknown = {}): ClapConfig {
  const p = asRecord('', partial);
  checkKeys('', p, [...Object.keys(TOP), ...NESTED]);
  const out: Record<string, unknown> = {};
  for (const [k, check] of Object.entries(TOP)) {
    if (k === 'lr') continue;
    out[k] = k in p && p[k] !== undefined ? (check(k, p[k]), p[k]) : DEFAULT_CLAP_CONFIG[k as keyof ClapConfig];
  }
  // The reference scales the base rate 1e-3 by B / 20; an explicit lr wins.
  if (p['lr'] !== undefined) TOP['lr']!('lr', p['lr']);
  out['lr'] = p['lr'] ?? referenceLr(out['batchSize'] as number);
  out['vga'] = section('vga', p['vga'], VGA, DEFAULT_CLAP_CONFIG.vga);
  out['hierarchical'] = section('hierarchical', p['hierarchical'], HIER, DEFAULT_CLAP_CONFIG.hierarchical);
  out['orthoLoss'] = section('orthoLoss', p['orthoLoss'], ORTHO, DEFAULT_CLAP_CONFIG.orthoLoss);
  out['prior'] = prior(p['prior']);
  return deepFreeze(out as unknown as ClapConfig);
}

function section(path: string, value: unknown, checks: Record<string, Check>, defaults: object): object {
  const v = value === undefined ? {} : asRecord(path, value);
  checkKeys(path, v, Object.keys(checks));
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, check] of Object.entries(checks)) {
    if (v[k] !== undefined) {
      check(`${path}.${k}`, v[k]);
      out[k] = v[k];
    }
  }
  return out;
}

function prior(value: unknown): PriorConfig {
  if (value === undefined) return { kind: 'standard' };
  const v = asRecord('prior', value);
  const kind = v['kind'];
  if (typeof kind !== 'string' || !(PRIOR_KINDS as readonly string[]).includes(kind)) {
    const hint = typeof kind === 'string' ? suggestion(kind, PRIOR_KINDS) : '';
    throw new ClapConfigError('prior.kind', `must be one of [${PRIOR_KINDS.join(', ')}], got ${show(kind)}${hint}`);
  }
  if (kind === 'dataDriven') {
    checkKeys('prior', v, ['kind', 'contextSize']);
    const contextSize = v['contextSize'] ?? 0.67;
    num(0, 1, { minOpen: true })('prior.contextSize', contextSize);
    return { kind, contextSize: contextSize as number };
  }
  checkKeys('prior', v, ['kind']);
  return { kind: kind as 'standard' | 'frozen' };
}

function asRecord(path: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ClapConfigError(path || '(root)', `must be an object, got ${show(v)}`);
  }
  return v as Record<string, unknown>;
}

function checkKeys(path: string, v: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      const where = path === '' ? k : `${path}.${k}`;
      throw new ClapConfigError(where, `unknown key${suggestion(k, known)}; known keys: ${known.join(', ')}`);
    }
  }
}

/** ` (did you mean "x"?)` for the closest known name within a small edit distance, else ''. */
function suggestion(name: string, known: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) { bestD = d; best = k; }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean "${best}"?)` : '';
}

/** Levenshtein distance (two-row dynamic programme). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
