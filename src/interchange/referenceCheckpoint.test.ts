import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSafetensors, encodeSafetensors, readSafetensors, type SafeTensor, type SafetensorsContent } from '../data/safetensors.js';
import { Rng } from '../engine/random.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { buildClapMethod, createClap, type ClapMethod } from '../methods/clap/clap.js';
import { validateClapConfig } from '../methods/clap/config.js';
import { tinyProblem } from '../methods/clap/testFixtures.js';
import { repoRoot } from '../util/paths.js';
import {
  clapFromReference, encodeReferenceCheckpoint, exportReferenceCheckpoint, importReferenceCheckpoint, parseReferenceCheckpoint,
  readReferenceCheckpoint, REFERENCE_HEAD_FORMAT,
} from './referenceCheckpoint.js';
import { exportReferenceTensors, referenceBindings } from './referenceNames.js';

const FIXTURES = join(repoRoot(), 'tests', 'fixtures', 'reference');
const tasks = [{ index: 0, classStart: 0, classEnd: 2 }, { index: 1, classStart: 2, classEnd: 5 }];

/** A 2-task CLAP (D 4, F 8) whose every tensor is random (biases and LayerNorms included). */
function trainedLikeClap(): { method: ClapMethod; text: Float32Array } {
  const prob = tinyProblem({ classes: 6, dim: 4, templates: 3 });
  const method = createClap(prob.setup, { samples: 3, vga: { ffDim: 8 } });
  for (const t of tasks) prob.begin(method, t);
  const rng = new Rng(7);
  for (const [, p] of method.namedParameters()) rng.fillNormal(p.data, 0, 0.3);
  return { method, text: prob.text };
}

function logitsOf(method: ClapMethod, features: Float32Array, eps: Float32Array): Float32Array {
  return noGrad(() => method.model.forward(features, 2, { phase: 'train', training: false, eps, rng: new Rng(0) }).logits.data);
}

describe('reference names: split and join of the [2D, D] encoder weight', () => {
  it('mu_adapters.i is rows 0..D-1 (and bias 0..D-1), sigma_adapters.i rows D..2D-1; mu = A h + a as nn.Linear', () => {
    const { method } = trainedLikeClap();
    const model = method.model;
    const d = 4;
    const tensors = exportReferenceTensors(model);
    const enc = model.encoders[1]!;
    assert.deepEqual(tensors.get('mu_adapters.1.fc.0.weight')!.data, enc.weight.data.slice(0, d * d));
    assert.deepEqual(tensors.get('sigma_adapters.1.fc.0.weight')!.data, enc.weight.data.slice(d * d));
    assert.deepEqual(tensors.get('mu_adapters.1.fc.0.bias')!.data, enc.bias.data.slice(0, d));
    assert.deepEqual(tensors.get('sigma_adapters.1.fc.0.bias')!.data, enc.bias.data.slice(d));
    // The reference's Linear: y = x W^T + b, with the exported W.
    const h = Float32Array.of(0.3, -1, 0.5, 2);
    const { mu } = noGrad(() => enc.forward(new Tensor(h, [1, d])));
    const w = tensors.get('mu_adapters.1.fc.0.weight')!.data;
    const a = tensors.get('mu_adapters.1.fc.0.bias')!.data;
    for (let j = 0; j < d; j++) {
      let y = a[j]!;
      for (let k = 0; k < d; k++) y += w[j * d + k]! * h[k]!;
      assert.ok(Math.abs(mu.data[j]! - y) < 1e-5, `mu[${j}]`);
    }
    // Names in the reference's state-dict order: the VGA (torch order), then per task mu then sigma.
    const names = referenceBindings(model).map((b) => b.name);
    assert.equal(names[0], 'vga.layers.0.self_attn.in_proj_weight');
    assert.equal(names[17], 'vga.layers.0.norm3.bias');
    assert.deepEqual(names.slice(18, 22), ['mu_adapters.0.fc.0.weight', 'mu_adapters.0.fc.0.bias', 'sigma_adapters.0.fc.0.weight', 'sigma_adapters.0.fc.0.bias']);
    assert.equal(names.length, 18 + 4 * 2);
  });

  it('models without a reference mapping are refused on export', () => {
    const prob = tinyProblem({ classes: 2, dim: 4 });
    const det = buildClapMethod('det', prob.setup, validateClapConfig({ vga: { ffDim: 8 } }), true);
    prob.begin(det, { index: 0, classStart: 0, classEnd: 2 });
    assert.throws(() => encodeReferenceCheckpoint(det.model), /no sigma map \(deterministic ablation\)/);
    const tokens = createClap(prob.setup, { taskTokens: true, vga: { ffDim: 8 } });
    prob.begin(tokens, { index: 0, classStart: 0, classEnd: 2 });
    assert.throws(() => encodeReferenceCheckpoint(tokens.model), /task tokens or the hierarchical global encoder/);
    const empty = createClap(prob.setup, { vga: { ffDim: 8 } });
    assert.throws(() => encodeReferenceCheckpoint(empty.model), /no task yet/);
  });
});

