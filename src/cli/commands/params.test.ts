import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Clap4ClipError } from '../../util/errors.js';
import { countMethodParameters, type ParamsReport } from '../../run/parameterCount.js';
import { paramsCommand, paramsSetupFromArgs, parseParamsArgs } from './params.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function runParams(args: string[]): Promise<string> {
  const out: string[] = [];
  assert.equal(await paramsCommand.run(args, { stdout: { write: (s: string) => out.push(s) } }), 0);
  return out.join('');
}

async function report(args: string[]): Promise<ParamsReport> {
  return countMethodParameters(await paramsSetupFromArgs(parseParamsArgs(args)));
}

const VGA_B16 = 4_204_032;
const PAIR_B16 = 525_312;

test('CLAP on ViT-B/16 (D = 512): 4,204,032 VGA parameters + 525,312 per task', async () => {
  const r = await report(['--method', 'clap', '--dim', '512', '--classes', '100', '--tasks', '10']);
  assert.equal(r.dim, 512);
  const vga = r.modules.find((m) => m.module === 'vga')!;
  assert.equal(vga.parameters, VGA_B16);
  assert.equal(vga.trainable, VGA_B16, 'the VGA learns with every task');
  for (let i = 0; i < 10; i++) {
    const pair = r.modules.find((m) => m.module === `encoders.${i}`)!;
    assert.equal(pair.parameters, PAIR_B16);
    assert.equal(pair.trainable, i === 9 ? PAIR_B16 : 0, 'only the newest pair learns');
  }
  assert.equal(r.modules.length, 11);
  r.perTask.forEach((t, i) => {
    assert.equal(t.added, i === 0 ? VGA_B16 + PAIR_B16 : PAIR_B16, 'the VGA is built with the first task');
    assert.equal(t.total, VGA_B16 + (i + 1) * PAIR_B16);
    assert.equal(t.trainable.train, VGA_B16 + PAIR_B16);
    assert.equal(t.trainable.finetune, i === 0 ? null : (i + 1) * PAIR_B16, 'finetuning: every pair, VGA frozen');
  });
  assert.equal(r.total, 9_457_152);
});

test('the printed tables show the same numbers; --json prints the report', async () => {
  const text = await runParams(['--method', 'clap', '--dim', '512', '--tasks', '2']);
  assert.match(text, /clap: D = 512, 100 classes in 2 tasks/);
  assert.match(text, /vga\s+18\s+4,204,032\s+4,204,032/);
  assert.match(text, /encoders\.1\s+2\s+525,312\s+525,312/);
  assert.match(text, /\n\s+2\s+50-99\s+525,312\s+5,254,656\s+4,729,344\s+1,050,624/);
  const json = JSON.parse(await runParams(['--method', 'clap', '--dim', '512', '--tasks', '2', '--json'])) as ParamsReport;
  assert.equal(json.perTask[1]!.total, VGA_B16 + 2 * PAIR_B16);
  assert.match(await runParams(['--help']), /Usage: clap4clip params/);
});

test('the baselines: CLIP-Adapter has a fresh D x D/4 x 2 adapter per task, zero-shot nothing', async () => {
  const adapter = await report(['--method', 'clip-adapter', '--dim', '512', '--tasks', '2']);
  assert.deepEqual(adapter.perTask.map((t) => [t.total, t.trainable.train]), [[131_072, 131_072], [131_072, 131_072]]);
  const zs = await report(['--method', 'zeroshot', '--dim', '512', '--tasks', '2']);
  assert.equal(zs.total, 0);
  assert.deepEqual(zs.perTask.map((t) => t.trainable), [{ train: 0, finetune: null }, { train: 0, finetune: 0 }]);
});

test('D, classes and the split come from the config and its data unless given', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clap4clip-params-'));
  dirs.push(dir);
  const manifest = { format: 'clap4clip-features', version: 1, encoder: 'ViT-L/14', dim: 768, logitScale: 100, classNames: Array.from({ length: 20 }, (_, i) => `c${i}`), templates: ['a photo of a {}.'] };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const cfg = join(dir, 'run.json');
  await writeFile(cfg, JSON.stringify({ data: dir, method: 'clap', increment: 10, methodOptions: { laspWeight: 15 } }));
  const r = await report(['--config', cfg]);
  assert.equal(r.dim, 768);
  assert.equal(r.numClasses, 20);
  assert.equal(r.perTask.length, 2);
  const vga768 = 2 * (4 * 768 * 768 + 4 * 768) + (2 * 768 * 2048 + 2048 + 768) + 6 * 768; // two attentions, FFN of width 2048 (PyTorch's default), three layer norms
  assert.equal(r.perTask[0]!.added, vga768 + 2 * (768 * 768 + 768), 'task 0 builds the VGA and its pair');
  assert.equal(r.perTask[1]!.added, 2 * (768 * 768 + 768));
  const synthetic = await report(['--method', 'clap', '--synthetic-preset', 'benchmark', '--increment', '50']);
  assert.equal(synthetic.dim, 256);
  assert.equal(synthetic.perTask.length, 2);
});

test('bad arguments are clear errors', async () => {
  const fails = async (args: string[], re: RegExp) => assert.rejects(runParams(args), (e: unknown) => e instanceof Clap4ClipError && re.test(e.message));
  await fails(['--method', 'clap', '--tasks', '3'], /100 classes do not split into 3 equal tasks/);
  await fails(['--dimm', '512'], /unknown option --dimm \(did you mean --dim\?\)/);
  await fails(['--dim', '0'], /--dim must be an integer >= 1, got "0"/);
  await fails(['--method', 'nope'], /params: --method must be one of/);
  await fails(['--config', '/nonexistent/run.json'], /run\.json: config file not found/);
  await fails(['--method', 'clap', '--method-options', '{"betta": 1}', '--tasks', '1'], /betta/);
});
