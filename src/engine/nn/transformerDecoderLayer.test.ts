import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../util/paths.js';
import { gemmSettings } from '../ops/matmul.js';
import * as op from '../ops/index.js';
import { Rng } from '../random.js';
import { Tensor } from '../tensor.js';
import { gradCheck } from '../testing/gradCheck.js';
import { withSettings } from '../testing/withSettings.js';
import { blockDiagonalMask, MultiheadAttention } from './attention.js';
import { countParameters, parameters } from './parameters.js';
import { torchStateDictNames, TransformerDecoderLayer } from './transformerDecoderLayer.js';

function randn(shape: number[], rng: Rng, requiresGrad = true): Tensor {
  const t = Tensor.zeros(shape, requiresGrad);
  rng.fillNormal(t.data);
  return t;
}

/** A small layer (FF width 8) with random biases and LayerNorm gains, so every path carries signal. */
function randomLayer(d: number, h: number, seed: number, dropout = 0.1): TransformerDecoderLayer {
  const rng = new Rng(seed);
  const layer = new TransformerDecoderLayer(d, h, rng, { dimFeedforward: 8, dropout });
  for (const [name, t] of torchStateDictNames(layer)) {
    if (/norm\d\.weight$/.test(name)) rng.fillUniform(t.data, 0.7, 1.3);
    else if (name.endsWith('bias')) rng.fillUniform(t.data, -0.5, 0.5);
  }
  return layer;
}

