/**
 * `run --methods a,b,c`: the list is checked, split the method options, recorded in
 * invocation.json, rebuilt by --resume, and a resume with another list is refused naming both
 * lists. The statistics-based methods come out of a comparison with every metric the others have
 * (ECE, reliability bins, energy / MSP / entropy novelty) and without the ones they cannot have
 * (MC variance, a training loss, a memory).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { recordingIO } from '../../cli/commands/io.js';
import { parseRunArgs, runCommand } from '../../cli/commands/run.js';
import { comparisonOptions, resolveInvocationConfig } from './plan.js';
import { readInvocation } from './record.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-methods-'));
  dirs.push(d);
  return d;
}
const json = async (file: string): Promise<any> => JSON.parse(await readFile(file, 'utf8'));

test('--methods parses to a list; the list and the keyed method options resolve one config per method', () => {
  assert.deepEqual(parseRunArgs(['--methods', 'simplecil, ranpac']).methods, ['simplecil', 'ranpac']);
  assert.deepEqual(parseRunArgs(['--methods=ranpac']).methods, ['ranpac']);
  assert.equal(parseRunArgs([]).methods, null);

  const c = resolveInvocationConfig(['ranpac', 'clap', 'simplecil'], { syntheticPreset: 'tiny', methodOptions: { ranpac: { M: 64 }, clap: { laspWeight: 3 } } });
  assert.equal(c.kind, 'comparison');
  if (c.kind !== 'comparison') return;
  assert.deepEqual(c.methods, ['ranpac', 'clap', 'simplecil']);
  assert.deepEqual(c.configs.map((x) => [x.method, x.methodOptions]), [['ranpac', { M: 64 }], ['clap', { laspWeight: 3 }], ['simplecil', {}]]);
  assert.deepEqual(c.settings.methodOptions, { ranpac: { M: 64 }, clap: { laspWeight: 3 } }, 'the settings keep the options as given');
  // Flat options go to clap, as before keyed options existed.
  assert.deepEqual(comparisonOptions(['zeroshot', 'clap'], { beta: 1 }), { perMethod: [{}, { beta: 1 }], flat: true });

  assert.throws(() => resolveInvocationConfig([], {}), /--methods needs at least one method name/);
  assert.throws(() => resolveInvocationConfig(['simplecil', 'ranpak'], {}), /--methods: unknown method "ranpak": must be one of \[clap, .*simplecil, ranpac/);
  assert.throws(() => resolveInvocationConfig(['ranpac', 'ranpac'], {}), /--methods names "ranpac" twice/);
  assert.throws(() => resolveInvocationConfig(['simplecil', 'ranpac'], { methodOptions: { M: 64 } }), /keyed by method name \(e\.g\. \{"simplecil": \{\.\.\.\}\}\); "M" is not one of the compared methods \[simplecil, ranpac\]/);
  assert.throws(() => resolveInvocationConfig(['clap', 'ranpac'], { methodOptions: { ranpac: { M: 64 }, laspWeight: 3 } }), /mixes method names and option names \("laspWeight"\)/);
  assert.throws(() => resolveInvocationConfig(['simplecil'], { methodOptions: { ranpac: { M: 64 } } }), /options for ranpac, which is not compared \(compared: simplecil\)/);
  assert.throws(() => resolveInvocationConfig(['ranpac'], { methodOptions: { ranpac: 64 } }), /"methodOptions\.ranpac" must be a JSON object of ranpac's options, got 64/);
});

const TINY = ['--synthetic-preset', 'tiny', '--increment', '5'];

test('run --methods simplecil,ranpac: recorded, compared with every metric they have, resumable only with the same list', async () => {
  const dir = join(await tempDir(), 'cmp');
  const io = recordingIO();
  const args = [...TINY, '--methods', 'simplecil,ranpac', '--method-options', '{"ranpac":{"M":64,"logitScale":10}}', '--out', dir];
  assert.equal(await runCommand(args, io), 0);
  const record = await json(join(dir, 'invocation.json'));
  assert.deepEqual([record.compare, record.methods, record.config.methodOptions], [true, ['simplecil', 'ranpac'], { ranpac: { M: 64, logitScale: 10 } }]);
  const recorded = (await readInvocation(dir))!;
  assert.equal(recorded.config.kind === 'comparison' && recorded.config.configs[1]!.methodOptions['M'], 64);

  const comparison = await json(join(dir, 'comparison.json'));
  assert.deepEqual(comparison.methods.map((m: { method: string }) => m.method), ['simplecil', 'ranpac']);
  for (const method of ['simplecil', 'ranpac']) {
    const r = await json(join(dir, method, 'results.json'));
    assert.equal(r.config.method, method);
    assert.deepEqual([...new Set(r.novelty.map((n: { score: string }) => n.score))], ['energy', 'msp', 'entropy'], `${method}: no MC variance without sampling`);
    assert.equal(r.reliability.length, 2);
    assert.equal(r.reliability[1].bins.reduce((s: number, b: { count: number }) => s + b.count, 0), 100, 'bins cover the seen test samples');
    assert.ok(r.steps.every((s: { loss: { train: null }; memorySize: number; iterations: { train: number } }) => s.loss.train === null && s.memorySize === 0 && s.iterations.train === 0), `${method}: no SGD, no memory`);
    assert.ok(r.lastAccuracy > 0.5, `${method} learns the tiny world (last ${r.lastAccuracy})`);
  }
  const out = io.out.join('');
  assert.match(out, /^simplecil\s.*\snone(\s+\S+s)?$/m, 'the table says an exemplar-free method keeps no memory');
  assert.match(out, /^ranpac\s.*\snone(\s+\S+s)?$/m);
  assert.match(out, /Memory: exemplars kept\s+\(none:\s+exemplar-free\)/);
  // s = 1 (simplecil's default) is labelled; ranpac here runs at s = 10, so it has no such note.
  assert.match(out, /^note: simplecil: logits at the authors' scale s = 1 leave the softmax close to uniform/m);
  assert.doesNotMatch(out, /note: ranpac/);
  assert.deepEqual((await json(join(dir, 'ranpac', 'results.json'))).notes, undefined);
  assert.match((await json(join(dir, 'simplecil', 'results.json'))).notes[0], /ECE, MSP and entropy describe that scale/);
  // The report: every summary row says what memory the method kept; no MC-variance rows.
  const html = await readFile(join(dir, 'report.html'), 'utf8');
  assert.match(html, /<th>Memory \(exemplars\)<\/th>/);
  for (const method of ['simplecil', 'ranpac']) {
    const row = new RegExp(`<tr><td><strong>${method}</strong>.*?</tr>`).exec(html)?.[0] ?? '';
    assert.match(row, /<td class="num">0<\/td>/, `${method}: memory 0`); // a single run: the value alone, no "± —"
  }
  assert.match(html, /<td>ranpac<\/td><td>[^<]*<\/td><td>entropy<\/td>/);
  assert.doesNotMatch(html, /<td>mcVariance<\/td>/);
  assert.match(html, /<div class="note">simplecil: logits at the authors&#39; scale s = 1/);

  await assert.rejects(runCommand(['--resume', dir, '--methods', 'simplecil'], recordingIO()), /cannot resume with a changed config; differing keys: methods \(simplecil,ranpac -> simplecil\)/);
  await assert.rejects(runCommand(['--resume', dir, '--method', 'ranpac'], recordingIO()), /differing keys: --method \(comparison of simplecil, ranpac -> "ranpac"\)/);
  await assert.rejects(runCommand([...TINY, '--methods', 'ranpac,simplecil', '--out', dir], recordingIO()), /holds a run with a different config; differing keys: methods \(simplecil,ranpac -> ranpac,simplecil\)/);
  const again = recordingIO();
  assert.equal(await runCommand(['--resume', dir, '--methods', 'simplecil,ranpac'], again), 0, 'the same list resumes (here: nothing left to do)');
  assert.deepEqual((await json(join(dir, 'comparison.json'))).methods.map((m: { lastAccuracy: number }) => m.lastAccuracy), comparison.methods.map((m: { lastAccuracy: number }) => m.lastAccuracy));
});

test('--methods errors: with --method, on a one-run directory, a bad list, bad options of one method', async () => {
  const root = await tempDir();
  await assert.rejects(runCommand([...TINY, '--method', 'clap', '--methods', 'simplecil', '--out', join(root, 'a')], recordingIO()), /--method clap and --methods simplecil contradict each other/);
  await assert.rejects(runCommand([...TINY, '--methods', 'simplecil,nope', '--out', join(root, 'b')], recordingIO()), /--methods: unknown method "nope"/);
  await assert.rejects(runCommand([...TINY, '--methods', 'simplecil,ranpac', '--method-options', '{"ranpac":{"m":3}}', '--out', join(root, 'c')], recordingIO()), /ranpac: unknown option "m"/);
  const one = join(root, 'one');
  assert.equal(await runCommand([...TINY, '--method', 'simplecil', '--out', one], recordingIO()), 0);
  await assert.rejects(runCommand(['--resume', one, '--methods', 'simplecil,ranpac'], recordingIO()), /--methods simplecil,ranpac asks for a comparison, and this directory holds one run of simplecil/);
  // A record written before --methods existed is the default comparison.
  const old = join(root, 'old');
  await rm(old, { recursive: true, force: true });
  await mkdir(old);
  await writeFile(join(old, 'invocation.json'), JSON.stringify({ format: 'clap4clip-invocation', version: 1, compare: true, config: { syntheticPreset: 'tiny', out: old } }));
  const legacy = (await readInvocation(old))!;
  assert.deepEqual(legacy.config.kind === 'comparison' && legacy.config.methods, ['zeroshot', 'clip-adapter', 'clap']);
  await writeFile(join(old, 'invocation.json'), JSON.stringify({ format: 'clap4clip-invocation', version: 1, compare: true, methods: 'ranpac', config: {} }));
  await assert.rejects(readInvocation(old), /invocation\.json: "methods" must be a list of method names/);
});

test('simplecil and ranpac predict each image alone: every evaluation batching gives the same accuracy matrix', async () => {
  const root = await tempDir();
  const matrices: unknown[] = [];
  for (const batching of ['per-task', 'mixed', 'single']) {
    const dir = join(root, batching);
    assert.equal(await runCommand([...TINY, '--methods', 'simplecil,ranpac', '--method-options', '{"ranpac":{"M":32}}', '--eval-batching', batching, '--novelty=false', '--out', dir], recordingIO()), 0);
    matrices.push(await Promise.all(['simplecil', 'ranpac'].map(async (m) => (await json(join(dir, m, 'results.json'))).accuracyMatrix)));
  }
  assert.deepEqual(matrices[1], matrices[0]);
  assert.deepEqual(matrices[2], matrices[0]);
});

test('--runs with the statistics-based methods: one run per seed, and their summary', async () => {
  const dir = join(await tempDir(), 'runs');
  assert.equal(await runCommand([...TINY, '--methods', 'simplecil,ranpac', '--method-options', '{"ranpac":{"M":32}}', '--runs', '2', '--out', dir], recordingIO()), 0);
  for (const method of ['simplecil', 'ranpac']) {
    const summary = await json(join(dir, method, 'summary.json'));
    assert.deepEqual(summary.seeds, [0, 1]);
    const [a, b] = await Promise.all(['run-0', 'run-1'].map((r) => json(join(dir, method, r, 'results.json'))));
    assert.notDeepEqual(a.classOrder, b.classOrder, 'another seed, another class order');
  }
});
