import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, type SafeTensor, type SafetensorsContent } from '../data/safetensors.js';
import { forwardCommand } from '../cli/commands/forward.js';
import { repoRoot } from '../util/paths.js';
import { parseForwardInputs, referenceForward, type ForwardMode } from './forward.js';
import { parseReferenceCheckpoint } from './referenceCheckpoint.js';
import { expectedReferenceShapes } from './referenceNames.js';

const FIXTURES = join(repoRoot(), 'tests', 'fixtures', 'reference');
const quiet = { stdout: { write: () => true } };

/** max |got - expected| over max |expected| (per tensor: a gradient that is ~0 somewhere is not penalized). */
function relativeError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return err / Math.max(scale, 1e-30);
}

describe('forward against PyTorch (tests/fixtures/reference/clapHead.py: D 8, F 16, tasks [2, 3], P 3, B 4, T 3)', () => {
  let dir = '';
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'clap4clip-forward-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  for (const mode of ['train', 'finetune', 'test'] as const) {
    it(`${mode}: the command's outputs match every expected tensor to 1e-5 relative`, async () => {
      const out = join(dir, `${mode}.safetensors`);
      const code = await forwardCommand.run(['--checkpoint', join(FIXTURES, 'checkpoint.safetensors'), '--inputs', join(FIXTURES, 'inputs.safetensors'), '--mode', mode, '--out', out], quiet);
      assert.equal(code, 0);
      const got = (await readSafetensors(out)).tensors;
      const expected = (await readSafetensors(join(FIXTURES, `expected.${mode}.safetensors`))).tensors;
      assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), 'the same output names (logits, losses, gradients of the mode)');
      const gradCount = { train: 18 + 4, finetune: 2 * 4, test: 0 }[mode];
      assert.equal(Object.keys(got).filter((k) => k.startsWith('grad.')).length, gradCount);
      for (const [name, e] of Object.entries(expected)) {
        assert.deepEqual(got[name]!.shape, e.shape, name);
        assert.equal(got[name]!.dtype, 'F32', name);
        const rel = relativeError(got[name]!.data as Float32Array, e.data as Float64Array);
        assert.ok(rel <= 1e-5, `${mode} ${name}: relative error ${rel}`);
      }
    });
  }
});

/**
 * Computed by hand: D = 2, F = 2, one task of one class, P = 2, B = 1, T = 1.
 *   text e[0] = (1, 0), (0.28, 0.96): mean (0.64, 0.48), norm 0.8, so t = (0.8, 0.6).
 *   VGA: every tensor 0 except norm3.bias = (0.2, 0.4). With zero gains each LayerNorm outputs its
 *     bias whatever its input, so V = (0.2, 0.4) and h = t + V = (1, 1).
 *   mu adapter: W = 0.5 I, bias (0, -0.5): mu = (0.5, 0).
 *   sigma adapter: W = 0, bias (ln(e - 1), 0): softplus = (1, ln 2), sigma = 0.999 * that + 0.001
 *     = (1, s) with s = 0.999 ln 2 + 0.001 = 0.69345...
 *   eps = (2, 0): z = mu + sigma * eps = (2.5, 0), w = h + z = (3.5, 1).
 *   f = (0.6, 0.8): logit = 100 * (0.6 * 3.5 + 0.8 * 1) = 100 * 2.9 = 290.
 *   KL = 0.001 * [ (-ln 1 + (1 + 0.25) / 2 - 1/2) + (-ln s + s^2 / 2 - 1/2) ] = 0.001 * (0.125 + 0.10652...)
 *   CE = 0 and LASP = 0: a softmax over one class is 1 (and its gradient 0).
 *   Gradients (train) come from KL only: dKL/dmu = 0.001 mu = (0.0005, 0) -> mu bias (0.0005, 0),
 *     mu weight = (0.0005, 0)^T h = [[0.0005, 0.0005], [0, 0]]; dKL/dsigma = 0.001 (sigma - 1/sigma),
 *     times dsigma/dx = 0.999 sigmoid(x) = (0.999 * 0.63212, 0.999 * 0.5): sigma bias (0, 0.0005 * 0.999 (s - 1/s));
 *     dL/dh = W_mu^T dL/dmu + W_sigma^T (...) = (0.00025, 0) = norm3.bias's gradient; norm3.weight's is 0
 *     (its LayerNorm input is the zero vector).
 */