describe('TransformerDecoderLayer', () => {
  it('has torch state-dict names, shapes and order', () => {
    const layer = new TransformerDecoderLayer(4, 1, new Rng(0));
    const entries = torchStateDictNames(layer).map(([n, t]) => `${n} [${t.shape.join(', ')}]`);
    assert.deepEqual(entries, [
      'self_attn.in_proj_weight [12, 4]', 'self_attn.in_proj_bias [12]',
      'self_attn.out_proj.weight [4, 4]', 'self_attn.out_proj.bias [4]',
      'multihead_attn.in_proj_weight [12, 4]', 'multihead_attn.in_proj_bias [12]',
      'multihead_attn.out_proj.weight [4, 4]', 'multihead_attn.out_proj.bias [4]',
      'linear1.weight [2048, 4]', 'linear1.bias [2048]', 'linear2.weight [4, 2048]', 'linear2.bias [4]',
      'norm1.weight [4]', 'norm1.bias [4]', 'norm2.weight [4]', 'norm2.bias [4]', 'norm3.weight [4]', 'norm3.bias [4]',
    ]);
    // torch: sum(p.numel() for p in nn.TransformerDecoderLayer(512, 1, activation='gelu').parameters())
    assert.equal(countParameters(new TransformerDecoderLayer(512, 1, new Rng(0))), 4204032);
  });

  it('is deterministic per seed', () => {
    const a = parameters(new TransformerDecoderLayer(4, 2, new Rng(5), { dimFeedforward: 8 }));
    const b = parameters(new TransformerDecoderLayer(4, 2, new Rng(5), { dimFeedforward: 8 }));
    a.forEach((t, i) => assert.deepEqual(t.data, b[i]!.data));
  });

  it('gradients: masked self-attention, 1 head, D = 4, C = 3, B = 2 (dropout off)', () => {
    const layer = randomLayer(4, 1, 1);
    const rng = new Rng(2);
    const tgt = randn([3, 4], rng), memory = randn([2, 4], rng);
    const tgtMask = blockDiagonalMask([1, 2]);
    gradCheck(() => layer.forward(tgt, memory, { tgtMask, training: false }), [tgt, memory, ...parameters(layer)]);
  });

  it('gradients: 2 heads, D = 6, C = 3, B = 2 (dropout off)', () => {
    const layer = randomLayer(6, 2, 3);
    const rng = new Rng(4);
    const tgt = randn([3, 6], rng), memory = randn([2, 6], rng);
    const tgtMask = blockDiagonalMask([2, 1]);
    gradCheck(() => layer.forward(tgt, memory, { tgtMask, training: false }), [tgt, memory, ...parameters(layer)]);
  });

  it('gradients with dropout on (the same masks replayed from a fresh generator)', () => {
    const layer = randomLayer(4, 2, 5, 0.3);
    const rng = new Rng(6);
    const tgt = randn([3, 4], rng), memory = randn([2, 4], rng);
    const forward = (seed: number) => layer.forward(tgt, memory, { training: true, rng: new Rng(seed) });
    assert.notDeepEqual(forward(1).data, forward(2).data);
    assert.deepEqual(forward(1).data, forward(1).data);
    gradCheck(() => forward(7), [tgt, memory, ...parameters(layer)]);
  });

  it('with dropout on and the native paths (residual LayerNorms, masked GELU), equals the primitive composition drawing the same masks', () => {
    // [70, 64] rows and a [70, 128] feed-forward: above every onnxruntime threshold.
    const d = 64, ff = 128, c = 70, p = 0.2;
    const rng = new Rng(9);
    const layer = new TransformerDecoderLayer(d, 2, rng, { dimFeedforward: ff, dropout: p });
    for (const [name, t] of torchStateDictNames(layer)) if (/norm\d\.(weight|bias)$/.test(name)) rng.fillUniform(t.data, 0.5, 1.5);
    const tgt = randn([c, d], rng), memory = randn([5, d], rng, false);
    const probe = randn([c, d], rng, false);
    const primitive = (gen: Rng) => {
      const ln = (x: Tensor, n: typeof layer.norm1) => op.layerNorm(x, n.weight, n.bias, n.eps);
      let x = tgt;
      const sa = layer.selfAttn.forward(x, x, x, { training: true, rng: gen });
      x = ln(op.add(x, op.dropout(sa, p, gen, true)), layer.norm1);
      const ca = layer.multiheadAttn.forward(x, memory, memory, { training: true, rng: gen });
      x = ln(op.add(x, op.dropout(ca, p, gen, true)), layer.norm2);
      const ffOut = layer.linear2.forward(op.dropout(op.gelu(layer.linear1.forward(x)), p, gen, true));
      return ln(op.add(x, op.dropout(ffOut, p, gen, true)), layer.norm3);
    };
    const run = (f: (gen: Rng) => Tensor) => {
      const params = [tgt, ...parameters(layer)];
      params.forEach((t) => { t.grad = null; });
      const y = f(new Rng(3));
      y.backward(probe.data.slice());
      return { y: y.data, grads: params.map((t) => t.grad!.slice()) };
    };
    const fused = run((gen) => layer.forward(tgt, memory, { training: true, rng: gen })), ref = run(primitive);
    fused.y.forEach((v, i) => assert.ok(Math.abs(v - ref.y[i]!) < 1e-4, `output ${i}: ${v} vs ${ref.y[i]}`));
    fused.grads.forEach((g, k) => {
      const scale = ref.grads[k]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      g.forEach((v, i) => assert.ok(Math.abs(v - ref.grads[k]![i]!) <= 1e-4 * Math.max(1, scale), `gradient ${k} element ${i}: ${v} vs ${ref.grads[k]![i]}`));
    });
  });

  it('a task\'s outputs do not depend on other tasks\' queries (exact zeros)', () => {
    // Tasks {0, 1} and {2}: self-attention is the only place rows mix, and it is blocked.
    const layer = randomLayer(4, 1, 8);
    const rng = new Rng(9);
    const tgt = randn([3, 4], rng), memory = randn([2, 4], rng);
    const out = layer.forward(tgt, memory, { tgtMask: blockDiagonalMask([2, 1]), training: false });
    const seed = new Float32Array(out.size);
    seed.fill(1, 0, 8); // rows 0 and 1
    out.backward(seed);
    assert.ok(tgt.grad!.subarray(8).every((g) => g === 0));
    assert.ok(tgt.grad!.subarray(0, 8).some((g) => g !== 0));
  });

  for (const path of ['ts', 'onnx'] as const) {
    it(`queries prepared once serve batch after batch with the same outputs as forward (evaluation, matmul in ${path})`, () => {
      withSettings(gemmSettings, { forcePath: path }, () => {
        const d = 32;
        const rng = new Rng(21);
        const layer = new TransformerDecoderLayer(d, 2, rng, { dimFeedforward: 64 });
        const tgt = randn([6, d], rng, false);
        const opts = { tgtMask: blockDiagonalMask([4, 2]), training: false };
        const prepared = layer.prepareQueries(tgt, opts);
        for (const b of [5, 1, 9]) {
          const memory = randn([b, d], rng, false);
          assert.deepEqual(layer.forwardPrepared(prepared, memory, opts).data, layer.forward(tgt, memory, opts).data, `memory of ${b} rows`);
        }
      });
    });
  }

  it('forwardProjected equals forward(query, memory, memory) with the query projected beforehand', () => {
    const rng = new Rng(4);
    const attn = new MultiheadAttention(8, 2, rng);
    rng.fillUniform(attn.inProjBias.data, -0.5, 0.5);
    const query = randn([3, 8], rng, false), memory = randn([5, 8], rng, false);
    const opts = { training: false };
    assert.deepEqual(attn.forwardProjected(attn.projectQuery(query), memory, opts).data, attn.forward(query, memory, memory, opts).data);
  });
});

