/**
 * The options of `clap4clip bench`, apart from the benchmarks themselves (which only a clone of the
 * repository has), so its help and its argument errors work in an installed package too.
 */
import { JSON_OPTION, QUIET_OPTION, type CommandSpec } from '../args.js';

export const BENCH_PARTS = ['engine', 'scaling', 'protocol', 'features', 'linalg'] as const;

export const BENCH_SPEC: CommandSpec = {
  name: 'bench',
  summary: 'Measure the engine and the pipeline, and write the figures as JSON: engine.json (the CLAP-shaped training step, against PyTorch when /usr/bin/python3 has it), scaling.json (the step for 100 to 1000 classes, 1 to 20 samples, D = 512 and 768, each against PyTorch), features.json (feature extraction on a random ViT-B/16-sized tower, builds a 345 MB model once), protocol.json (the full CIFAR-100-sized protocol per method: about 10 minutes for clap, 25 s for simplecil, about 45 minutes for ranpac at M = 10000 on busy shared cores), linalg.json (float64 Cholesky and solve at RanPAC\'s sizes).',
  usage: ['bench [options]'],
  description: ['The benchmarks run in a clone of the repository (`npm ci && npm run bench`); the installed package does not include them.'],
  options: [
    { name: 'only', type: 'string', arg: BENCH_PARTS.join('|'), help: 'run one benchmark' },
    { name: 'out', type: 'string', arg: 'DIR', help: 'directory for the JSON files', defaultText: 'bench-results in the current directory' },
    { name: 'steps', type: 'string', arg: 'N', help: 'measured training steps of the engine benchmark', defaultText: '30' },
    { name: 'warmup', type: 'string', arg: 'N', help: 'warm-up steps of the engine benchmark', defaultText: '5' },
    { name: 'no-torch', type: 'boolean', help: 'do not measure the PyTorch step' },
    { name: 'methods', type: 'string', arg: 'A,B,...', help: 'methods of the protocol benchmark', defaultText: 'every method' },
    JSON_OPTION,
    QUIET_OPTION,
  ],
  examples: ['bench --only engine --steps 3 --warmup 1 --no-torch --out bench-results'],
};

