/** The dataset of a run config: the synthetic world generated in memory, or a features directory. */
import { loadFeaturesDataset, validateFeaturesDataset } from '../../data/featuresDataset.js';
import { generateSyntheticDataset } from '../../data/synthetic.js';
import type { FeaturesDataset } from '../../data/types.js';
import { SYNTHETIC_PRESETS, type RunConfig } from '../config.js';

export async function loadRunData(config: RunConfig): Promise<FeaturesDataset> {
  if (config.data !== 'synthetic') return loadFeaturesDataset(config.data);
  // The world is fixed (seed 0 unless overridden); the run seed changes order, init and noise.
  const ds = generateSyntheticDataset({ ...SYNTHETIC_PRESETS[config.syntheticPreset], ...config.syntheticOptions });
  validateFeaturesDataset(ds, { dir: 'synthetic' });
  return ds;
}