/** Tensors of the fixture: `{ shape, data }`, row-major. */
interface Stored { shape: number[]; data: number[] }
interface TorchCase {
  name: string;
  kind: 'decoderLayer' | 'multiheadAttention';
  dModel?: number; nHead?: number; dimFeedforward?: number; tasks?: number[];
  embedDim?: number; numHeads?: number;
  weights: Record<string, Stored>;
  tgt?: Stored; memory?: Stored; query?: Stored; key?: Stored; value?: Stored;
  allowed: Stored; probe: Stored; out: Stored; grads: Record<string, Stored>;
}

/** max |a - b| / max |b| over one tensor: the error relative to the tensor's scale. */
function relError(actual: ArrayLike<number>, expected: number[]): number {
  let err = 0, scale = 0;
  expected.forEach((e, i) => { err = Math.max(err, Math.abs(actual[i]! - e)); scale = Math.max(scale, Math.abs(e)); });
  return err / Math.max(scale, 1e-30);
}

const leaf = (s: Stored, requiresGrad = true) => new Tensor(Float32Array.from(s.data), s.shape, requiresGrad);
const additiveMask = (allowed: Stored) => new Tensor(Float32Array.from(allowed.data, (a) => (a ? 0 : -Infinity)), allowed.shape);

/** Builds the case's module with torch's weights, runs it and back-propagates sum(out * W). */
function runTorchCase(c: TorchCase): { out: Tensor; grads: Map<string, Float32Array | null> } {
  const rng = new Rng(0); // overwritten below
  const module = c.kind === 'decoderLayer'
    ? new TransformerDecoderLayer(c.dModel!, c.nHead!, rng, { dimFeedforward: c.dimFeedforward! })
    : new MultiheadAttention(c.embedDim!, c.numHeads!, rng, { dropout: 0.1 });
  const named = torchStateDictNames(module);
  assert.deepEqual(named.map(([n]) => n), Object.keys(c.weights), 'state-dict names and order');
  for (const [name, t] of named) {
    assert.deepEqual([...t.shape], c.weights[name]!.shape, name);
    t.data.set(c.weights[name]!.data);
    t.grad = null;
  }
  const mask = additiveMask(c.allowed);
  const inputs: Record<string, Tensor> = {};
  let out: Tensor;
  if (module instanceof TransformerDecoderLayer) {
    inputs['tgt'] = leaf(c.tgt!);
    inputs['memory'] = leaf(c.memory!);
    assert.deepEqual([...mask.data], [...blockDiagonalMask(c.tasks!).data]);
    out = module.forward(inputs['tgt'], inputs['memory'], { tgtMask: mask, training: false });
  } else {
    for (const k of ['query', 'key', 'value'] as const) inputs[k] = leaf(c[k]!);
    out = module.forward(inputs['query']!, inputs['key']!, inputs['value']!, { mask, training: false });
  }
  out.backward(Float32Array.from(c.probe.data));
  const grads = new Map<string, Float32Array | null>();
  for (const [k, t] of Object.entries(inputs)) grads.set(k, t.grad);
  for (const [n, t] of named) grads.set(n, t.grad);
  return { out, grads };
}

describe('against PyTorch 1.13 (tests/fixtures/torch/decoderLayer.json)', () => {
  const fixture = JSON.parse(readFileSync(join(repoRoot(), 'tests', 'fixtures', 'torch', 'decoderLayer.json'), 'utf8')) as { cases: TorchCase[] };
  const TOL = 1e-5;

  for (const c of fixture.cases) {
    for (const path of ['ts', 'onnx'] as const) {
      it(`${c.name}: outputs and every gradient (matmul in ${path})`, () => {
        withSettings(gemmSettings, { forcePath: path }, () => {
          const { out, grads } = runTorchCase(c);
          assert.deepEqual([...out.shape], c.out.shape);
          const errors: [string, number][] = [['out', relError(out.data, c.out.data)]];
          for (const [name, g] of Object.entries(c.grads)) {
            const ours = grads.get(name);
            assert.ok(ours, `no gradient for ${name}`);
            errors.push([`grad ${name}`, relError(ours, g.data)]);
          }
          for (const [what, e] of errors) assert.ok(e <= TOL, `${c.name} ${what}: relative error ${e}`);
          if (process.env['CLAP4CLIP_PRINT_ERRORS']) {
            const worst = errors.reduce((a, b) => (b[1] > a[1] ? b : a));
            console.log(`${c.name} (${path}): out ${errors[0]![1].toExponential(2)}, worst ${worst[0]} ${worst[1].toExponential(2)}`);
          }
        });
      });
    }
  }
});
