/**
 * `clap4clip synth --out DIR [--seed N] [--preset tiny|benchmark|default] [--overwrite]`: writes
 * the synthetic "CLIP-like" features dataset in the on-disk features format, for use elsewhere.
 */
import { writeFeaturesDataset } from '../../data/featuresDataset.js';
import { generateSyntheticDataset } from '../../data/synthetic.js';
import { didYouMean, SYNTHETIC_PRESET_NAMES, SYNTHETIC_PRESETS, type SyntheticPreset } from '../../run/config.js';
import { Clap4ClipError } from '../../util/errors.js';
import { PROCESS_IO, type CommandIO } from './io.js';

export function synthHelp(): string {
  return [
    'Usage: clap4clip synth --out DIR [--seed N] [--preset tiny|benchmark|default] [--overwrite]',
    '',
    '  --out DIR        directory to write manifest.json, text/train/test.safetensors into',
    '  --seed N         generator seed (default 0)',
    `  --preset NAME    ${SYNTHETIC_PRESET_NAMES.map((p) => `${p} (${SYNTHETIC_PRESETS[p].numClasses} classes, ${SYNTHETIC_PRESETS[p].trainPerClass}/${SYNTHETIC_PRESETS[p].testPerClass} per class, D = ${SYNTHETIC_PRESETS[p].dim})`).join(', ')}; default "default"`,
    '  --overwrite      replace a dataset already in DIR',
  ].join('\n');
}

export async function synthCommand(args: string[], io: CommandIO = PROCESS_IO): Promise<number> {
  let out: string | null = null;
  let seed = 0;
  let preset: SyntheticPreset = 'default';
  let overwrite = false;
  const known = ['--out', '--seed', '--preset', '--overwrite', '--help'];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq >= 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new Clap4ClipError(`synth: option ${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') {
      io.stdout.write(synthHelp() + '\n');
      return 0;
    } else if (flag === '--out') out = value();
    else if (flag === '--seed') {
      const v = value();
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new Clap4ClipError(`synth: --seed must be a non-negative integer, got "${v}"`);
      seed = Number(v);
    } else if (flag === '--preset') {
      const v = value();
      if (!(SYNTHETIC_PRESET_NAMES as string[]).includes(v)) throw new Clap4ClipError(`synth: --preset must be one of [${SYNTHETIC_PRESET_NAMES.join(', ')}], got "${v}"`);
      preset = v as SyntheticPreset;
    } else if (flag === '--overwrite') overwrite = true;
    else {
      const hint = didYouMean(flag, known);
      throw new Clap4ClipError(`synth: unknown option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}; see clap4clip synth --help`);
    }
  }
  if (out === null) throw new Clap4ClipError('synth: --out DIR is required');
  const ds = generateSyntheticDataset({ ...SYNTHETIC_PRESETS[preset], seed });
  await writeFeaturesDataset(out, ds, { overwrite });
  io.stdout.write(`wrote synthetic features (preset "${preset}", seed ${seed}): ${ds.numClasses} classes, ${ds.train.n} train / ${ds.test.n} test, D = ${ds.manifest.dim} -> ${out}\n`);
  return 0;
}
