import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { encodeSafetensors, type SafeTensor } from '../data/safetensors.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../data/synthetic.js';
import { Rng } from '../engine/random.js';
import { ExemplarMemory } from '../memory/memory.js';
import { getSelector } from '../memory/selectors.js';
import type { Method } from '../methods/method.js';
import { createMethod } from '../methods/registry.js';
import { Clap4ClipError } from '../util/errors.js';
import {
  readLatestCheckpoint, writeCheckpoint, LATEST_FILE, PARAMS_FILE, STATE_FILE, type CheckpointSnapshot, type CheckpointStage,
} from './checkpoint.js';
import { captureSnapshot, restoreMethod, resumePoint } from './snapshot.js';
import { resolveRunConfig, type RunConfig } from './config.js';
import { methodSetupFor, phaseSchedules, runClassIncremental, runStreams, scenarioFor, taskClassesOf, type LoopResult, type StepRecord } from './loop.js';
import { CHECKPOINT_DIR } from './runDirectory.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-ckpt-'));
  dirs.push(d);
  return d;
}

const dataset = generateSyntheticDataset(SYNTHETIC_TINY); // 10 classes, D = 32
const config: RunConfig = resolveRunConfig({ syntheticPreset: 'tiny', method: 'clap', increment: 5, memorySize: 20, epochs: 1, finetuneEpochs: 1, samples: 2, novelty: false });
const scenario = scenarioFor(config, dataset);

async function buildClap(cfg: RunConfig = config): Promise<Method> {
  return createMethod('clap', methodSetupFor(cfg, dataset));
}

/** The memory after task t (random selector, its own stream). */
function memoryAfter(t: number): ExemplarMemory {
  const memory = new ExemplarMemory({ kind: config.memoryKind, size: config.memorySize });
  const rng = new Rng(7);
  for (const task of scenario.tasks.slice(0, t + 1)) {
    const byClass = new Map<number, number[]>();
    for (const i of scenario.trainIndices[task.index]!) byClass.set(scenario.trainLabels[i]!, [...(byClass.get(scenario.trainLabels[i]!) ?? []), i]);
    memory.update([...byClass].map(([label, c]) => ({ label, candidates: Int32Array.from(c) })), task.classEnd, getSelector('random'), rng);
  }
  return memory;
}

/** A real 2-task CLAP run on tiny data, snapshotted after each task from the onStep hook. */
let run: { method: Method; snapshots: CheckpointSnapshot[] };
before(async () => {
  const method = await buildClap();
  const snapshots: CheckpointSnapshot[] = [];
  const steps: StepRecord[] = [];
  const streams = runStreams(config.seed);
  await runClassIncremental(config, dataset, method, {
    onStep: (step) => {
      steps.push(step);
      streams.loop.nextUint32(); // the streams move between tasks
      const result: LoopResult = {
        scenario,
        accuracyMatrix: steps.map((s) => s.accuracies),
        ece: { perBatchMean: steps.map((s) => s.ecePerBatchMean), dataset: steps.map((s) => s.eceDataset) },
        reliability: [],
        calibration: [],
        novelty: [],
        timing: steps.map((s) => s.seconds.total),
        steps: [...steps],
        schedules: phaseSchedules(config, method),
      };
      snapshots.push(captureSnapshot({ config, method, scenario, completedTask: step.task, memory: memoryAfter(step.task), streams, result }));
    },
  });
  run = { method, snapshots };
});

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

test('write -> read round trip: same state, bit-identical tensors, generators that continue identically', async () => {
  const dir = await tempDir();
  assert.equal(await readLatestCheckpoint(dir), null, 'a first run has no checkpoint');
  const snap = run.snapshots[1]!;
  await writeCheckpoint(dir, snap);
  const read = (await readLatestCheckpoint(dir))!;
  assert.deepEqual(read.state, snap.state);
  assert.equal(read.tensors.length, run.method.saveState().tensors.length);
  read.tensors.forEach((t, i) => {
    assert.equal(t.name, snap.tensors[i]!.name);
    assert.ok(bytesOf(t.data).equals(bytesOf(snap.tensors[i]!.data)), t.name);
  });
  for (const [name, state] of Object.entries(read.state.rng.streams)) {
    const a = Rng.fromState(state);
    const b = Rng.fromState(snap.state.rng.streams[name]!);
    for (let i = 0; i < 50; i++) assert.equal(a.nextUint32(), b.nextUint32(), name);
  }
  const names = await readdir(join(dir, CHECKPOINT_DIR));
  assert.equal(names.filter((n) => n.startsWith('task-')).length, 1);
});

