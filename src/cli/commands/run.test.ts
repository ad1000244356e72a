import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { validateAccuracyMatrix } from '../../eval/accuracyMatrix.js';
import { METHOD_NAMES } from '../../methods/registry.js';
import { COMPARED_METHODS, parseRunArgs, runCommand } from './run.js';
import { recordingIO } from './io.js';
import { synthCommand } from './synth.js';
import { StopRequest } from '../../run/signals.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-run-'));
  dirs.push(d);
  return d;
}


const TINY = ['--synthetic-preset', 'tiny', '--increment', '5'];

async function readResults(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Record<string, unknown>;
}

function checkResults(r: Record<string, unknown>, method: string): void {
  assert.equal(r['method'], method);
  assert.equal(r['synthetic'], true);
  const A = r['accuracyMatrix'] as number[][];
  validateAccuracyMatrix(A);
  assert.equal(A.length, 2);
  for (const key of ['averageAccuracy', 'lastAccuracy', 'backwardTransfer', 'forgetting']) assert.equal(typeof r[key], 'number', key);
  const ece = r['ece'] as { perBatchMean: number[]; dataset: number[] };
  assert.equal(ece.perBatchMean.length, 2);
  assert.equal(ece.dataset.length, 2);
  assert.equal((r['timing'] as number[]).length, 2);
  assert.equal((r['classOrder'] as number[]).length, 10);
  assert.equal((r['tasks'] as unknown[]).length, 2);
  assert.equal((r['config'] as { method: string }).method, method);
}

for (const method of ['zeroshot', 'clip-adapter']) {
  test(`run --method ${method} on a tiny synthetic dataset writes results.json and the CSV`, async () => {
    const dir = await tempDir();
    const io = recordingIO();
    assert.equal(await runCommand([...TINY, '--method', method, '--out', dir, '--seed', '1'], io), 0);
    const r = await readResults(dir);
    checkResults(r, method);
    const csv = await readFile(join(dir, 'accuracy_matrix.csv'), 'utf8');
    const lines = csv.trim().split('\n');
    assert.equal(lines[0], 'step,task_0,task_1');
    assert.equal(lines.length, 3);
    assert.match(io.out.join(''), /SYNTHETIC/);
    // Not a terminal: one plain line per task on stderr, no live line.
    assert.deepEqual(io.err.join('').split('\n').filter(Boolean).map((l) => l.replace(/:.*/, '')), [`${method} task 1/2`, `${method} task 2/2`]);
    assert.doesNotMatch(io.err.join(''), /[\r\x1b]/);
  });
}

