/**
 * A training step must not leak: after warm-up, thousands of CLAP-shaped steps (VGA forward and
 * backward with dropout, encoders, T samples, CE + KL, SGD) leave the JavaScript heap and the
 * process's resident memory flat. Sizes are small so the test stays fast; the code path is the
 * benchmark's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createClapStep } from '../bench/clapStep.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function settledMemory(): { heap: number; rss: number } {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

test('memory stays flat over 5000 training steps', () => {
  const { step } = createClapStep({ classes: 20, batch: 8, samples: 5, dim: 64, ffDim: 128 }, 3);
  // The allocator and onnxruntime's arena grow to a plateau during the first steps.
  for (let i = 0; i < 1000; i++) step();
  const before = settledMemory();
  let loss = 0;
  for (let i = 0; i < 5000; i++) loss = step().loss;
  const after = settledMemory();
  assert.ok(Number.isFinite(loss), `loss ${loss}`);
  const heapGrowthMB = (after.heap - before.heap) / 2 ** 20;
  const rssGrowthMB = (after.rss - before.rss) / 2 ** 20;
  // Keeping one [C, D] tensor per step alive would add 5000 * 5 KB = 25 MB of heap; an unreleased
  // native buffer of the [T, B, C] logits per step would add 16 MB of resident memory per 5000
  // steps, a [T, C, D] sample tensor 125 MB. Allocator noise after the plateau stays under ~20 MB.
  assert.ok(heapGrowthMB < 2, `heap grew by ${heapGrowthMB.toFixed(2)} MB`);
  assert.ok(rssGrowthMB < 48, `resident memory grew by ${rssGrowthMB.toFixed(2)} MB`);
});
