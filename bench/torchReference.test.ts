/**
 * The PyTorch twin's output is parsed into figures, and failures become a stated reason instead of
 * an exception (a machine without PyTorch still benchmarks this engine). A stand-in script prints
 * what bench/torch_step.py prints.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stepGflop } from './scaling.js';
import { measureTorchGrid, measureTorchStep } from './torchReference.js';

function withStandIn(python: string, fn: () => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'torch-standin-'));
  const previous = process.env['CLAP4CLIP_TORCH_STEP'];
  process.env['CLAP4CLIP_TORCH_STEP'] = join(dir, 'torch_step.py');
  writeFileSync(process.env['CLAP4CLIP_TORCH_STEP'], python);
  try {
    fn();
  } finally {
    if (previous === undefined) delete process.env['CLAP4CLIP_TORCH_STEP'];
    else process.env['CLAP4CLIP_TORCH_STEP'] = previous;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('measureTorchStep reads the median, min, max and CPU ms of the step line', () => {
  withStandIn(`print('torch 1.13.0 threads=1 step: median 48.8 ms (min 47.0, max 60.2, n=30) cpu 47.9 ms loss=0.2133')\n`, () => {
    const r = measureTorchStep(30);
    assert.ok('medianMs' in r, JSON.stringify(r));
    assert.deepEqual([r.version, r.medianMs, r.minMs, r.maxMs, r.cpuMedianMs], ['1.13.0', 48.8, 47.0, 60.2, 47.9]);
  });
});

test('measureTorchGrid gives one figure per shape, in order, and names missing shapes', () => {
  const shapes = [{ classes: 100, samples: 20, dim: 512 }, { classes: 1000, samples: 1, dim: 768 }];
  const line = (c: number, ms: number) => `{"torch": "1.13.0", "classes": ${c}, "samples": 20, "dim": 512, "medianMs": ${ms}, "minMs": 1, "maxMs": 9, "cpuMedianMs": ${ms - 1}, "loss": 0.2}`;
  withStandIn(`import sys\nassert sys.argv[1:] == ['grid', '7', '100,20,512', '1000,1,768'], sys.argv\nprint('${line(100, 50)}')\nprint('${line(1000, 400)}')\n`, () => {
    const rs = measureTorchGrid(7, shapes);
    assert.deepEqual(rs.map((r) => ('medianMs' in r ? [r.medianMs, r.cpuMedianMs] : r.unavailable)), [[50, 49], [400, 399]]);
  });
  withStandIn(`print('${line(100, 50)}')\n`, () => {
    const rs = measureTorchGrid(7, shapes);
    assert.ok('medianMs' in rs[0]!);
    assert.deepEqual(rs[1], { unavailable: 'PyTorch grid printed 1 of 2 shapes' });
  });
  withStandIn(`raise SystemExit('no torch here')\n`, () => {
    const rs = measureTorchGrid(7, shapes);
    assert.ok(rs.every((r) => 'unavailable' in r && /PyTorch step failed .*no torch here/.test(r.unavailable)), JSON.stringify(rs));
  });
});

test('stepGflop counts the step products by hand at the default shape', () => {
  // Forward multiply-adds at C = 100, B = 32, D = 512, F = 2048, T = 20:
  // self-attention 100*512*1536 + 2*100*100*512 + 100*512*512 = 115,097,600
  // cross-attention 100*512*512 + 32*512*1024 + 2*100*32*512 + 100*512*512 = 72,482,816
  // feed-forward 2*100*512*2048 = 209,715,200; encoders 2*100*512*512 = 52,428,800; logits 20*100*32*512 = 32,768,000
  const macs = 115_097_600 + 72_482_816 + 209_715_200 + 52_428_800 + 32_768_000; // 482,492,416
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(stepGflop({ classes: 100, samples: 20, dim: 512 }), (3 * 2 * macs) / 1e9);
  // The logits alone grow with T: T = 1 drops 19 * 100 * 32 * 512 multiply-adds.
  close(stepGflop({ classes: 100, samples: 20, dim: 512 }) - stepGflop({ classes: 100, samples: 1, dim: 512 }), (3 * 2 * 19 * 100 * 32 * 512) / 1e9);
});