test('run without --method compares the default methods (zeroshot, simplecil, ranpac, rapf, clap); clap beats zeroshot', async () => {
  const dir = await tempDir();
  const io = recordingIO();
  // A tiny world where the image class centres sit further from their text anchors than in the
  // default tiny preset, so zero-shot is clearly below what training reaches.
  const harder = ['--synthetic-options', '{"imageOffset":1.2,"testPerClass":30}'];
  assert.equal(await runCommand([...TINY, ...harder, '--out', dir], io), 0);
  const byMethod: Record<string, Record<string, unknown>> = {};
  for (const m of COMPARED_METHODS) {
    byMethod[m] = await readResults(join(dir, m));
    checkResults(byMethod[m]!, m);
  }
  const comparison = JSON.parse(await readFile(join(dir, 'comparison.json'), 'utf8')) as { synthetic: boolean; methods: { method: string }[] };
  assert.equal(comparison.synthetic, true);
  assert.deepEqual(comparison.methods.map((m) => m.method), ['zeroshot', 'simplecil', 'ranpac', 'rapf', 'clap']);
  const zs = byMethod['zeroshot']!;
  const clap = byMethod['clap']!;
  assert.ok((clap['averageAccuracy'] as number) > (zs['averageAccuracy'] as number) + 0.05, `clap ${clap['averageAccuracy']} vs zeroshot ${zs['averageAccuracy']}`);
  assert.ok((clap['lastAccuracy'] as number) > (zs['lastAccuracy'] as number) + 0.05);
  const printed = io.out.join('');
  assert.match(printed, /Results on SYNTHETIC features/);
  // At the recording IO's 80 columns the per-batch ECE, T and time columns are left out (runPrint.test.ts checks the widths).
  assert.match(printed, /method\s+avg acc\s+last acc\s+BWT\s+forget\s+ECE\s+ECE cal\s+AUROC\s+memory\n/);
  for (const m of COMPARED_METHODS) assert.match(printed, new RegExp(`\\n${m}\\s+\\d+\\.\\d\\d`));
  // The benchmark's own choice for RanPAC is said, and recorded in its config.
  assert.match(printed, /note: ranpac runs with \{"M":2048\} here \(the authors' \{"M":10000\}/);
  assert.deepEqual((byMethod['ranpac']!['config'] as { methodOptions: unknown }).methodOptions, { M: 2048 });
});

test('run reads a features directory written by synth, and a config file', async () => {
  const data = await tempDir();
  const io = recordingIO();
  assert.equal(await synthCommand(['--out', data, '--preset', 'tiny', '--seed', '3'], io), 0);
  const cfgDir = await tempDir();
  const cfgFile = join(cfgDir, 'run.json');
  await writeFile(cfgFile, JSON.stringify({ data, method: 'zeroshot', increment: 5 }));
  const out = join(cfgDir, 'out');
  assert.equal(await runCommand(['--config', cfgFile, '--out', out], io), 0);
  checkResults(await readResults(out), 'zeroshot');
});

test('bad input fails with one clear message', async () => {
  const io = recordingIO();
  await assert.rejects(runCommand(['--epoch', '3'], io), /unknown option --epoch \(did you mean --epochs\?\)/);
  await assert.rejects(runCommand(['--method', 'clop'], io), new RegExp(`run: --method must be one of \\[${METHOD_NAMES.join(', ')}\\]`));
  await assert.rejects(runCommand(['--batch-size', 'x'], io), /run: --batch-size must be an integer, got "x"/);
  await assert.rejects(runCommand(['--data', '/nonexistent/features', '--method', 'zeroshot'], io), /nonexistent/);
  await assert.rejects(runCommand(['--config', '/nonexistent.json'], io), /nonexistent\.json: config file not found/);
  await assert.rejects(runCommand(['stray'], io), /unexpected argument "stray"/);
  await assert.rejects(synthCommand([], io), /synth: --out is required/);
  await assert.rejects(runCommand([...TINY, '--method', 'clap', '--method-options', '{"laspWieght":1}', '--out', await tempDir()], io), /did you mean "laspWeight"/);
  assert.equal(await runCommand(['--help'], io), 0);
  assert.match(io.out.join(''), /--finetune-epochs N +epochs of class-balanced finetuning/);
});

test('the built-in benchmark end to end (tiny preset) with novelty on by default: detection, reliability and the batching mode in results.json', async () => {
  const dir = await tempDir();
  const io = recordingIO();
  assert.equal(await runCommand([...TINY, '--method', 'clap', '--epochs', '2', '--out', dir], io), 0);
  const r = await readResults(dir);
  checkResults(r, 'clap');
  assert.equal(r['evalBatching'], 'mixed');
  assert.equal((r['config'] as { novelty: boolean }).novelty, true);
  const novelty = r['novelty'] as { step: number; score: string; auroc: number; aupr: number; fpr95: number; roc: { fpr: number[] } }[];
  assert.deepEqual(novelty.map((n) => n.score), ['energy', 'msp', 'entropy', 'mcVariance']);
  assert.ok(novelty.every((n) => n.step === 0 && n.roc.fpr.length <= 200 && [n.auroc, n.aupr, n.fpr95].every((v) => v >= 0 && v <= 1)));
  const mean = r['noveltyMean'] as Record<string, { auroc: number }>;
  assert.equal(mean['energy']!.auroc, novelty[0]!.auroc, 'one step: the mean is that step');
  const reliability = r['reliability'] as { step: number; bins: { count: number }[] }[];
  assert.deepEqual(reliability.map((x) => [x.step, x.bins.length, x.bins.reduce((a, b) => a + b.count, 0)]), [[0, 15, 50], [1, 15, 100]]);
  const printed = io.out.join('').replace(/\s+/g, ' ');
  assert.match(printed, /eval batching mixed, novelty detection on/);
  assert.match(printed, /AUROC/);
});

test('--runs 2 writes run-0/ and run-1/ and a summary whose mean and std match the two results', async () => {
  const dir = await tempDir();
  const io = recordingIO();
  assert.equal(await runCommand([...TINY, '--method', 'zeroshot', '--runs', '2', '--out', dir], io), 0);
  const runs = [await readResults(join(dir, 'run-0')), await readResults(join(dir, 'run-1'))];
  runs.forEach((r, i) => {
    checkResults(r, 'zeroshot');
    assert.equal((r['config'] as { seed: number }).seed, i);
  });
  assert.notDeepEqual(runs[0]!['classOrder'], runs[1]!['classOrder'], 'the class order moves with the seed');
  const summary = JSON.parse(await readFile(join(dir, 'summary.json'), 'utf8')) as {
    seeds: number[];
    results: string[];
    metrics: Record<string, { mean: number; std: number; values: number[] }>;
  };
  assert.deepEqual(summary.seeds, [0, 1]);
  assert.deepEqual(summary.results, [join('run-0', 'results.json'), join('run-1', 'results.json')]);
  const byHand = (a: number, b: number) => ({ mean: (a + b) / 2, std: Math.abs(a - b) / Math.SQRT2 });
  const finalEce = (r: Record<string, unknown>) => (r['ece'] as { dataset: number[] }).dataset.at(-1)!;
  const energyAuroc = (r: Record<string, unknown>) => (r['noveltyMean'] as Record<string, { auroc: number }>)['energy']!.auroc;
  const checks: [string, (r: Record<string, unknown>) => number][] = [
    ['averageAccuracy', (r) => r['averageAccuracy'] as number],
    ['lastAccuracy', (r) => r['lastAccuracy'] as number],
    ['backwardTransfer', (r) => r['backwardTransfer'] as number],
    ['forgetting', (r) => r['forgetting'] as number],
    ['finalEceDataset', finalEce],
    ['novelty.energy.auroc', energyAuroc],
  ];
  for (const [name, get] of checks) {
    const want = byHand(get(runs[0]!), get(runs[1]!));
    const got = summary.metrics[name]!;
    assert.ok(Math.abs(got.mean - want.mean) < 1e-12 && Math.abs(got.std - want.std) < 1e-12, `${name}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  }
  assert.ok('finalEcePerBatchMean' in summary.metrics);
  assert.ok(!('novelty.mcVariance.auroc' in summary.metrics), 'zeroshot has no MC variance');
  assert.match(io.out.join(''), /zeroshot over 2 runs \(seeds 0, 1\)\s+mean ± std\naverageAccuracy \(%\)\s+\d+\.\d\d ± \d+\.\d\d/);
});

test('the new flags parse: --selector, --eval-batching, --novelty[=false], --runs', () => {
  assert.deepEqual(parseRunArgs(['--selector', 'var-entropy', '--eval-batching', 'single', '--novelty', '--runs', '3']).values, {
    selector: 'var-entropy',
    evalBatching: 'single',
    novelty: true,
    runs: 3,
  });
  assert.equal(parseRunArgs(['--novelty=false']).values['novelty'], false);
});

// ---------------------------------------------------------------------------------------------
// Run directories: --force, --resume, the report

/** results.json without what may differ between equal runs: timing, creation time, progress display. */
function withoutTiming(r: Record<string, unknown>): Record<string, unknown> {
  const c = structuredClone(r) as Record<string, any>;
  for (const k of ['createdAt', 'timing', 'totalSeconds']) delete c[k];
  delete c['config'].progress;
  for (const s of c['steps']) delete s.seconds;
  return c;
}

test('a different config is refused naming the keys unless --force; the same config starts over; a resume must not change it', async () => {
  const dir = await tempDir();
  const args = [...TINY, '--method', 'clip-adapter', '--epochs', '1', '--out', dir];
  assert.equal(await runCommand(args, recordingIO()), 0);
  await assert.rejects(runCommand([...args, '--seed', '3', '--batch-size', '16'], recordingIO()), (e: Error) => {
    assert.match(e.message, /holds a run with a different config; differing keys: --batch-size \(32 -> 16\), --seed \(0 -> 3\) \(choose another --out, or --force to replace that run\)/);
    return true;
  });
  await assert.rejects(runCommand(['--resume', dir, '--epochs', '3', '--memory-size', '10'], recordingIO()), /cannot resume with a changed config; differing keys: --epochs \(1 -> 3\), --memory-size \(1000 -> 10\)/);
  await assert.rejects(runCommand(['--resume', dir, '--force'], recordingIO()), /--force and --resume contradict each other/);
  await assert.rejects(runCommand(['--resume', dir, '--out', join(dir, 'elsewhere')], recordingIO()), /name different directories/);
  assert.equal(await runCommand([...args, '--seed', '3', '--force'], recordingIO()), 0);
  assert.equal((await readResults(dir))['config'] && ((await readResults(dir))['config'] as { seed: number }).seed, 3);
  assert.equal(await runCommand([...args, '--seed', '3', '--progress', 'never'], recordingIO()), 0, 'the same config (result-neutral keys aside) starts over');
});

test('--resume of a finished run rebuilds the same results from its checkpoint; a directory without a run is nothing to resume', async () => {
  const dir = await tempDir();
  assert.equal(await runCommand([...TINY, '--method', 'clap', '--epochs', '1', '--samples', '2', '--out', dir], recordingIO()), 0);
  const before = await readResults(dir);
  const io = recordingIO();
  assert.equal(await runCommand(['--resume', dir, '--progress', 'never'], io), 0);
  assert.match(io.out.join(''), /clap: resuming .* after task 2\/2/);
  assert.deepEqual(withoutTiming(await readResults(dir)), withoutTiming(before));
  await assert.rejects(runCommand(['--resume', await tempDir()], recordingIO()), /nothing to resume: no config\.json or invocation\.json here/);
});

test('a comparison is resumed as a comparison: --method is a changed config', async () => {
  const dir = await tempDir();
  assert.equal(await runCommand([...TINY, '--epochs', '1', '--samples', '2', '--out', dir], recordingIO()), 0);
  await assert.rejects(runCommand(['--resume', dir, '--method', 'clap'], recordingIO()), /differing keys: --method \(comparison of zeroshot, simplecil, ranpac, rapf, clap -> "clap"\)/);
  await assert.rejects(runCommand([...TINY, '--epochs', '1', '--samples', '2', '--method', 'zeroshot', '--out', dir], recordingIO()), /differing keys: layout \(comparison -> one run\)/);
  assert.equal(await runCommand(['--resume', dir], recordingIO()), 0);
});

test('run writes report.html into its directory (one run, repeated runs, comparison); a failing report is only a warning', async () => {
  const one = await tempDir();
  const io = recordingIO();
  assert.equal(await runCommand([...TINY, '--method', 'zeroshot', '--out', one], io), 0);
  const html = await readFile(join(one, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.match(io.out.join(''), new RegExp(`report -> ${join(one, 'report.html')}`));

  const compare = await tempDir();
  assert.equal(await runCommand([...TINY, '--epochs', '1', '--samples', '2', '--runs', '2', '--out', compare], recordingIO()), 0);
  const page = await readFile(join(compare, 'report.html'), 'utf8');
  for (const m of COMPARED_METHODS) assert.ok(page.includes(m), m);

  const broken = await tempDir();
  await mkdir(join(broken, 'report.html', 'in-the-way'), { recursive: true }); // report.html cannot be a file here
  const warned = recordingIO();
  assert.equal(await runCommand([...TINY, '--method', 'zeroshot', '--runs', '2', '--out', broken], warned), 0);
  assert.match(warned.err.join(''), /clap4clip: warning: the report was not written \(.*\); the results are complete/);
  checkResults(await readResults(join(broken, 'run-1')), 'zeroshot');
});

test('--force over another layout removes the earlier runs this one does not write (and nothing else)', async () => {
  const dir = await tempDir();
  const zs = [...TINY, '--method', 'zeroshot', '--out', dir];
  assert.equal(await runCommand([...zs, '--runs', '3'], recordingIO()), 0);
  await writeFile(join(dir, 'notes.txt'), 'mine');
  await assert.rejects(runCommand([...zs, '--runs', '2'], recordingIO()), /differing keys: --runs \(3 -> 2\)/);
  assert.equal(await runCommand([...zs, '--runs', '2', '--force'], recordingIO()), 0);
  const list = async () => (await readdir(dir)).filter((e) => !e.startsWith('.')).sort();
  assert.deepEqual(await list(), ['invocation.json', 'notes.txt', 'report.html', 'run-0', 'run-1', 'summary.json']);
  assert.equal(await runCommand([...zs, '--force'], recordingIO()), 0);
  assert.deepEqual(await list(), ['accuracy_matrix.csv', 'checkpoint', 'config.json', 'notes.txt', 'report.html', 'results.json']);
  assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'mine');
});

test('--json: one JSON document on stdout, also when the run is stopped (with the command that resumes it)', async () => {
  const dir = await tempDir();
  const io = recordingIO();
  assert.equal(await runCommand([...TINY, '--method', 'zeroshot', '--out', dir, '--json'], io), 0);
  const done = JSON.parse(io.out.join('')) as { status: string; directory: string; report: string; runs: { method: string; averageAccuracy: number }[] };
  assert.deepEqual([done.status, done.directory, done.report, done.runs.map((r) => r.method)], ['complete', dir, join(dir, 'report.html'), ['zeroshot']]);
  assert.equal(done.runs[0]!.averageAccuracy, (await readResults(dir))['averageAccuracy']);
  const stopped = recordingIO();
  const stop = new StopRequest();
  stop.request('SIGINT');
  const other = await tempDir();
  assert.equal(await runCommand([...TINY, '--method', 'zeroshot', '--out', other, '--json'], stopped, { stop }), 130);
  assert.deepEqual(JSON.parse(stopped.out.join('')), { status: 'interrupted', directory: other, reason: 'SIGINT', resume: `clap4clip run --resume ${other}` });
  assert.match(stopped.err.join(''), /interrupted by SIGINT/);
});
