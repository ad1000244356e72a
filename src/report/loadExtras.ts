/**
 * The optional parts of results.json the report shows when a run recorded them: post-hoc
 * calibration per step, training loss curves per task, the SGD schedules as run and the
 * provenance. Files written before these existed lack them and still load (null / empty); a part
 * that is present is checked like the rest, naming the file and key on a problem.
 */
import type { Checker, Obj, ReliabilityBinRecord } from './loadResults.js';

/** Calibration quality of the test predictions at one temperature. */
export interface CalibrationMetricsRecord {
  eceDataset: number;
  ecePerBatchMean: number;
  nll: number;
  brier: number;
  bins: ReliabilityBinRecord[];
}

export interface CalibrationStepRecord {
  step: number;
  /** Samples the temperature was fitted on. */
  samples: number;
  temperature: number;
  raw: CalibrationMetricsRecord;
  calibrated: CalibrationMetricsRecord;
}

export interface CalibrationRecord {
  /** Where T was fitted: `holdout`, `memory` (or `none`). */
  source: string;
  /** Held-out training samples per class (null unless `holdout`). */
  perClass: number | null;
  /** Training samples held out per task. */
  heldOut: number[];
  steps: CalibrationStepRecord[];
}

/** The thinned training loss of one phase of one task. */
export interface LossCurveRecord {
  task: number;
  phase: 'train' | 'finetune';
  /** 1-based iteration within the phase at the end of each averaging window. */
  iteration: number[];
  loss: number[];
}

export interface ScheduleRecord {
  epochs: number;
  lr: number;
}

export interface ProvenanceRecord {
  version: string;
  commit: string | null;
  node: string | null;
  /** Not recorded before the default became two threads. */
  onnxruntimeThreads: number | null;
}

export interface ReportExtras {
  calibration: CalibrationRecord | null;
  lossCurves: LossCurveRecord[];
  schedules: { train: ScheduleRecord | null; finetune: ScheduleRecord | null } | null;
  provenance: ProvenanceRecord | null;
  createdAt: string | null;
}

export function readBins(c: Checker, v: unknown, key: string): ReliabilityBinRecord[] {
  return c.array(v, key).map((b, j) => {
    const bk = `${key}[${j}]`;
    const bo = c.object(b, bk);
    const get = (name: string): unknown => c.field(bo, name, `${bk}.${name}`);
    const lower = c.fraction(get('lower'), `${bk}.lower`);
    const upper = c.number(get('upper'), `${bk}.upper`, lower, 1);
    const count = c.number(get('count'), `${bk}.count`, 0, Number.MAX_SAFE_INTEGER, true);
    // An empty bin has no mean; writers may store 0 or null there.
    const orZero = (name: string): number => (count === 0 && bo[name] === null ? 0 : c.fraction(get(name), `${bk}.${name}`));
    return { lower, upper, count, meanConfidence: orZero('meanConfidence'), accuracy: orZero('accuracy') };
  });
}

function readMetrics(c: Checker, v: unknown, key: string): CalibrationMetricsRecord {
  const o = c.object(v, key);
  const get = (name: string): unknown => c.field(o, name, `${key}.${name}`);
  return {
    eceDataset: c.fraction(get('eceDataset'), `${key}.eceDataset`),
    ecePerBatchMean: c.fraction(get('ecePerBatchMean'), `${key}.ecePerBatchMean`),
    nll: c.number(get('nll'), `${key}.nll`, 0),
    brier: c.number(get('brier'), `${key}.brier`, 0, 2),
    bins: readBins(c, get('bins'), `${key}.bins`),
  };
}