describe('forward on a case computed by hand (D 2, one class)', () => {
  const s = 0.999 * Math.LN2 + 0.001;
  const kl = 0.001 * (0.125 + (-Math.log(s) + (s * s) / 2 - 0.5));
  const f32 = (values: number[], shape: number[]): SafeTensor => ({ dtype: 'F32', shape, data: Float32Array.from(values) });
  const checkpoint = (): SafetensorsContent => {
    const tensors: Record<string, SafeTensor> = {};
    for (const [name, shape] of expectedReferenceShapes(2, 2, 1)) tensors[name] = f32(new Array(shape.reduce((a, b) => a * b, 1)).fill(0), shape);
    tensors['vga.layers.0.norm3.bias'] = f32([0.2, 0.4], [2]);
    tensors['mu_adapters.0.fc.0.weight'] = f32([0.5, 0, 0, 0.5], [2, 2]);
    tensors['mu_adapters.0.fc.0.bias'] = f32([0, -0.5], [2]);
    tensors['sigma_adapters.0.fc.0.bias'] = f32([Math.log(Math.E - 1), 0], [2]);
    return { tensors, metadata: { task_sizes: '[1]' } };
  };
  const inputs = (): SafetensorsContent => ({
    tensors: {
      features: f32([0.6, 0.8], [1, 2]),
      text: f32([1, 0, 0.28, 0.96], [1, 2, 2]),
      labels: { dtype: 'I32', shape: [1], data: Int32Array.of(0) },
      eps: f32([2, 0], [1, 1, 2]),
      taskSizes: { dtype: 'I32', shape: [1], data: Int32Array.of(1) },
    },
    metadata: {},
  });
  const run = (mode: ForwardMode) => referenceForward(parseReferenceCheckpoint(checkpoint(), 'hand.safetensors'), parseForwardInputs(inputs(), 'hand-inputs.safetensors', mode), mode);
  const close = (got: SafeTensor | undefined, want: number[], what: string, tol = 1e-6) => {
    assert.ok(got, `${what} present`);
    assert.equal(got.data.length, want.length, what);
    want.forEach((w, i) => assert.ok(Math.abs(Number(got.data[i]) - w) <= tol * Math.max(1, Math.abs(w)), `${what}[${i}] = ${got.data[i]}, expected ${w}`));
  };

  it('test mode: the logit is 290', () => {
    const out = run('test');
    assert.deepEqual(Object.keys(out), ['logits']);
    assert.deepEqual(out['logits']!.shape, [1, 1, 1]);
    close(out['logits'], [290], 'logits');
  });

  for (const mode of ['train', 'finetune'] as const) {
    it(`${mode} mode: CE 0, LASP 0, KL = 0.001 (0.125 - ln s + s^2/2 - 1/2), and its gradients`, () => {
      const out = run(mode);
      close(out['logits'], [290], 'logits');
      close(out['loss.ce'], [0], 'loss.ce', 1e-7);
      close(out['loss.lasp'], [0], 'loss.lasp', 1e-7);
      close(out['loss.kl'], [kl], 'loss.kl');
      close(out['loss.total'], [kl], 'loss.total');
      // Gradients are ~1e-4: compare with an absolute tolerance well below them.
      const g = (name: string, want: number[]) => close(out[`grad.${name}`], want, name, 1e-9);
      g('mu_adapters.0.fc.0.bias', [0.0005, 0]);
      g('mu_adapters.0.fc.0.weight', [0.0005, 0.0005, 0, 0]);
      const gs = 0.0005 * 0.999 * (s - 1 / s);
      g('sigma_adapters.0.fc.0.bias', [0, gs]);
      g('sigma_adapters.0.fc.0.weight', [0, 0, gs, gs]);
      if (mode === 'train') {
        g('vga.layers.0.norm3.bias', [0.00025, 0]);
        g('vga.layers.0.norm3.weight', [0, 0]);
      } else {
        assert.equal(out['grad.vga.layers.0.norm3.bias'], undefined, 'the VGA is frozen while finetuning');
      }
    });
  }
});

