/**
 * The one place a run's method comes to be: built for its config, and restored from the run's
 * last checkpoint when it resumes. Everything else of the invocation takes the method from here.
 */
import type { Scenario } from '../../data/scenario.js';
import type { FeaturesDataset } from '../../data/types.js';
import type { Method, MethodContext } from '../../methods/method.js';
import { createMethod } from '../../methods/registry.js';
import { readLatestCheckpoint, type CheckpointSnapshot } from '../checkpoint.js';
import type { RunConfig } from '../config.js';
import { methodContextFor } from '../loop.js';
import { restoreMethod } from '../snapshot.js';

/** A method ready for the loop, with the context it was built with (the loop swaps evaluation noise into it). */
export interface StartedMethod {
  method: Method;
  context: MethodContext;
  /** The checkpoint restored into `method`: the loop continues after it (null: from task 0). */
  resume: CheckpointSnapshot | null;
}

/**
 * The method of `config` on `dataset` (`scenario`: its scenario, for the text in incremental
 * order). With `resumeFrom` (a run directory), the method is restored from that directory's last
 * complete checkpoint, when there is one. Bad method options and bad checkpoints fail here.
 */
export async function startMethod(config: RunConfig, dataset: FeaturesDataset, scenario: Scenario, resumeFrom: string | null): Promise<StartedMethod> {
  const snapshot = resumeFrom === null ? null : await readLatestCheckpoint(resumeFrom);
  const context = methodContextFor(config, dataset, scenario);
  const method = await createMethod(config.method, context, {
    samples: config.samples,
    batchSize: config.batchSize,
    methodOptions: config.methodOptions,
  });
  if (snapshot !== null) restoreMethod(method, context.rng, snapshot);
  return { method, context, resume: snapshot };
}
