/**
 * How the cost of the CLAP step grows with the work: the step of bench/clapStep.ts for C = 100,
 * 200, 500, 1000 classes (CIFAR-100; ImageNet-R and CUB-200; ImageNet-1k), T = 1, 5, 20 samples
 * and D = 512, 768 (ViT-B, ViT-L/14 text width), each against its PyTorch twin (bench/torch_step.py
 * `grid`, one OpenBLAS thread, the launcher's malloc settings) measured in the same run: PyTorch
 * before and after this engine, averaged, so slow drift of the machine's load cancels.
 */
import { createClapStep } from './clapStep.js';
import { medianStepMs } from './stats.js';
import { measureTorchGrid, type GridShape, type TorchResult } from './torchReference.js';

/** One axis varies at a time around the default shape (C = 100, T = 20, D = 512). */
export const SCALING_GRID: readonly GridShape[] = [
  { classes: 100, samples: 20, dim: 512 },
  { classes: 200, samples: 20, dim: 512 },
  { classes: 500, samples: 20, dim: 512 },
  { classes: 1000, samples: 20, dim: 512 },
  { classes: 100, samples: 1, dim: 512 },
  { classes: 100, samples: 5, dim: 512 },
  { classes: 100, samples: 20, dim: 768 },
];

export interface ScalingRow extends GridShape {
  /** Multiply-adds x 2 of the step's matrix products (forward and backward), in GFLOP. */
  gflop: number;
  /** Wall ms per step (median), and the ratio to the PyTorch twin's. */
  ms: number;
  torchMs: number | null;
  ratioToTorch: number | null;
  /** Process CPU ms per step (median), and the ratio to the twin's: robust to time-slicing. */
  cpuMs: number;
  torchCpuMs: number | null;
  cpuRatioToTorch: number | null;
  torch: { before: TorchResult; after: TorchResult };
}

/**
 * FLOPs of the step's products (B = 32, F = 2048): attention projections, scores and outputs,
 * the feed-forward block, the two encoders and the sampled logits; backward is twice forward.
 */
export function stepGflop({ classes: c, samples: t, dim: d }: GridShape, batch = 32, ff = 2048): number {
  const forward = c * d * 3 * d + c * c * d * 2 + c * d * d // self-attention
    + c * d * d + batch * d * 2 * d + c * batch * d * 2 + c * d * d // cross-attention
    + 2 * c * d * ff // feed-forward
    + 2 * c * d * d // mu and sigma encoders
    + t * c * batch * d; // sampled logits
  return (3 * 2 * forward) / 1e9;
}

export function measureScaling(steps: number, withTorch: boolean): ScalingRow[] {
  const skipped: TorchResult = { unavailable: 'skipped (--no-torch)' };
  const tuned = { mallocTunables: true };
  const before = withTorch ? measureTorchGrid(steps, SCALING_GRID, tuned) : SCALING_GRID.map(() => skipped);
  const ours = SCALING_GRID.map((shape) => {
    const { step } = createClapStep({ ...shape, batch: 32 });
    return medianStepMs(step, steps, 3);
  });
  const after = withTorch ? measureTorchGrid(steps, SCALING_GRID, tuned) : SCALING_GRID.map(() => skipped);
  return SCALING_GRID.map((shape, i) => {
    const b = before[i]!, a = after[i]!, { ms, cpuMs } = ours[i]!;
    const both = 'medianMs' in b && 'medianMs' in a;
    const torchMs = both ? (b.medianMs + a.medianMs) / 2 : null;
    const torchCpuMs = both ? (b.cpuMedianMs + a.cpuMedianMs) / 2 : null;
    return {
      ...shape, gflop: stepGflop(shape),
      ms, torchMs, ratioToTorch: torchMs === null ? null : ms / torchMs,
      cpuMs, torchCpuMs, cpuRatioToTorch: torchCpuMs === null ? null : cpuMs / torchCpuMs,
      torch: { before: b, after: a },
    };
  });
}
