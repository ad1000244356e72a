/**
 * `clap4clip synth --out DIR [--seed N] [--preset tiny|benchmark|default] [--overwrite]`: writes
 * the synthetic "CLIP-like" features dataset in the on-disk features format, for use elsewhere.
 */
import { writeFeaturesDataset } from '../../data/featuresDataset.js';
import { generateSyntheticDataset } from '../../data/synthetic.js';
import { SYNTHETIC_PRESET_NAMES, SYNTHETIC_PRESETS, type SyntheticPreset } from '../../run/config.js';
import { choiceValue, intValue, JSON_OPTION, parseOrHelp, QUIET_OPTION, renderHelp, requiredValue, type CommandSpec } from '../args.js';
import { inFlagTerms } from '../userTerms.js';
import { PROCESS_IO, type CommandIO } from './io.js';

const presetRows = SYNTHETIC_PRESET_NAMES.map((p) => `${p} (${SYNTHETIC_PRESETS[p].numClasses} classes, ${SYNTHETIC_PRESETS[p].trainPerClass}/${SYNTHETIC_PRESETS[p].testPerClass} per class, D = ${SYNTHETIC_PRESETS[p].dim})`);

export const SYNTH_SPEC: CommandSpec = {
  name: 'synth',
  summary: 'Write the synthetic CLIP-like features dataset (the default data of `clap4clip run`) to a directory.',
  usage: ['synth --out DIR [options]'],
  options: [
    { name: 'out', type: 'string', arg: 'DIR', help: 'directory to write manifest.json and text/train/test.safetensors into (required)' },
    { name: 'seed', type: 'string', arg: 'N', help: 'generator seed', defaultText: '0' },
    { name: 'preset', type: 'string', arg: 'NAME', help: `world size: ${presetRows.join(', ')}`, defaultText: 'default' },
    { name: 'overwrite', type: 'boolean', help: 'replace a dataset already in DIR' },
    JSON_OPTION,
    QUIET_OPTION,
  ],
  examples: ['synth --preset tiny --out feats/tiny', 'run --data feats/tiny --increment 5 --method zeroshot --out runs/feats-tiny'],
};

export function synthHelp(columns = 80): string {
  return renderHelp(SYNTH_SPEC, columns);
}

export async function synthCommand(args: string[], io: CommandIO = PROCESS_IO): Promise<number> {
  const p = parseOrHelp(SYNTH_SPEC, args);
  if (p.help) {
    io.stdout.write(synthHelp() + '\n');
    return 0;
  }
  const out = requiredValue(SYNTH_SPEC, p, 'out');
  const seed = intValue(SYNTH_SPEC, p, 'seed', 0) ?? 0;
  const preset: SyntheticPreset = choiceValue(SYNTH_SPEC, p, 'preset', SYNTHETIC_PRESET_NAMES) ?? 'default';
  const ds = generateSyntheticDataset({ ...SYNTHETIC_PRESETS[preset], seed });
  await writeFeaturesDataset(out, ds, { overwrite: p.values['overwrite'] === true }).catch((err: unknown) => {
    throw inFlagTerms(err, '{ overwrite: true }', '--overwrite');
  });
  const result = { directory: out, preset, seed, classes: ds.numClasses, train: ds.train.n, test: ds.test.n, dim: ds.manifest.dim };
  if (p.values['json'] === true) io.stdout.write(JSON.stringify(result) + '\n');
  else if (p.values['quiet'] !== true) io.stdout.write(`wrote synthetic features (preset "${preset}", seed ${seed}): ${ds.numClasses} classes, ${ds.train.n} train / ${ds.test.n} test, D = ${ds.manifest.dim} -> ${out}\n`);
  return 0;
}