describe('forward input validation names the file and the tensor', () => {
  let base: SafetensorsContent;
  let ckpt: SafetensorsContent;
  before(async () => {
    base = await readSafetensors(join(FIXTURES, 'inputs.safetensors'));
    ckpt = await readSafetensors(join(FIXTURES, 'checkpoint.safetensors'));
  });
  const FILE = 'in.safetensors';
  const edit = (fn: (t: Record<string, SafeTensor>) => void): SafetensorsContent => {
    const tensors: Record<string, SafeTensor> = {};
    for (const [k, t] of Object.entries(base.tensors)) tensors[k] = { ...t, shape: [...t.shape], data: t.data.slice() };
    fn(tensors);
    return { tensors, metadata: {} };
  };
  const rejects = (content: SafetensorsContent, pattern: RegExp, mode: ForwardMode = 'train') =>
    assert.throws(() => parseForwardInputs(content, FILE, mode), (err: Error) => err.message.startsWith(`${FILE}: `) && pattern.test(err.message));

  it('accepts the fixture, and no labels in test mode only', () => {
    assert.equal(parseForwardInputs(base, FILE, 'train').batch, 4);
    const noLabels = edit((t) => { delete t['labels']; });
    assert.equal(parseForwardInputs(noLabels, FILE, 'test').labels, null);
    rejects(noLabels, /missing tensor "labels"/);
  });
  it('missing, unexpected and mistyped tensors', () => {
    rejects(edit((t) => { delete t['eps']; }), /missing tensor "eps"/);
    rejects(edit((t) => { t['noise'] = t['eps']!; }), /unexpected tensor "noise"/);
    rejects(edit((t) => { t['labels'] = { dtype: 'I64', shape: [4], data: BigInt64Array.of(0n, 3n, 4n, 2n) }; }), /tensor "labels" has dtype I64, expected I32/);
    rejects(edit((t) => { t['features'] = { dtype: 'F64', shape: t['features']!.shape, data: Float64Array.from(t['features']!.data as Float32Array) }; }), /tensor "features" has dtype F64, expected F32/);
  });
  it('inconsistent shapes', () => {
    rejects(edit((t) => { t['eps'] = { dtype: 'F32', shape: [3, 4, 8], data: new Float32Array(96) }; }), /tensor "eps" has shape \[3, 4, 8\], expected \[T, C, D\] = \[3, 5, 8\]/);
    rejects(edit((t) => { t['text'] = { dtype: 'F32', shape: [5, 3, 7], data: new Float32Array(105) }; }), /tensor "text" has shape \[5, 3, 7\]/);
    rejects(edit((t) => { t['labels'] = { dtype: 'I32', shape: [3], data: Int32Array.of(0, 1, 2) }; }), /tensor "labels" has shape \[3\], expected \[B\] = \[4\]/);
    rejects(edit((t) => { t['features'] = { dtype: 'F32', shape: [32], data: new Float32Array(32) }; }), /tensor "features" has shape \[32\], expected 2 dimensions/);
    rejects(edit((t) => { t['eps'] = { dtype: 'F32', shape: [0, 5, 8], data: new Float32Array(0) }; }), /tensor "eps" has an empty dimension/);
  });
  it('non-finite values, labels out of range, task sizes', () => {
    rejects(edit((t) => { t['features']!.data[5] = NaN; }), /tensor "features" element 5 is NaN/);
    rejects(edit((t) => { t['eps']!.data[0] = Infinity; }), /tensor "eps" element 0 is Infinity/);
    rejects(edit((t) => { t['labels']!.data[2] = 5; }), /tensor "labels" element 2 is 5, outside the C = 5 classes/);
    rejects(edit((t) => { t['labels']!.data[0] = -1; }), /tensor "labels" element 0 is -1/);
    rejects(edit((t) => { t['taskSizes'] = { dtype: 'I32', shape: [2], data: Int32Array.of(2, 2) }; }), /tensor "taskSizes" \[2, 2\] sums to 4, but text has C = 5/);
    rejects(edit((t) => { t['taskSizes'] = { dtype: 'I32', shape: [3], data: Int32Array.of(2, 3, 0) }; }), /tensor "taskSizes" must be a non-empty list of positive integers/);
  });
  it('checkpoint and inputs must agree (D, number of tasks, task sizes)', () => {
    const ck = parseReferenceCheckpoint(ckpt, 'ck.safetensors');
    const oneTask = parseForwardInputs(edit((t) => { t['taskSizes'] = { dtype: 'I32', shape: [1], data: Int32Array.of(5) }; }), FILE, 'train');
    assert.throws(() => referenceForward(ck, oneTask, 'train'), /in\.safetensors: tensor "taskSizes" lists 1 tasks, but the checkpoint ck\.safetensors has 2 adapter pairs/);
    const swapped = parseForwardInputs(edit((t) => { t['taskSizes'] = { dtype: 'I32', shape: [2], data: Int32Array.of(3, 2) }; }), FILE, 'train');
    assert.throws(() => referenceForward(ck, swapped, 'train'), /ck\.safetensors: metadata "task_sizes" \[2, 3\] disagrees with the given task sizes \[3, 2\]/);
    const narrow = edit((t) => {
      t['features'] = { dtype: 'F32', shape: [4, 4], data: new Float32Array(16).fill(0.5) };
      t['text'] = { dtype: 'F32', shape: [5, 3, 4], data: new Float32Array(60).fill(0.5) };
      t['eps'] = { dtype: 'F32', shape: [3, 5, 4], data: new Float32Array(60) };
    });
    assert.throws(() => referenceForward(ck, parseForwardInputs(narrow, FILE, 'train'), 'train'), /in\.safetensors: tensor "features" has D = 4, but the checkpoint ck\.safetensors has D = 8/);
  });
  it('the command rejects missing options and unknown modes', async () => {
    await assert.rejects(forwardCommand.run(['--checkpoint', 'a', '--inputs', 'b'], quiet), /--mode, --out are required/);
    await assert.rejects(forwardCommand.run(['--checkpoint', 'a', '--inputs', 'b', '--out', 'c', '--mode', 'eval'], quiet), /--mode must be one of \[train, finetune, test\], got "eval"/);
    await assert.rejects(forwardCommand.run(['--checkpoint', 'a', '--inputs', 'b', '--out', 'c', '--mode', 'test', '--seed', '1'], quiet), /forward: unknown option --seed; see clap4clip forward --help/);
    await assert.rejects(forwardCommand.run(['--checkpoint', join(FIXTURES, 'nope.safetensors'), '--inputs', 'b', '--out', 'c', '--mode', 'test'], quiet), /nope\.safetensors: safetensors file not found/);
  });
});
