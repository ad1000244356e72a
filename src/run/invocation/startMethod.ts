/**
 * The one place a run's method comes to be: built for its config, and restored from the run's
 * last checkpoint when it resumes. Everything else of the invocation takes the method from here.
 */
import type { FeaturesDataset } from '../../data/types.js';
import type { Method } from '../../methods/method.js';
import { createMethod } from '../../methods/registry.js';
import { readLatestCheckpoint, type CheckpointSnapshot } from '../checkpoint.js';
import type { RunConfig } from '../config.js';
import { methodSetupFor } from '../loop.js';
import { restoreMethod } from '../snapshot.js';

/** A method ready for the loop. */
export interface StartedMethod {
  method: Method;
  /** The checkpoint restored into `method`: the loop continues after it (null: from task 0). */
  resume: CheckpointSnapshot | null;
}

/**
 * The method of `config` on `dataset`. With `resumeFrom` (a run directory), the method is restored
 * from that directory's last complete checkpoint, when there is one. Bad method options and bad
 * checkpoints fail here.
 */
export async function startMethod(config: RunConfig, dataset: FeaturesDataset, resumeFrom: string | null): Promise<StartedMethod> {
  const snapshot = resumeFrom === null ? null : await readLatestCheckpoint(resumeFrom);
  const method = await createMethod(config.method, methodSetupFor(config, dataset));
  if (snapshot !== null) restoreMethod(method, snapshot);
  return { method, resume: snapshot };
}