/** `n` training batches of task `t` (fixed draws, one view per sample). */
function batchesOf(t: number, n: number, seed: number) {
  const rng = new Rng(seed);
  const idx = scenario.trainIndices[t]!;
  const D = dataset.train.dim;
  return Array.from({ length: n }, () => {
    const pick = rng.choice(idx.length, 8);
    const features = new Float32Array(8 * D);
    const labels = new Int32Array(8);
    pick.forEach((p, b) => {
      const i = idx[p]!;
      features.set(dataset.train.features.subarray(i * dataset.train.views * D, (i * dataset.train.views + 1) * D), b * D);
      labels[b] = scenario.trainLabels[i]!;
    });
    return { features, labels, size: 8 };
  });
}

const at = (lr: number) => ({ lr, iteration: 0, iterations: 1, epoch: 0 });

function learnTask(method: Method, t: number, rng: Rng): number[] {
  const task = scenario.tasks[t]!;
  method.beginTask(task, taskClassesOf(dataset, scenario, task), rng);
  // Small rates: at 0.01 the hierarchical variant's loss grows a hundredfold per step on this
  // tiny world (as it did before), and the test is about resuming exactly, not about learning.
  const losses = batchesOf(t, 3, 10 + t).map((b) => method.trainStep(b, at(0.001), rng).loss);
  if (t > 0) {
    method.setPhase('finetune');
    losses.push(...batchesOf(t, 2, 20 + t).map((b) => method.trainStep(b, at(0.0001), rng).loss));
  }
  method.endTask(task, rng);
  return losses;
}

const VARIANTS: [string, Record<string, unknown>][] = [
  ['default', {}],
  ['task tokens, hierarchical encoder with distillation (its frozen copy is restored too)', { taskTokens: true, hierarchical: { enabled: true, globalSamples: 2 } }],
];
for (const [variant, methodOptions] of VARIANTS) {
  test(`restoreMethod: a loaded CLAP continues exactly like the uninterrupted one (${variant})`, async () => {
    const cfg = { ...config, methodOptions };
    const a = await buildClap(cfg);
    const streams = runStreams(config.seed);
    learnTask(a, 0, streams.method);
    const result = { scenario, ...run.snapshots[0]!.state.metrics };
    const snap = captureSnapshot({ config: cfg, method: a, scenario, completedTask: 0, memory: memoryAfter(0), streams, result });
    const dir = await tempDir();
    await writeCheckpoint(dir, snap);
    const read = (await readLatestCheckpoint(dir))!;
    const b = await buildClap(cfg); // the resumed process: same config, a fresh method, state loaded
    restoreMethod(b, read);
    const bRng = Rng.fromState(read.state.rng.streams['method']!);
    assert.deepEqual(bRng.state(), streams.method.state(), 'the method generator is where the original left it');

    assert.deepEqual(learnTask(b, 1, bRng), learnTask(a, 1, streams.method), 'identical losses on task 1');
    a.namedParameters().forEach(([name, t], i) => assert.ok(bytesOf(t.data).equals(bytesOf(b.namedParameters()[i]![1].data)), name));
    const features = batchesOf(1, 1, 99)[0]!.features;
    assert.ok(bytesOf(a.predict(features, 8, new Rng(5)).logits).equals(bytesOf(b.predict(features, 8, new Rng(5)).logits)), 'identical predictions (same noise draws)');
  });
}