describe('reference checkpoint round trip', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'clap4clip-refckpt-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('export -> import gives identical tensors and identical logits (file on disk, metadata included)', async () => {
    const { method, text } = trainedLikeClap();
    const path = join(dir, 'head.safetensors');
    await exportReferenceCheckpoint(method.model, path, { classOrder: [5, 3, 0, 1, 4] });
    const raw = await readSafetensors(path);
    assert.equal(raw.metadata['head_format'], REFERENCE_HEAD_FORMAT);
    assert.equal(raw.metadata['task_sizes'], '[2,3]');
    assert.equal(raw.metadata['nhead'], '1');
    assert.equal(raw.metadata['logit_scale'], '100');
    assert.ok(Object.values(raw.tensors).every((t) => t.dtype === 'F32'));

    const ckpt = await readReferenceCheckpoint(path);
    assert.deepEqual(ckpt.info, { taskSizes: [2, 3], tasks: 2, dim: 4, ffDim: 8, nhead: 1, logitScale: 100, classOrder: [5, 3, 0, 1, 4] });
    const back = await importReferenceCheckpoint(path, { text, numTemplates: 3, config: { samples: 3 } });
    assert.deepEqual(back.model.tasks, method.model.tasks);
    const ours = new Map(method.namedParameters());
    const theirs = back.namedParameters();
    assert.equal(theirs.length, ours.size);
    for (const [name, t] of theirs) assert.deepEqual(t.data, ours.get(name)!.data, name);

    const rng = new Rng(3);
    const features = new Float32Array(2 * 4);
    const eps = new Float32Array(3 * 5 * 4);
    rng.fillNormal(features);
    rng.fillNormal(eps);
    assert.deepEqual(logitsOf(back, features, eps), logitsOf(method, features, eps));
  });

  it('in memory, via encode/decode bytes; the imported method keeps learning (next task, trainable set)', () => {
    const { method, text } = trainedLikeClap();
    const content = encodeReferenceCheckpoint(method.model);
    const decoded = decodeSafetensors(encodeSafetensors(content.tensors, content.metadata), 'mem');
    const back = clapFromReference(parseReferenceCheckpoint(decoded, 'mem'), { text, numTemplates: 3 });
    assert.equal(back.phase, 'train');
    assert.deepEqual(back.model.encoders.map((e) => e.weight.requiresGrad), [false, true]);
    back.beginTask({ index: 2, classStart: 5, classEnd: 6 }, { textPerTemplate: text.slice(5 * 3 * 4, 6 * 3 * 4), numTemplates: 3 }, new Rng(1));
    assert.equal(back.model.classes, 6);
    assert.equal(encodeReferenceCheckpoint(back.model).metadata['task_sizes'], '[2,3,1]');
  });

  it('import checks text, task sizes and config against the checkpoint', () => {
    const { method, text } = trainedLikeClap();
    const ckpt = parseReferenceCheckpoint(encodeReferenceCheckpoint(method.model), 'h.safetensors');
    assert.throws(() => clapFromReference(ckpt, { text: text.slice(0, 4 * 3 * 4), numTemplates: 3 }), /h\.safetensors: text holds 4 classes.*cover 5/);
    assert.throws(() => clapFromReference(ckpt, { text, numTemplates: 5 }), /h\.safetensors: text has 72 values, not a multiple of P 5 x D 4/);
    assert.throws(() => clapFromReference(ckpt, { text, numTemplates: 3, taskSizes: [3, 2] }), /disagrees with the given task sizes \[3, 2\]/);
    assert.throws(() => clapFromReference(ckpt, { text, numTemplates: 3, config: { vga: { ffDim: 16 } } }), /disagrees with the checkpoint \(nhead 1, feed-forward 8\)/);
    const noSizes = { ...ckpt, info: { ...ckpt.info, taskSizes: null } };
    assert.throws(() => clapFromReference(noSizes, { text, numTemplates: 3 }), /no "task_sizes" metadata/);
    assert.deepEqual(clapFromReference(noSizes, { text, numTemplates: 3, taskSizes: [2, 3] }).model.classes, 5);
  });
});

