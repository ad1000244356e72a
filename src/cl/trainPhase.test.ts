import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FeaturesSplit } from '../data/types.js';
import { Rng } from '../engine/random.js';
import { makeBatch, scheduledLr } from './trainPhase.js';

describe('scheduledLr', () => {
  it("'multistep': lr x gamma at each milestone epoch, k's epoch = floor(k epochs / S)", () => {
    // 15 epochs of 3 batches: epochs 0-3 at 1e-3, 4-9 at 1e-4, 10-14 at 1e-5.
    const schedule = { epochs: 15, lr: 1e-3, shape: 'multistep' as const, milestones: [4, 10], gamma: 0.1 };
    const at = (k: number): number => scheduledLr(k, 45, schedule);
    assert.equal(at(0), 1e-3);
    assert.equal(at(11), 1e-3);
    assert.ok(Math.abs(at(12) - 1e-4) < 1e-18);
    assert.ok(Math.abs(at(29) - 1e-4) < 1e-18);
    assert.ok(Math.abs(at(30) - 1e-5) < 1e-18);
    assert.ok(Math.abs(at(44) - 1e-5) < 1e-18);
    assert.throws(() => at(45), RangeError);
  });

  it('keeps the cosine shapes', () => {
    assert.equal(scheduledLr(0, 10, { epochs: 1, lr: 0.1, shape: 'cosine' }), 0.1);
    assert.ok(scheduledLr(0, 10, { epochs: 1, lr: 0.1, shape: 'warmup-cosine' }) < 0.1);
  });
});

describe('makeBatch views', () => {
  // Three samples with two views each, D = 1: view v of sample i holds 10 i + v.
  const split: FeaturesSplit = { features: Float32Array.of(0, 1, 10, 11, 20, 21), labels: Int32Array.of(0, 1, 2), n: 3, views: 2, dim: 1 };
  const labels = Int32Array.of(5, 6, 7);

  it("'first' takes view 0 of every sample and draws nothing", () => {
    const rng = new Rng(1);
    const before = JSON.stringify(rng.state());
    const b = makeBatch(split, labels, Int32Array.of(2, 0), rng, 'first');
    assert.deepEqual([...b.features], [20, 0]);
    assert.deepEqual([...b.labels], [7, 5]);
    assert.equal(JSON.stringify(rng.state()), before);
  });

  it("'random' (the default) draws one view per sample", () => {
    const rng = new Rng(1);
    const b = makeBatch(split, labels, Int32Array.of(0, 1, 2, 0, 1, 2, 0, 1), rng);
    const views = [...b.features].map((x) => x % 10);
    assert.ok(views.includes(0) && views.includes(1), `views ${views}`);
  });
});
