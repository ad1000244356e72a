/**
 * CCA-CL: the hand cases of baselines.md section 7 (9 scatter, 10 solve, 11 random features), the
 * factored statistics against the reference's scatters, the low-rank solve against the
 * reference's three eigendecompositions, state round trips and option checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../engine/random.js';
import { generateSyntheticDataset, SYNTHETIC_TINY } from '../../data/synthetic.js';
import { DataError } from '../../util/errors.js';
import { tensorSource } from '../state.js';
import { createCcaCl } from './ccaCl.js';
import { drawRandomFeatures, mapRandomFeatures } from './rff.js';
import { canonicalFromCovariances, projectionLogits, rankByEnergy, solveEigh, solveLowRank, type CcaProjection } from './solve.js';
import { CcaStatistics, dofOf } from './statistics.js';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('hand case 11: phi(0) with D\' = 2, b = (0, pi) is (1, -1)', () => {
  const phi = mapRandomFeatures({ w: Float32Array.of(0.3, -2), b: Float32Array.of(0, Math.PI), dim: 1, rffDim: 2 }, Float32Array.of(0), 1);
  close(phi[0]!, 1, 1e-7, 'phi_0');
  close(phi[1]!, -1, 1e-7, 'phi_1');
  // sqrt(2/D') cos(x W + b) at x = 1: sqrt(2/2) cos(0.3), cos(-2 + pi).
  const at1 = mapRandomFeatures({ w: Float32Array.of(0.3, -2), b: Float32Array.of(0, Math.PI), dim: 1, rffDim: 2 }, Float32Array.of(1), 1);
  close(at1[0]!, Math.cos(0.3), 1e-6, 'phi(1)_0');
  close(at1[1]!, Math.cos(Math.PI - 2), 1e-6, 'phi(1)_1');
});

test('random features are drawn from the generator: W ~ N(0, 1/sigma^2), b in [0, 2 pi)', () => {
  const a = drawRandomFeatures(16, 512, 2, new Rng(5));
  assert.deepEqual(drawRandomFeatures(16, 512, 2, new Rng(5)), a);
  let s2 = 0;
  for (const w of a.w) s2 += w * w;
  close(s2 / a.w.length, 1 / 4, 0.02, 'variance of W at sigma 2');
  assert.ok(a.b.every((b) => b >= 0 && b < 2 * Math.PI));
});

test('hand case 9: batches {1, 3} and {5} give Szz = 2, m = 3, n = 3, S = 1 (the global variance would be 4)', () => {
  const s = new CcaStatistics(1);
  s.growClasses(2);
  s.addBatches(Float32Array.of(1, 3, 5), [0, 1, 0], 3, 2);
  assert.equal(s.szz[0], 2);
  assert.equal(s.mz[0], 3);
  assert.equal(s.n, 3);
  assert.equal(s.szz[0]! / dofOf(s.n), 1);
  // The text side in factored form, against the reference's scatters of u = phi(t_y) with phi(t) = (2, 7):
  // batch 1 has u = {2, 7} (centred +-2.5), batch 2 one row: Suu = 12.5, Szu = (-1)(-2.5) + (1)(2.5) = 5.
  assert.deepEqual(Array.from(s.myy), [0.5, -0.5, -0.5, 0.5]);
  assert.deepEqual(Array.from(s.myz), [-1, 1]);
  assert.deepEqual(Array.from(s.counts), [2, 1]);
  const phi = [2, 7];
  let suu = 0, szu = 0;
  for (let a = 0; a < 2; a++) {
    szu += s.myz[a]! * phi[a]!;
    for (let b = 0; b < 2; b++) suu += phi[a]! * s.myy[a * 2 + b]! * phi[b]!;
  }
  assert.equal(suu, 12.5);
  assert.equal(szu, 5);
});

test('statistics: Szz, Suu, Szu rebuilt from the factored state equal the reference scatters on random batches', () => {
  const rng = new Rng(2);
  const d = 5, C = 3, m = 23, B = 4;
  const z = new Float32Array(m * d);
  rng.fillNormal(z);
  const labels = Array.from({ length: m }, () => rng.int(C));
  const phi = Float64Array.from({ length: C * d }, () => rng.normal());
  // Reference: u = phi(t_y), centred within each batch, scatters summed.
  const ref = { szz: new Float64Array(d * d), suu: new Float64Array(d * d), szu: new Float64Array(d * d) };
  for (let s = 0; s < m; s += B) {
    const rows = Array.from({ length: Math.min(B, m - s) }, (_, i) => s + i);
    const zm = new Float64Array(d), um = new Float64Array(d);
    for (const i of rows) for (let j = 0; j < d; j++) { zm[j]! += z[i * d + j]! / rows.length; um[j]! += phi[labels[i]! * d + j]! / rows.length; }
    for (const i of rows) for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
      const za = z[i * d + a]! - zm[a]!, zb = z[i * d + b]! - zm[b]!;
      const ua = phi[labels[i]! * d + a]! - um[a]!, ub = phi[labels[i]! * d + b]! - um[b]!;
      ref.szz[a * d + b]! += za * zb;
      ref.suu[a * d + b]! += ua * ub;
      ref.szu[a * d + b]! += za * ub;
    }
  }
  const s = new CcaStatistics(d);
  s.growClasses(C);
  s.addBatches(z.slice(), labels, m, B);
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
    let suu = 0, szu = 0;
    for (let x = 0; x < C; x++) {
      szu += s.myz[x * d + a]! * phi[x * d + b]!;
      for (let y = 0; y < C; y++) suu += phi[x * d + a]! * s.myy[x * C + y]! * phi[y * d + b]!;
    }
    close(s.szz[a * d + b]!, ref.szz[a * d + b]!, 1e-5, `Szz[${a},${b}]`);
    close(suu, ref.suu[a * d + b]!, 1e-5, `Suu[${a},${b}]`);
    close(szu, ref.szu[a * d + b]!, 1e-5, `Szu[${a},${b}]`);
  }
  assert.throws(() => s.addBatches(new Float32Array(d), [C], 1, B), /label 3 outside the 3 classes/);
});

test('energy rank: cumsum / (sum + 1e-12) <= energy, at least 1, all at energy 1', () => {
  assert.equal(rankByEnergy([0.81, 0.01], 0.999), 1); // 0.81/0.82 = 0.988 <= 0.999 < 1
  assert.equal(rankByEnergy([0.5, 0.3, 0.2], 0.81), 2);
  assert.equal(rankByEnergy([0.9], 0.999), 1); // the reference gives 0 here
  assert.equal(rankByEnergy([0.9, 0.1], 1), 2);
});

/** The logit of row vector z (already phi - m_z, so zOffset is used as 0) and every class. */
function logitsOf(p: CcaProjection, z: number[]): Float32Array {
  return projectionLogits(p, Float32Array.from(z), 1, z.length, 0.07);
}