describe('reference checkpoint validation names the file and the tensor', () => {
  let fixture: SafetensorsContent;
  before(async () => { fixture = await readSafetensors(join(FIXTURES, 'checkpoint.safetensors')); });
  const FILE = 'ref.safetensors';
  const edit = (fn: (t: Record<string, SafeTensor>, m: Record<string, string>) => void): SafetensorsContent => {
    const tensors = { ...fixture.tensors };
    const metadata = { ...fixture.metadata };
    fn(tensors, metadata);
    return { tensors, metadata };
  };
  const rejects = (content: SafetensorsContent, pattern: RegExp) =>
    assert.throws(() => parseReferenceCheckpoint(content, FILE), (err: Error) => err.message.startsWith(`${FILE}: `) && pattern.test(err.message));

  it('reads the PyTorch fixture: D 8, F 16, tasks [2, 3]', () => {
    const { info } = parseReferenceCheckpoint(fixture, FILE);
    assert.deepEqual(info, { taskSizes: [2, 3], tasks: 2, dim: 8, ffDim: 16, nhead: 1, logitScale: 100, classOrder: null });
  });
  it('missing tensors', () => {
    rejects(edit((t) => { delete t['sigma_adapters.1.fc.0.bias']; }), /missing tensor "sigma_adapters\.1\.fc\.0\.bias"$/);
    rejects(edit((t) => { delete t['vga.layers.0.norm2.weight']; delete t['vga.layers.0.norm2.bias']; }), /missing tensor "vga\.layers\.0\.norm2\.weight" \(and 1 more: vga\.layers\.0\.norm2\.bias\)/);
    rejects(edit((t) => { delete t['vga.layers.0.linear1.weight']; }), /missing tensor "vga\.layers\.0\.linear1\.weight"/);
  });
  it('unexpected tensors, with a hint', () => {
    const w = fixture.tensors['vga.layers.0.norm1.weight']!;
    rejects(edit((t) => { t['vga.layers.1.norm1.weight'] = w; }), /unexpected tensor "vga\.layers\.1\.norm1\.weight" \(the reference VGA has exactly one decoder layer\)/);
    rejects(edit((t) => { t['mu_global_adapter.fc.0.bias'] = w; }), /unexpected tensor "mu_global_adapter\.fc\.0\.bias" \(task tokens and the hierarchical/);
    rejects(edit((t) => { t['image_encoder.conv1.weight'] = w; }), /save only the trainable modules/);
    rejects(edit((_t, m) => { m['task_sizes'] = '[5]'; }), /unexpected tensor "mu_adapters\.1\.fc\.0\.(weight|bias)" \(more adapter pairs than tasks in task_sizes\)/);
    rejects(edit((_t, m) => { m['task_sizes'] = '[2, 2, 1]'; }), /missing tensor "mu_adapters\.2\.fc\.0\.weight"/);
  });
  it('wrong shapes and dtypes, non-finite values', () => {
    rejects(edit((t) => { t['mu_adapters.0.fc.0.weight'] = { dtype: 'F32', shape: [8, 7], data: new Float32Array(56) }; }), /tensor "mu_adapters\.0\.fc\.0\.weight" has shape \[8, 7\], expected \[8, 8\]/);
    rejects(edit((t) => { t['vga.layers.0.norm3.bias'] = { dtype: 'F32', shape: [1, 8], data: new Float32Array(8) }; }), /tensor "vga\.layers\.0\.norm3\.bias" has shape \[1, 8\], expected \[8\]/);
    rejects(edit((t) => { t['sigma_adapters.0.fc.0.bias'] = { dtype: 'I32', shape: [8], data: new Int32Array(8) }; }), /tensor "sigma_adapters\.0\.fc\.0\.bias" has dtype I32/);
    rejects(edit((t) => { const d = new Float32Array(8); d[3] = NaN; t['mu_adapters.1.fc.0.bias'] = { dtype: 'F32', shape: [8], data: d }; }), /tensor "mu_adapters\.1\.fc\.0\.bias" element 3 is NaN/);
  });
  it('metadata', () => {
    rejects(edit((_t, m) => { m['task_sizes'] = '2,3'; }), /metadata "task_sizes" must be a JSON array of integers/);
    rejects(edit((_t, m) => { m['task_sizes'] = '[2, 0]'; }), /metadata "task_sizes" must be a non-empty list of positive integers/);
    rejects(edit((_t, m) => { m['nhead'] = '3'; }), /metadata "nhead" 3 does not divide D = 8/);
    rejects(edit((_t, m) => { m['dim'] = '16'; }), /metadata "dim" is 16 but the tensors have D = 8/);
    rejects(edit((_t, m) => { m['logit_scale'] = 'abc'; }), /metadata "logit_scale" must be a positive number/);
    rejects(edit((_t, m) => { m['head_format'] = 'something-else/2'; }), /metadata "head_format"/);
    rejects(edit((_t, m) => { m['class_order'] = '[1, 2]'; }), /"class_order" lists 2 classes but "task_sizes" sums to 5/);
    rejects(edit((t, m) => { delete m['task_sizes']; for (const k of Object.keys(t)) if (k.includes('adapters')) delete t[k]; }), /no adapter pairs/);
  });
  it('accepts F16/F64 tensors (the reference trains in fp16) and files without task_sizes', () => {
    const half = edit((t, m) => {
      t['mu_adapters.0.fc.0.bias'] = { ...t['mu_adapters.0.fc.0.bias']!, dtype: 'F16' };
      t['mu_adapters.1.fc.0.bias'] = { dtype: 'F64', shape: [8], data: Float64Array.from(t['mu_adapters.1.fc.0.bias']!.data as Float32Array) };
      delete m['task_sizes'];
      m['format'] = 'pt';
    });
    const ckpt = parseReferenceCheckpoint(decodeSafetensors(encodeSafetensors(half.tensors, half.metadata), FILE), FILE);
    assert.equal(ckpt.info.taskSizes, null);
    assert.equal(ckpt.info.tasks, 2);
    assert.deepEqual(ckpt.tensors.get('mu_adapters.1.fc.0.bias')!.data, fixture.tensors['mu_adapters.1.fc.0.bias']!.data);
  });
});
