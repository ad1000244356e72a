/**
 * results.json fixtures for the report's tests, as the current writer produces them: accuracy
 * matrix, ECE, reliability bins, post-hoc calibration per step, loss curves per task, schedules
 * and provenance; `sgd: false` gives a method without training (no loss curves).
 */
export interface FixtureOptions {
  method: string;
  seed: number;
  tasks: number;
  sgd?: boolean;
}

function bins(shift: number): Record<string, number>[] {
  return Array.from({ length: 15 }, (_, b) => {
    const count = b < 4 ? 0 : 10 + b * 3 + shift;
    const conf = (b + 0.5) / 15;
    return { lower: b / 15, upper: (b + 1) / 15, count, meanConfidence: count ? conf : 0, accuracy: count ? Math.max(0, conf - 0.05 - 0.01 * shift) : 0 };
  });
}

function metrics(ece: number, shift: number) {
  return { eceDataset: ece, ecePerBatchMean: ece + 0.05, nll: 1 + ece, brier: 0.3 + ece, bins: bins(shift) };
}

export function fullResults(o: FixtureOptions): Record<string, unknown> {
  const T = o.tasks;
  const A = Array.from({ length: T }, (_, t) => Array.from({ length: t + 1 }, (_, k) => 0.9 - 0.04 * (t - k) - 0.01 * ((o.seed + k) % 3)));
  const acc = A.map((r) => r.reduce((a, b) => a + b, 0) / r.length);
  const sgd = o.sgd ?? true;
  const curve = (n: number, base: number) => ({ iteration: Array.from({ length: n }, (_, i) => (i + 1) * 4), loss: Array.from({ length: n }, (_, i) => base * (1 + 1 / (i + 1))) });
  const empty = { iteration: [], loss: [] };
  return {
    format: 'clap4clip-results',
    version: 1,
    method: o.method,
    synthetic: true,
    config: { method: o.method, seed: o.seed, data: 'synthetic', syntheticPreset: 'benchmark', batchSize: 32, memorySize: 1000, memoryKind: 'total', selector: 'random', samples: 20, evalBatching: 'mixed', calibration: 'holdout', calibrationPerClass: 10, methodOptions: {} },
    schedules: sgd ? { train: { epochs: 5, lr: 0.0016 }, finetune: { epochs: 2, lr: 0.00016 } } : { train: null, finetune: null },
    provenance: { version: '0.1.0', commit: 'f2396cf0123456789abcdef0123456789abcdef0', node: 'v20.20.2', onnxruntimeThreads: 2 },
    classOrder: Array.from({ length: T * 10 }, (_, i) => i),
    tasks: Array.from({ length: T }, (_, i) => ({ index: i, classStart: 10 * i, classEnd: 10 * (i + 1) })),
    accuracyMatrix: A,
    stepAccuracy: acc,
    averageAccuracy: acc.reduce((a, b) => a + b, 0) / T,
    lastAccuracy: acc[T - 1],
    backwardTransfer: T > 1 ? -0.05 : null,
    forgetting: T > 1 ? 0.06 : null,
    ece: { perBatchMean: acc.map((a) => 0.25 * (1 - a)), dataset: acc.map((a) => 0.2 * (1 - a)), bins: 15, evalBatching: 'mixed' },
    evalBatching: 'mixed',
    reliability: acc.map((_, s) => ({ step: s, bins: bins(s) })),
    calibration: {
      source: 'holdout',
      perClass: 10,
      heldOut: acc.map(() => 100),
      steps: acc.map((a, s) => ({ step: s, source: 'holdout', samples: 100 * (s + 1), temperature: 1.5 + 0.1 * s + 0.01 * o.seed, fitNll: { before: 1.2, after: 0.9 }, raw: metrics(0.2 * (1 - a), 0), calibrated: metrics(0.02 + 0.001 * s, 1) })),
    },
    novelty: [],
    noveltyMean: {},
    timing: acc.map(() => 2.5),
    totalSeconds: 2.5 * T,
    steps: acc.map((_, t) => ({ task: t, memorySize: sgd ? 100 * (t + 1) : 0, lossCurve: sgd ? { train: curve(10, 2 + t), finetune: t > 0 ? curve(5, 1.5 + t) : empty } : { train: empty, finetune: empty } })),
    createdAt: '2026-12-06T04:00:00.000Z',
  };
}