test('hand case 10: Szz = Suu = I, Szu = diag(0.9, 0.1): r = 1, rho = 0.9, logit of z = (0.3, -2), e = (-0.5, 1) is -1/0.07', () => {
  const I = Float64Array.of(1, 0, 0, 1);
  const p = canonicalFromCovariances({ dim: 2, szz: I, suu: I, szu: Float64Array.of(0.9, 0, 0, 0.1), mz: [0, 0], mu: [0, 0] }, [-0.5, 1], 1, { ridge: 0, energy: 0.999 });
  assert.equal(p.rank, 1);
  close(p.rho[0]!, 0.9, 1e-7, 'rho');
  close(logitsOf(p, [0.3, -2])[0]!, -1 / 0.07, 1e-4, 'logit');

  // The same case through the factored statistics and the low-rank solve: classes with phi(t) =
  // (+-1, 0), (0, +-1) and weight 1/4 make m_u = 0 and Suu = I; Myz gives Szu = diag(0.9, 0.1); a
  // fifth class without samples has phi(t) = (-0.5, 1), the e of the hand case.
  const s = new CcaStatistics(2);
  s.growClasses(5);
  s.n = 2; // dof 1
  s.szz.set(I);
  s.myz.set([0.45, 0, -0.45, 0, 0, 0.05, 0, -0.05, 0, 0]);
  s.myy.set([0.5, 0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0]);
  s.counts.set([0.5, 0.5, 0.5, 0.5, 0]);
  const low = solveLowRank(s, Float32Array.of(1, 0, -1, 0, 0, 1, 0, -1, -0.5, 1), { ridge: 0, energy: 0.999 });
  assert.equal(low.rank, 1);
  close(low.rho[0]!, 0.9, 1e-7, 'rho (low rank)');
  const l = logitsOf(low, [0.3, -2]);
  close(l[4]!, -1 / 0.07, 1e-4, 'logit of the hand case (low rank)');
  close(l[0]!, 1 / 0.07, 1e-4, 'class with e = (1, 0)');
  // e = (0, 1) has no component along the kept direction: 0 up to rounding (which the 1e-12 floor of normalize can lift to ~1e-4).
  close(l[2]!, 0, 0.01, 'class with e = (0, 1)');
});

