/** The command table: name → summary and entry point. */
import type { Command } from './command.js';
import { Clap4ClipError } from '../../util/errors.js';

/** The benchmarks measure a clone of the repository (results go to --out DIR, ./bench-results by default); the npm package does not ship them. */
async function importBench(): Promise<typeof import('../../../bench/main.js')> {
  try {
    return await import('../../../bench/main.js');
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Clap4ClipError('bench runs in a clone of the clap4clip repository (`npm ci && npm run bench`); the installed package does not include the benchmarks', { cause: err });
  }
}

export type { Command } from './command.js';

export const commands: Record<string, Command> = {
  run: {
    summary: 'train and evaluate a method class-incrementally (no arguments: the synthetic benchmark comparison)',
    run: async (args) => (await import('./run.js')).runCommand(args),
  },
  synth: {
    summary: 'write the synthetic CLIP-like features dataset to a directory',
    run: async (args) => (await import('./synth.js')).synthCommand(args),
  },
  features: {
    summary: 'encode a dataset\'s images with a CLIP model into a features dataset (resumable, shardable; `features merge` joins shards)',
    run: async (args) => (await import('./features.js')).featuresCommand(args),
  },
  report: {
    summary: 'write a self-contained report.html comparing run directories (charts rendered ahead of time)',
    // Lazy: vega is large and only this command needs it.
    run: async (args) => (await import('./report.js')).reportCommand.run(args),
  },
  params: {
    summary: 'count trainable and total parameters per module and per task for a method and data',
    run: async (args) => (await import('./params.js')).paramsCommand.run(args),
  },
  forward: {
    summary: "evaluate a CLAP head in the reference's names on given inputs (parity check with PyTorch)",
    run: async (args) => (await import('./forward.js')).forwardCommand.run(args),
  },
  bench: {
    summary: 'measure the training step, feature extraction and the full protocol (JSON files in --out DIR)',
    run: async (args) => {
      // Help and argument mistakes are answered without the benchmarks, which a package lacks.
      const { BENCH_PARTS, BENCH_SPEC } = await import('./benchSpec.js');
      const { choiceValue, parseOrHelp, renderHelp } = await import('../args.js');
      const parsed = parseOrHelp(BENCH_SPEC, args);
      if (parsed.help) {
        process.stdout.write(renderHelp(BENCH_SPEC) + '\n');
        return 0;
      }
      choiceValue(BENCH_SPEC, parsed, 'only', BENCH_PARTS);
      return (await importBench()).runBench(args);
    },
  },
};
