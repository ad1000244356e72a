/**
 * The one table of methods: name -> description, source and factory. The command line, the
 * config validation, the run loop and the library all go through it, so adding a method is its
 * own file plus one row here. Each method checks its own options in its own file.
 */
import { Clap4ClipError } from '../util/errors.js';
import type { ClapConfigInput } from './clap/config.js';
import { createClipAdapter } from './clipAdapter.js';
import type { Method, MethodSetup } from './method.js';
import { createZeroShot } from './zeroShot.js';

export interface MethodEntry {
  description: string;
  /** Where its equations come from (paper, reference code). */
  source: string;
  create(setup: MethodSetup): Promise<Method>;
}

/** CLAP's config input: run-level T and B, then the method options (validated by CLAP). */
function clapInput(setup: MethodSetup): ClapConfigInput {
  return { samples: setup.samples, batchSize: setup.batchSize, ...setup.methodOptions } as ClapConfigInput;
}

const table = {
  clap: {
    description: 'CLAP4CLIP: probabilistic finetuning (visual-guided attention and one variational encoder per task)',
    source: 'Jha, Gong, Yao, NeurIPS 2024; github.com/srvCodes/clap4clip',
    // Imported on use: the VGA and encoders load only when a CLAP method is run.
    create: async (setup: MethodSetup) => (await import('./clap/clap.js')).createClap(setup, clapInput(setup)),
  },
  'clap-deterministic': {
    description: 'CLAP ablation without sampling (mu only)',
    source: 'Jha, Gong, Yao, NeurIPS 2024, the "w/o probabilistic" ablation',
    create: async (setup: MethodSetup) => (await import('./clapDeterministic.js')).createClapDeterministic(setup, clapInput(setup)),
  },
  zeroshot: {
    description: 'Continual-CLIP: CLIP zero-shot (scaled image-text cosine similarity), nothing trained',
    source: 'Thengane et al. 2022, "CLIP model is an efficient continual learner"',
    create: async (setup: MethodSetup) => createZeroShot(setup),
  },
  'clip-adapter': {
    description: 'CLIP-Adapter: a residual bottleneck MLP on image features, a fresh adapter per task',
    source: 'Gao et al. 2021, "CLIP-Adapter"; as run in the CLAP4CLIP reference code',
    create: async (setup: MethodSetup) => createClipAdapter(setup),
  },
  simplecil: {
    description: 'SimpleCIL: cosine prototype classifier, class means of the image features, nothing trained',
    source: 'Zhou et al. 2023, "Revisiting class-incremental learning with pre-trained models"; github.com/zhoudw-zdw/RevisitingCIL, LAMDA-CL/C3Box',
    create: async (setup: MethodSetup) => (await import('./simplecil.js')).createSimpleCil(setup),
  },
  ranpac: {
    description: 'RanPAC (no Phase 1): ReLU random projection (M = 10000), ridge readout on accumulated Gram statistics',
    source: 'McDonnell et al., NeurIPS 2023, "RanPAC"; github.com/RanPAC/RanPAC',
    create: async (setup: MethodSetup) => (await import('./ranpac/ranpac.js')).createRanPac(setup),
  },
  'cca-cl': {
    description: 'CCA-CL without finetuning: closed-form CCA of random Fourier features of image and text features, exemplar-free',
    source: 'github.com/zhwhu/CCA-CL models/ccacl.py, utils/inc_net.py (no-FTT variant); src/methods/ccaCl/ccaCl.ts',
    create: async (setup: MethodSetup) => (await import('./ccaCl/ccaCl.js')).createCcaCl(setup),
  },
  rapf: {
    description: 'RAPF: linear adapter on frozen features, text-guided hinge loss, Gaussian pseudo-feature replay, SVD parameter fusion (exemplar-free)',
    source: 'Huang et al., ECCV 2024; github.com/linlany/RAPF',
    create: async (setup: MethodSetup) => (await import('./rapf/rapf.js')).createRapf(setup),
  },
} satisfies Record<string, MethodEntry>;

/** A method's name: a key of the table above (the type of `createClassifier`'s `method`). */
export type MethodName = keyof typeof table;

export const methods: Readonly<Record<string, MethodEntry>> = Object.freeze(table);

/** Every method name, in registry order. */
export const METHOD_NAMES: readonly MethodName[] = Object.freeze(Object.keys(table) as MethodName[]);

export function getMethodEntry(name: string): MethodEntry {
  const entry = Object.hasOwn(methods, name) ? methods[name] : undefined;
  if (entry === undefined) throw new Clap4ClipError(`unknown method "${name}": must be one of [${METHOD_NAMES.join(', ')}]`);
  return entry;
}

export async function createMethod(name: string, setup: MethodSetup): Promise<Method> {
  return getMethodEntry(name).create(setup);
}