/** Statistics of a small random problem: C classes around random text directions. */
function randomProblem(seed: number, D: number, d: number, C: number, N: number) {
  const rng = new Rng(seed);
  const rff = drawRandomFeatures(D, d, 1, rng);
  const text = new Float32Array(C * D);
  rng.fillNormal(text);
  const x = new Float32Array(N * D);
  const y = Array.from({ length: N }, (_, i) => i % C);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) x[i * D + j] = text[y[i]! * D + j]! + 0.8 * rng.normal();
  const s = new CcaStatistics(d);
  s.growClasses(C);
  s.addBatches(mapRandomFeatures(rff, x, N), y, N, 64);
  return { s, phi: mapRandomFeatures(rff, text, C), test: mapRandomFeatures(rff, x.subarray(0, 40 * D), 40) };
}

test('the low-rank solve gives the reference\'s eigendecomposition solve: same r, rho and logits', () => {
  // D' = 300 is over one block of the Cholesky factorisation and solves (their blocked paths).
  for (const [seed, ridge, energy, d] of [[1, 1e-4, 0.999, 40], [2, 1e-2, 0.9, 40], [3, 1e-4, 1, 40], [4, 1e-4, 0.999, 300]] as const) {
    const { s, phi, test } = randomProblem(seed, 8, d, 6, 400);
    const o = { ridge, energy };
    const low = solveLowRank(s, phi, o), ref = solveEigh(s, phi, o);
    if (energy < 1) {
      assert.equal(low.rank, ref.rank, `rank (seed ${seed})`);
      for (let k = 0; k < low.rank; k++) close(low.rho[k]!, ref.rho[k]!, 1e-6, `rho ${k}`);
      const a = projectionLogits(low, test, 40, d, 0.07), b = projectionLogits(ref, test, 40, d, 0.07);
      for (let i = 0; i < a.length; i++) close(a[i]!, b[i]!, 1e-3, `logit ${i} (seed ${seed})`);
    } else {
      // energy 1 keeps every eigenvalue: C of them here, D' (mostly zero) in the reference.
      assert.equal(low.rank, 6);
      assert.equal(ref.rank, d);
    }
  }
});

