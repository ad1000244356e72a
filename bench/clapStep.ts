/**
 * The CLAP-shaped training step of engine-notes.md, the same computation as
 * `bench/torch_step.py`: VGA (one decoder layer, dropout on) over C class texts with the
 * batch's B image features as memory, a pair of linear distribution encoders, T samples, logits,
 * CE + KL, backward, SGD. Phases are timed separately.
 */
import { add, crossEntropyFused, klDiagGaussian, l2Normalize, mean, mulScalar, reshape, sampledLogits, softplusFused, addScalar } from '../src/engine/ops/index.js';
import { Linear } from '../src/engine/nn/linear.js';
import { TransformerDecoderLayer } from '../src/engine/nn/transformerDecoderLayer.js';
import { namedParameters } from '../src/engine/nn/parameters.js';
import { SGD, sgdSettings } from '../src/engine/optim.js';
import { drawNormalsAhead } from '../src/engine/normalsAhead.js';
import { Rng } from '../src/engine/random.js';
import { Tensor } from '../src/engine/tensor.js';

export interface StepShape { classes: number; batch: number; samples: number; dim: number; ffDim?: number }

/** Wall ms of each phase and of the step, and the process's CPU ms over the step (all threads). */
export interface PhaseTimes { noise: number; vga: number; head: number; backward: number; optimizer: number; total: number; cpu: number }

/**
 * The update is `SGD.backwardStep`, as in the CLAP method: with the fold on (the default), the
 * weights are updated inside the backward pass and the optimizer phase is about zero.
 */
export function createClapStep(shape: StepShape, seed = 0) {
  const { classes: C, batch: B, samples: T, dim: D } = shape;
  const rng = new Rng(seed);
  const model = {
    vga: new TransformerDecoderLayer(D, 1, rng, { dimFeedforward: shape.ffDim ?? 2048, dropout: 0.1 }),
    mu: new Linear(D, D, rng),
    sigma: new Linear(D, D, rng),
  };
  const params = namedParameters(model).map(([, p]) => p);
  const sgd = new SGD(params, { lr: 0.01 });
  const unit = (rows: number) => {
    const t = Tensor.zeros([rows, D]);
    rng.fillNormal(t.data);
    return l2Normalize(t);
  };
  const text = unit(C), img = unit(B);
  const labels = new Int32Array(B).map(() => rng.int(C));
  const noiseRng = rng.fork(), dropoutRng = rng.fork();

  /** One training step; returns the loss and the time of each phase in ms. */
  function step(): { loss: number; times: PhaseTimes } {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    // As the CLAP model: eps from a child stream, drawn on the worker thread while the VGA runs
    // (CLAP4CLIP_NOISE_WORKER=0 draws it here); the noise phase is the wait for it in `take`.
    const epsAhead = drawNormalsAhead(noiseRng.fork(), T * C * D);
    const t1 = performance.now();
    const v = model.vga.forward(text, img, { training: true, rng: dropoutRng });
    const h = add(text, v);
    const t2 = performance.now();
    const mu = model.mu.forward(h);
    const sigma = addScalar(mulScalar(softplusFused(model.sigma.forward(h)), 0.999), 0.001);
    const tn = performance.now();
    const eps = epsAhead.take();
    const noise = t1 - t0 + performance.now() - tn;
    const logits = sampledLogits(img, add(h, mu), sigma, eps, T, 100); // [T, B, C]
    const targets = new Int32Array(T * B);
    for (let r = 0; r < T; r++) targets.set(labels, r * B);
    const ce = crossEntropyFused(reshape(logits, [T * B, C]), targets);
    const kl = mulScalar(mean(klDiagGaussian(mu, sigma)), 0.001);
    const loss = add(ce, kl);
    const t3 = performance.now();
    sgd.zeroGrad();
    if (sgdSettings.foldIntoGemm) {
      sgd.backwardStep(loss);
    } else {
      loss.backward(); // the same computation as backwardStep without the fold, timed apart
    }
    const t4 = performance.now();
    if (!sgdSettings.foldIntoGemm) sgd.step();
    const t5 = performance.now();
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e3;
    return { loss: loss.item(), times: { noise, vga: t2 - t1, head: t3 - t2 - noise + (t1 - t0), backward: t4 - t3, optimizer: t5 - t4, total: t5 - t0, cpu } };
  }
  return { step, parameterCount: params.reduce((n, p) => n + p.size, 0) };
}