test('restoreMethod refuses a different method, missing or extra tensors and shape mismatches', async () => {
  const snap = run.snapshots[0]!;
  const other = await createMethod('clap-deterministic', methodSetupFor(config, dataset));
  assert.throws(() => restoreMethod(other, snap), /written by method "clap", cannot restore "clap-deterministic"/);
  // A snapshot whose tensors belong to task 1 restored as of task 0: an extra encoder pair.
  const mixed: CheckpointSnapshot = { state: snap.state, tensors: run.snapshots[1]!.tensors };
  // (the text statistics of 10 classes where the state's tasks cover 5 fail first)
  const m_mixed = await buildClap();
  assert.throws(() => restoreMethod(m_mixed, mixed), /tensor "text\.ebar" has shape \[10, ?32\], clap expects \[5, ?32\]/);
  const extra: CheckpointSnapshot = { state: snap.state, tensors: [...snap.tensors, { name: 'encoders.7.weight', shape: [1], data: new Float32Array(1) }] };
  const m_extra = await buildClap();
  assert.throws(() => restoreMethod(m_extra, extra), /holds tensor "encoders\.7\.weight" that clap does not have/);
  const missing: CheckpointSnapshot = { state: snap.state, tensors: snap.tensors.filter((t) => t.name !== 'vga.linear1.weight') };
  const m_missing = await buildClap();
  assert.throws(() => restoreMethod(m_missing, missing), (e: Error) => e instanceof Clap4ClipError && /"vga\.linear1\.weight" of clap is missing/.test(e.message));
  const reshaped: CheckpointSnapshot = { state: snap.state, tensors: snap.tensors.map((t) => (t.name === 'vga.linear1.weight' ? { ...t, shape: [t.data.length] } : t)) };
  const m_reshaped = await buildClap();
  assert.throws(() => restoreMethod(m_reshaped, reshaped), /has shape \[\d+\], clap has \[/);
});

test('resumePoint: the loop state after the task, checked against the run', () => {
  const snap = run.snapshots[0]!;
  const r = resumePoint(snap, { ...config, out: 'elsewhere', progress: 'never' }, scenario);
  assert.equal(r.nextTask, 1);
  assert.deepEqual(r.memory.toJSON(), memoryAfter(0).toJSON());
  assert.deepEqual(r.result.accuracyMatrix, snap.state.metrics.accuracyMatrix);
  assert.equal(r.result.scenario, scenario);
  assert.deepEqual(Object.keys(r.streams), Object.keys(runStreams(0)));
  assert.deepEqual(r.streams.loop.state(), snap.state.rng.streams['loop']);
  assert.throws(() => resumePoint(snap, { ...config, epochs: 3 }, scenario), /different config; differing keys: epochs \(1 -> 3\)/);
  const other = scenarioFor(resolveRunConfig({ ...config, seed: 5 }), dataset);
  assert.throws(() => resumePoint(snap, config, other), /class order differs/);
});

// ---------------------------------------------------------------------------------------------
// Crash safety

const STAGES: CheckpointStage[] = ['directory', 'params', 'state', 'complete', 'latest', 'cleanup'];

test('a crash after any write stage leaves a complete checkpoint: the previous one before the commit, the new one after', async () => {
  for (const stage of STAGES) {
    const dir = await tempDir();
    await writeCheckpoint(dir, run.snapshots[0]!);
    const crash = new Error(`killed after ${stage}`);
    await assert.rejects(writeCheckpoint(dir, run.snapshots[1]!, { afterStage: (s) => { if (s === stage) throw crash; } }), crash);
    const read = await readLatestCheckpoint(dir);
    const committed = STAGES.indexOf(stage) >= STAGES.indexOf('latest');
    assert.equal(read!.state.completedTask, committed ? 1 : 0, `after ${stage}`);
    // The next write succeeds and removes the leftovers of the interrupted one.
    await writeCheckpoint(dir, run.snapshots[1]!);
    assert.equal((await readdir(join(dir, CHECKPOINT_DIR))).filter((n) => n.startsWith('task-')).length, 1, `cleanup after ${stage}`);
    assert.equal((await readLatestCheckpoint(dir))!.state.completedTask, 1);
  }
  // A crash before the very first commit: no checkpoint yet (start from task 0).
  const dir = await tempDir();
  await assert.rejects(writeCheckpoint(dir, run.snapshots[0]!, { afterStage: (s) => { if (s === 'complete') throw new Error('kill'); } }));
  assert.equal(await readLatestCheckpoint(dir), null);
});

test('SIGKILL at random moments while checkpointing always leaves a readable checkpoint', async () => {
  const src = await tempDir();
  const dst = await tempDir();
  await writeCheckpoint(src, run.snapshots[1]!);
  const module = fileURLToPath(new URL('./checkpoint.js', import.meta.url));
  const script = `const m = await import(${JSON.stringify(module)}); const s = await m.readLatestCheckpoint(${JSON.stringify(src)});
    process.stdout.write('ready\\n'); for (;;) await m.writeCheckpoint(${JSON.stringify(dst)}, s);`;
  const rng = new Rng(3);
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 5 + rng.int(60)));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const read = await readLatestCheckpoint(dst);
    if (read !== null) assert.deepEqual(read.state, run.snapshots[1]!.state, `round ${round}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Validation of what is read

/** The current checkpoint directory of `dir`. */
async function current(dir: string): Promise<string> {
  return join(dir, CHECKPOINT_DIR, (await readFile(join(dir, CHECKPOINT_DIR, LATEST_FILE), 'utf8')).trim());
}

async function expectReadError(dir: string, file: RegExp, problem: RegExp): Promise<void> {
  await assert.rejects(readLatestCheckpoint(dir), (e: unknown) => {
    assert.ok(e instanceof Clap4ClipError, `a Clap4ClipError, got ${String(e)}`);
    assert.match(e.message, file);
    assert.match(e.message, problem);
    return true;
  });
}

/** Rewrites params.safetensors with the tensors changed by `edit`. */
async function rewriteParams(dir: string, edit: (t: Record<string, SafeTensor>) => void): Promise<void> {
  const tensors: Record<string, SafeTensor> = Object.fromEntries(run.snapshots[0]!.tensors.map((t) => [t.name, { dtype: 'F32', shape: t.shape, data: t.data.slice() }]));
  edit(tensors);
  await writeFile(join(await current(dir), PARAMS_FILE), encodeSafetensors(tensors));
}

async function rewriteState(dir: string, edit: (s: Record<string, unknown>) => void): Promise<void> {
  const file = join(await current(dir), STATE_FILE);
  const s = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(s);
  await writeFile(file, JSON.stringify(s));
}

const firstName = (): string => run.snapshots[0]!.tensors[0]!.name;

const CORRUPTIONS: [string, (dir: string) => Promise<void>, RegExp, RegExp][] = [
  ['truncated params file', async (d) => {
    const f = join(await current(d), PARAMS_FILE);
    const b = await readFile(f);
    await writeFile(f, b.subarray(0, Math.floor(b.length / 2)));
  }, /params\.safetensors/, /truncated/],
  ['params file shorter than its header', async (d) => writeFile(join(await current(d), PARAMS_FILE), Buffer.from([1, 2, 3])), /params\.safetensors/, /too short/],
  ['truncated JSON', async (d) => {
    const f = join(await current(d), STATE_FILE);
    const b = await readFile(f);
    await writeFile(f, b.subarray(0, Math.floor(b.length / 2)));
  }, /state\.json/, /not valid JSON.*truncated or corrupt/],
  ['oversized header', async (d) => {
    const b = Buffer.alloc(64);
    b.writeBigUInt64LE(1n << 40n, 0);
    await writeFile(join(await current(d), PARAMS_FILE), b);
  }, /params\.safetensors/, /header length \d+ is absurd/],
  ['wrong dtype', (d) => rewriteParams(d, (t) => { const x = t[firstName()]!; t[firstName()] = { dtype: 'F64', shape: x.shape, data: Float64Array.from(x.data as Float32Array) }; }), /params\.safetensors/, /has dtype F64, checkpoints hold F32/],
  ['NaN in a tensor', (d) => rewriteParams(d, (t) => { (t[firstName()]!.data as Float32Array)[3] = NaN; }), /params\.safetensors/, /non-finite value \(NaN\) at element 3/],
  ['missing tensor', (d) => rewriteParams(d, (t) => { delete t[firstName()]; }), /params\.safetensors/, /tensor ".+" is missing/],
  ['extra tensor', (d) => rewriteParams(d, (t) => { t['stray'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) }; }), /params\.safetensors/, /holds tensor "stray", which state\.json does not list/],
  ['wrong shape', (d) => rewriteParams(d, (t) => { const x = t[firstName()]!; t[firstName()] = { ...x, shape: [x.data.length] }; }), /params\.safetensors/, /has shape \[\d+\], state\.json lists \[/],
  ['unknown format version', (d) => rewriteState(d, (s) => { s['version'] = 3; }), /state\.json/, /unsupported checkpoint version 3 \(this clap4clip reads version 2\)/],
  ['checkpoint of the earlier format', (d) => rewriteState(d, (s) => { s['version'] = 1; }), /state\.json/, /unsupported checkpoint version 1 \(this clap4clip reads version 2\)/],
  ['foreign JSON', (d) => rewriteState(d, (s) => { s['format'] = 'something-else'; }), /state\.json/, /not a clap4clip checkpoint/],
  ['edited config', (d) => rewriteState(d, (s) => { (s['config'] as Record<string, unknown>)['epochs'] = 9; }), /state\.json/, /"configHash" does not match "config"/],
  ['invalid config', (d) => rewriteState(d, (s) => { (s['config'] as Record<string, unknown>)['epoch'] = 9; }), /state\.json/, /unknown key "epoch" \(did you mean "epochs"\?\)/],
  ['bad generator state', (d) => rewriteState(d, (s) => { ((s['rng'] as Record<string, Record<string, unknown>>)['streams']!)['loop'] = { kind: 'xoshiro128**', s: [0, 0, 0, 0] }; }), /state\.json/, /rng\.streams\.loop is not a generator state/],
  ['memory class out of range', (d) => rewriteState(d, (s) => { (s['memory'] as { classes: unknown[] }).classes.push([99, [1]]); }), /state\.json/, /memory\.classes\[\d+\]\[0\] must be an integer in \[0, 4\], got 99/],
  ['metrics inconsistent', (d) => rewriteState(d, (s) => { (s['metrics'] as Record<string, unknown>)['timing'] = [123]; }), /state\.json/, /metrics\.timing disagrees with metrics\.steps/],
  ['huge number in metrics', async (d) => {
    const f = join(await current(d), STATE_FILE);
    await writeFile(f, (await readFile(f, 'utf8')).replace(/"ecePerBatchMean": [^,\n]+/, '"ecePerBatchMean": 1e999'));
  }, /state\.json/, /ecePerBatchMean must be a finite number, got null|ecePerBatchMean must be a finite number/],
  ['flipped bit in a value', async (d) => {
    const f = join(await current(d), PARAMS_FILE);
    const b = await readFile(f);
    b[b.length - 4] ^= 1; // lowest mantissa bit of the last float: still finite
    await writeFile(f, b);
  }, /params\.safetensors/, /does not match the checksum in COMPLETE/],
  ['missing COMPLETE', async (d) => rm(join(await current(d), 'COMPLETE')), /COMPLETE/, /incomplete/],
  ['oversized pointer', async (d) => writeFile(join(d, CHECKPOINT_DIR, LATEST_FILE), 'x'.repeat(5000)), /latest/, /is 5000 bytes, more than any checkpoint pointer/],
  ['garbage pointer', async (d) => writeFile(join(d, CHECKPOINT_DIR, LATEST_FILE), '../../etc\n'), /latest/, /does not name a checkpoint directory/],
];

for (const [name, corrupt, file, problem] of CORRUPTIONS) {
  test(`a corrupt checkpoint is a clear error, not a crash: ${name}`, async () => {
    const dir = await tempDir();
    await writeCheckpoint(dir, run.snapshots[0]!);
    await corrupt(dir);
    await expectReadError(dir, file, problem);
  });
}

test('the writer refuses to commit a checkpoint it could not read back', async () => {
  const dir = await tempDir();
  const snap = run.snapshots[0]!;
  const nan: CheckpointSnapshot = { state: snap.state, tensors: snap.tensors.map((t, i) => (i === 0 ? { ...t, data: Float32Array.from(t.data, (v, k) => (k === 0 ? NaN : v)) } : t)) };
  await assert.rejects(writeCheckpoint(dir, nan), /refusing to write the checkpoint of task 0: tensor ".+" holds a non-finite value/);
  const badMetric = structuredClone(snap.state);
  badMetric.metrics.steps[0]!.eceDataset = Infinity;
  await assert.rejects(writeCheckpoint(dir, { state: badMetric, tensors: snap.tensors }), /refusing to write a checkpoint with a non-finite number/);
  assert.equal(await readLatestCheckpoint(dir), null);
});