test('bad options are refused with the option named', () => {
  const make = (o: Record<string, unknown>) => createCcaCl({ dim: 8, methodOptions: o });
  assert.throws(() => make({ rffdim: 10 }), /cca-cl: unknown option "rffdim": must be one of \[rffDim, sigma/);
  assert.throws(() => make({ rffDim: 0 }), /option "rffDim" must be an integer in \[1, 16384\], got 0/);
  assert.throws(() => make({ energy: 1.5 }), /option "energy" must be a number in \(0, 1\]/);
  assert.throws(() => make({ tau: -1 }), /option "tau" must be a finite number > 0/);
  assert.throws(() => make({ solver: 'svd' }), /option "solver" must be one of \[low-rank, eigh\]/);
  assert.throws(() => make({ ridge: Number.NaN }), /option "ridge"/);
  assert.throws(() => make({ templates: [0, 0] }), /option "templates" must be null or a non-empty list of distinct template indices/);
  const m = make({ templates: [5] });
  // Only the chosen templates enter t_c: e[0] = (1, 0, ...), e[1] = (0, 1, ...); templates [1] gives t = e[1].
  const two = new Float32Array(2 * 8);
  two[0] = 1;
  two[8 + 1] = 1;
  const one = make({ templates: [1], rffDim: 4 });
  one.beginTask({ index: 0, classStart: 0, classEnd: 1 }, { textPerTemplate: two, numTemplates: 2 }, new Rng(0));
  assert.deepEqual(Array.from(one.saveState().tensors.find(([n]) => n === 'text')![1].data), [0, 1, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => m.beginTask({ index: 0, classStart: 0, classEnd: 1 }, { textPerTemplate: new Float32Array(2 * 8), numTemplates: 2 }, new Rng(0)), /names template 5, but the text has 2 templates/);
});

test('method: fits without SGD, predicts all seen classes, and a saved state restores the same predictions and continues equally', () => {
  const world = generateSyntheticDataset(SYNTHETIC_TINY);
  const D = world.manifest.dim, P = world.numTemplates, V = world.train.views;
  const setup = { dim: D, methodOptions: { rffDim: 48 } };
  const task = (i: number) => ({ index: i, classStart: 2 * i, classEnd: 2 * i + 2 });
  const classes = (i: number) => ({ textPerTemplate: world.text.slice(2 * i * P * D, (2 * i + 2) * P * D), numTemplates: P });
  const rowsOf = (i: number) => Int32Array.from(Array.from({ length: world.train.n }, (_, r) => r).filter((r) => world.train.labels[r]! >= 2 * i && world.train.labels[r]! < 2 * i + 2));
  const data = (i: number) => ({ split: world.train, indices: rowsOf(i), labels: world.train.labels });
  const learn = (m: ReturnType<typeof createCcaCl>, i: number, rng: Rng) => { m.beginTask(task(i), classes(i), rng); m.fit!(data(i), rng); m.endTask(task(i), rng); };
  const probe = world.test.features.filter((_, k) => Math.floor(k / D) % V === 0).slice(0, 7 * D);

  const a = createCcaCl(setup);
  assert.equal(a.traits.sgd.train, null);
  assert.equal(a.traits.replay, false);
  assert.throws(() => a.trainStep({ features: new Float32Array(0), labels: new Int32Array(0), size: 0 }, { lr: 0, iteration: 0, iterations: 1, epoch: 0 }, new Rng(0)), /trains nothing by SGD/);
  const rngA = new Rng(9);
  learn(a, 0, rngA);
  learn(a, 1, rngA);
  const pa = a.predict(probe, 7, rngA);
  assert.equal(pa.classes, 4);
  assert.ok(pa.logits.every(Number.isFinite));
  assert.ok(pa.logits.every((l) => Math.abs(l) <= 1 / 0.07 + 1e-4), 'cosines / tau');

  const saved = a.saveState();
  const b = createCcaCl(setup);
  b.loadState({ tensors: tensorSource(saved.tensors), meta: structuredClone(saved.meta) }, 'state.safetensors');
  assert.deepEqual(b.predict(probe, 7, new Rng(0)).logits, pa.logits);
  const rngB = Rng.fromState(rngA.state());
  learn(a, 2, rngA);
  learn(b, 2, rngB);
  assert.deepEqual(b.predict(probe, 7, rngB).logits, a.predict(probe, 7, rngA).logits);

  // Predictions do not depend on the other rows of the call (up to the summation order of small vs large products).
  const alone = a.predict(probe.slice(3 * D, 4 * D), 1, rngA).logits;
  const inBatch = a.predict(probe, 7, rngA).logits.slice(3 * 6, 4 * 6);
  alone.forEach((l, c) => close(l, inBatch[c]!, 1e-4, `class ${c} alone vs in a batch`));

  const broken = new Map(tensorSource(saved.tensors));
  broken.delete('stats.szz');
  assert.throws(() => createCcaCl(setup).loadState({ tensors: broken, meta: saved.meta }, 'bad.safetensors'), (e: unknown) => e instanceof DataError && /bad.safetensors: tensor "stats.szz" of cca-cl is missing/.test(e.message));
  assert.throws(() => createCcaCl({ dim: D, methodOptions: { rffDim: 32 } }).loadState({ tensors: tensorSource(saved.tensors), meta: saved.meta }, 'other.safetensors'), /other.safetensors: tensor "rff.w" has shape \[32,48\], cca-cl expects \[32,32\]/);
  assert.throws(() => createCcaCl(setup).loadState({ tensors: tensorSource(saved.tensors), meta: { ...saved.meta, n: -1 } }, 's'), /"n" must be an integer >= 0/);
  assert.throws(() => createCcaCl(setup).predict(probe, 7, rngA), /not fitted yet/);
});