function readCalibration(c: Checker, v: unknown, steps: number): CalibrationRecord {
  const o = c.object(v, 'calibration');
  const source = c.string(c.field(o, 'source', 'calibration.source'), 'calibration.source');
  const pc = o['perClass'];
  const perClass = pc === undefined || pc === null ? null : c.number(pc, 'calibration.perClass', 0, Number.MAX_SAFE_INTEGER, true);
  const heldOut = o['heldOut'] === undefined ? [] : c.numbers(o['heldOut'], 'calibration.heldOut', 0, Number.MAX_SAFE_INTEGER, undefined, true);
  const records = c.array(c.field(o, 'steps', 'calibration.steps'), 'calibration.steps').map((s, i) => {
    const key = `calibration.steps[${i}]`;
    const so = c.object(s, key);
    const get = (name: string): unknown => c.field(so, name, `${key}.${name}`);
    return {
      step: c.number(get('step'), `${key}.step`, 0, steps - 1, true),
      samples: c.number(get('samples'), `${key}.samples`, 1, Number.MAX_SAFE_INTEGER, true),
      temperature: c.number(get('temperature'), `${key}.temperature`, Number.MIN_VALUE),
      raw: readMetrics(c, get('raw'), `${key}.raw`),
      calibrated: readMetrics(c, get('calibrated'), `${key}.calibrated`),
    };
  });
  return { source, perClass, heldOut, steps: records };
}

function readCurve(c: Checker, v: unknown, key: string, task: number, phase: 'train' | 'finetune'): LossCurveRecord | null {
  if (v === undefined || v === null) return null;
  const o = c.object(v, key);
  const iteration = c.numbers(c.field(o, 'iteration', `${key}.iteration`), `${key}.iteration`, 1, Number.MAX_SAFE_INTEGER, undefined, true);
  const loss = c.numbers(c.field(o, 'loss', `${key}.loss`), `${key}.loss`, -Infinity, Infinity, iteration.length);
  return iteration.length === 0 ? null : { task, phase, iteration, loss };
}

/** Loss curves of `steps[t].lossCurve` (absent in older files: none). */
function readLossCurves(c: Checker, v: unknown): LossCurveRecord[] {
  if (!Array.isArray(v)) return [];
  const out: LossCurveRecord[] = [];
  v.forEach((s, t) => {
    if (!c.isObject(s) || s['lossCurve'] === undefined) return;
    const lc = c.object(s['lossCurve'], `steps[${t}].lossCurve`);
    for (const phase of ['train', 'finetune'] as const) {
      const curve = readCurve(c, lc[phase], `steps[${t}].lossCurve.${phase}`, t, phase);
      if (curve) out.push(curve);
    }
  });
  return out;
}

function readSchedule(c: Checker, v: unknown, key: string): ScheduleRecord | null {
  if (v === null || v === undefined) return null;
  const o = c.object(v, key);
  return { epochs: c.number(c.field(o, 'epochs', `${key}.epochs`), `${key}.epochs`, 0, Number.MAX_SAFE_INTEGER, true), lr: c.number(c.field(o, 'lr', `${key}.lr`), `${key}.lr`, 0) };
}

function readProvenance(c: Checker, v: unknown): ProvenanceRecord {
  const o = c.object(v, 'provenance');
  const commit = o['commit'];
  const node = o['node'];
  const threads = o['onnxruntimeThreads'];
  return {
    version: c.string(c.field(o, 'version', 'provenance.version'), 'provenance.version'),
    commit: commit === null || commit === undefined ? null : c.string(commit, 'provenance.commit'),
    node: node === null || node === undefined ? null : c.string(node, 'provenance.node'),
    onnxruntimeThreads: threads === null || threads === undefined ? null : c.number(threads, 'provenance.onnxruntimeThreads', 1, 1024, true),
  };
}

/** The optional parts of a results.json (see the file comment). */
export function readExtras(c: Checker, top: Obj, steps: number): ReportExtras {
  const sched = top['schedules'];
  const so = sched === undefined || sched === null ? null : c.object(sched, 'schedules');
  return {
    calibration: top['calibration'] === undefined || top['calibration'] === null ? null : readCalibration(c, top['calibration'], steps),
    lossCurves: readLossCurves(c, top['steps']),
    schedules: so === null ? null : { train: readSchedule(c, so['train'], 'schedules.train'), finetune: readSchedule(c, so['finetune'], 'schedules.finetune') },
    provenance: top['provenance'] === undefined || top['provenance'] === null ? null : readProvenance(c, top['provenance']),
    createdAt: typeof top['createdAt'] === 'string' ? top['createdAt'] : null,
  };
}
