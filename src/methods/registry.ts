/**
 * One table of methods: name -> description and factory. The CLI, the config validation and the
 * run loop all go through it, so a method is added in one place.
 */
import { Clap4ClipError } from '../util/errors.js';
import type { ClapConfigInput } from './clap/config.js';
import { CLIP_ADAPTER_DEFAULTS, createClipAdapter, type ClipAdapterOptions } from './clipAdapter.js';
import type { Method, MethodContext } from './method.js';
import { createZeroShot } from './zeroShot.js';

/** What a factory gets besides the frozen inputs: run-level settings and method-specific options. */
export interface MethodBuildOptions {
  /** Monte-Carlo samples T (probabilistic methods). */
  samples: number;
  /** Training batch size (the reference scales CLAP's lr with it). */
  batchSize: number;
  /** Method-specific options, validated by the method. */
  methodOptions: Record<string, unknown>;
}

export interface MethodEntry {
  description: string;
  create(ctx: MethodContext, options: MethodBuildOptions): Promise<Method>;
}

/** CLAP's config input: run-level T and B, then the method options (validated by CLAP). */
function clapInput(options: MethodBuildOptions): ClapConfigInput {
  return { samples: options.samples, batchSize: options.batchSize, ...options.methodOptions } as ClapConfigInput;
}

function clipAdapterOptions(given: Record<string, unknown>): Partial<ClipAdapterOptions> {
  const known = Object.keys(CLIP_ADAPTER_DEFAULTS);
  for (const [k, v] of Object.entries(given)) {
    if (!known.includes(k)) throw new Clap4ClipError(`clip-adapter: unknown option "${k}": must be one of [${known.join(', ')}]`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Clap4ClipError(`clip-adapter: option "${k}" must be a number >= 0, got ${JSON.stringify(v)}`);
  }
  return given as Partial<ClipAdapterOptions>;
}

export const methods: Record<string, MethodEntry> = {
  clap: {
    description: 'CLAP4CLIP: VGA + per-task variational encoders, CE + KL + LASP (spec 2-5)',
    // Imported on use: the VGA and encoders load only when a CLAP method is run.
    create: async (ctx, options) => (await import('./clap/clap.js')).createClap(ctx, clapInput(options)),
  },
  'clap-deterministic': {
    description: 'CLAP ablation without sampling (mu only)',
    create: async (ctx, options) => (await import('./clapDeterministic.js')).createClapDeterministic(ctx, clapInput(options)),
  },
  zeroshot: {
    description: 'Continual-CLIP zero-shot: 100 f t^T, nothing trained',
    create: async (ctx, options) => {
      const extra = Object.keys(options.methodOptions);
      if (extra.length > 0) throw new Clap4ClipError(`zeroshot takes no method options, got [${extra.join(', ')}]`);
      return createZeroShot(ctx);
    },
  },
  'clip-adapter': {
    description: 'CLIP-Adapter: residual bottleneck MLP on image features, CE, fresh adapter per task',
    create: async (ctx, options) => createClipAdapter(ctx, clipAdapterOptions(options.methodOptions)),
  },
};

export const METHOD_REGISTRY_NAMES = Object.keys(methods);

export function getMethodEntry(name: string): MethodEntry {
  const entry = methods[name];
  if (entry === undefined) throw new Clap4ClipError(`unknown method "${name}": must be one of [${METHOD_REGISTRY_NAMES.join(', ')}]`);
  return entry;
}

export async function createMethod(name: string, ctx: MethodContext, options: MethodBuildOptions): Promise<Method> {
  return getMethodEntry(name).create(ctx, options);
}
