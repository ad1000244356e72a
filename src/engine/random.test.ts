import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MT19937, Rng, numpyLegacyShuffledArange } from './random.js';
import { repoRoot } from '../util/paths.js';

/** Facts from the reference code (tests/fixtures/reference-data/generate.mjs). */
const REFERENCE = join(repoRoot(), 'tests', 'fixtures', 'reference-data');

function draws(r: Rng, k: number): number[] {
  return Array.from({ length: k }, () => r.nextUint32());
}

function isPermutation(a: ArrayLike<number>, n: number): boolean {
  if (a.length !== n) return false;
  const seen = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= n || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

/** Standard normal CDF via erf (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7). */
function normCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

test('same seed gives the same stream; different or nearby seeds differ', () => {
  assert.deepEqual(draws(new Rng(42), 16), draws(new Rng(42), 16));
  const seeds = [0, 1, 2, -1, 4294967295, 4294967296, 2 ** 40 + 1, Number.MAX_SAFE_INTEGER];
  const firsts = seeds.map((s) => draws(new Rng(s), 4).join(','));
  assert.equal(new Set(firsts).size, seeds.length);
  // Nearby seeds: the first outputs share no obvious structure (about half the bits differ).
  const a = new Rng(1000).nextUint32();
  const b = new Rng(1001).nextUint32();
  const diff = (a ^ b) >>> 0;
  let bits = 0;
  for (let x = diff; x !== 0; x >>>= 1) bits += x & 1;
  assert.ok(bits >= 6 && bits <= 26, `only ${bits} bits differ`);
});

test('state() round-trips through JSON and continues identically', () => {
  const r = new Rng(7);
  r.nextUint32();
  r.normal();
  r.normal(); // odd/even position does not matter: nothing is cached
  const buf = new Float32Array(1001);
  r.fillNormal(buf);
  const snap = JSON.parse(JSON.stringify(r.state()));
  assert.equal(snap.kind, 'xoshiro128**');
  const c = Rng.fromState(snap);
  assert.deepEqual([r.normal(), r.uniform(), r.int(1000)], [c.normal(), c.uniform(), c.int(1000)]);
  const x = new Float32Array(5000), y = new Float32Array(5000);
  r.fillNormal(x, 1, 2);
  c.fillNormal(y, 1, 2);
  assert.deepEqual(x, y);
  // normal() and fillNormal() are the same stream.
  const p = new Rng(9), q = new Rng(9);
  const one = Array.from({ length: 3000 }, () => Math.fround(p.normal()));
  const many = new Float32Array(3000);
  q.fillNormal(many);
  assert.deepEqual(Array.from(many), one);
  assert.deepEqual(p.state(), q.state());
});

test('bad arguments throw clear errors', () => {
  assert.throws(() => new Rng(1.5), /seed must be a safe integer/);
  assert.throws(() => new Rng(Number.NaN), /seed must be a safe integer/);
  const r = new Rng(1);
  assert.throws(() => r.int(0), /Rng.int n must be an integer/);
  assert.throws(() => r.int(2.5), /Rng.int n/);
  assert.throws(() => r.permutation(-1), /permutation n/);
  assert.throws(() => r.choice(-3, 1), /choice n/);
  assert.throws(() => r.choice(5, 6), /k=6 of n=5 without replacement/);
  assert.throws(() => r.choice(0, 1, true), /empty range/);
  assert.throws(() => r.bernoulliMask(new Float32Array(2), 1.5, 1), /keepProb/);
  assert.throws(() => Rng.fromState({ kind: 'xoshiro128**', s: [0, 0, 0, 0] }), /all-zero/);
  assert.throws(() => numpyLegacyShuffledArange(-1, 10), /seed/);
  assert.throws(() => numpyLegacyShuffledArange(2 ** 32, 10), /seed/);
});

test('normal moments and distribution over 1e6 draws; fillNormal timing', (t) => {
  const n = 1_000_000;
  const z = new Float32Array(n);
  const r = new Rng(123);
  r.fillNormal(z); // warm-up (JIT) and the sample
  let m1 = 0;
  for (let i = 0; i < n; i++) m1 += z[i]!;
  const mean = m1 / n;
  let m2 = 0, m3 = 0, m4 = 0, tail = 0;
  for (let i = 0; i < n; i++) {
    const d = z[i]! - mean;
    const d2 = d * d;
    m2 += d2; m3 += d2 * d; m4 += d2 * d2;
    if (Math.abs(z[i]!) > 3.442619855899) tail++;
  }
  m2 /= n; m3 /= n; m4 /= n;
  const skew = m3 / m2 ** 1.5, kurt = m4 / (m2 * m2);
  // Tolerances are ~5 standard errors (SE: mean 1e-3, var 1.4e-3, skew 2.4e-3, kurt 4.9e-3).
  assert.ok(Math.abs(mean) < 0.005, `mean ${mean}`);
  assert.ok(Math.abs(m2 - 1) < 0.008, `var ${m2}`);
  assert.ok(Math.abs(skew) < 0.013, `skew ${skew}`);
  assert.ok(Math.abs(kurt - 3) < 0.03, `kurtosis ${kurt}`);
  // Tail beyond the ziggurat base: expected 2(1-Phi(r)) * n ~ 576, SD ~ 24.
  const expectTail = 2 * (1 - normCdf(3.442619855899)) * n;
  assert.ok(Math.abs(tail - expectTail) < 120, `tail ${tail} vs ${expectTail}`);
  // Kolmogorov-type check on a fine grid (catches a broken wedge or layer).
  const sorted = Float64Array.from(z).sort();
  let maxGap = 0;
  for (let x = -4; x <= 4; x += 0.05) {
    let lo = 0, hi = n; // count of values <= x
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid]! <= x) lo = mid + 1; else hi = mid; }
    maxGap = Math.max(maxGap, Math.abs(lo / n - normCdf(x)));
  }
  assert.ok(maxGap < 0.002, `max CDF gap ${maxGap}`);
  // mean/std arguments are applied.
  const w = new Float32Array(200_000);
  r.fillNormal(w, 3, 0.5);
  const wm = w.reduce((s, v) => s + v, 0) / w.length;
  const wv = w.reduce((s, v) => s + (v - wm) ** 2, 0) / w.length;
  assert.ok(Math.abs(wm - 3) < 0.01 && Math.abs(Math.sqrt(wv) - 0.5) < 0.01, `${wm} ${wv}`);
  // Timing: report only (machines differ).
  let best = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = process.hrtime.bigint();
    r.fillNormal(z);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  t.diagnostic(`fillNormal: ${best.toFixed(2)} ms per million normals (best of 5)`);
});

test('uniform, fillUniform and bernoulliMask', () => {
  const r = new Rng(5);
  const n = 200_000;
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    s += u; s2 += u * u;
  }
  const mean = s / n, v = s2 / n - mean * mean;
  assert.ok(Math.abs(mean - 0.5) < 0.004 && Math.abs(v - 1 / 12) < 0.002, `${mean} ${v}`);
  const f = new Float32Array(n);
  r.fillUniform(f, -2, 6);
  let fm = 0, fmin = Infinity, fmax = -Infinity;
  for (const x of f) { fm += x; fmin = Math.min(fmin, x); fmax = Math.max(fmax, x); }
  assert.ok(fmin >= -2 && fmax < 6 && Math.abs(fm / n - 2) < 0.03, `${fmin} ${fmax} ${fm / n}`);
  const mask = new Float32Array(n);
  r.bernoulliMask(mask, 0.9, 1 / 0.9);
  let kept = 0;
  for (const x of mask) {
    assert.ok(x === 0 || x === Math.fround(1 / 0.9));
    if (x !== 0) kept++;
  }
  assert.ok(Math.abs(kept / n - 0.9) < 0.004, `kept ${kept / n}`);
  r.bernoulliMask(mask, 1, 2);
  assert.ok(mask.every((x) => x === 2));
  r.bernoulliMask(mask, 0, 2);
  assert.ok(mask.every((x) => x === 0));
  // The mask's inlined generator is the nextUint32 stream: same values, same state afterwards.
  const p = new Rng(21), q = new Rng(21);
  const fast = new Float32Array(4099);
  p.bernoulliMask(fast, 0.9, 1 / 0.9);
  const slow = Float32Array.from({ length: fast.length }, () => (q.nextUint32() < 0.9 * 2 ** 32 ? 1 / 0.9 : 0));
  assert.deepEqual(fast, slow);
  assert.deepEqual(p.state(), q.state());
});

test('int() is uniform (chi-square) and stays in range, also beyond 2^32', () => {
  const r = new Rng(11);
  for (const k of [7, 10, 1000]) {
    const counts = new Float64Array(k);
    const draws = 50 * k + 100_000;
    for (let i = 0; i < draws; i++) counts[r.int(k)]!++;
    const e = draws / k;
    const chi = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
    // df = k-1; mean k-1, SD sqrt(2(k-1)): allow 6 SD.
    assert.ok(chi < k - 1 + 6 * Math.sqrt(2 * (k - 1)) + 10, `k=${k} chi2=${chi}`);
  }
  assert.equal(r.int(1), 0);
  const big = 3 * 2 ** 40 + 7;
  let over32 = 0;
  for (let i = 0; i < 1000; i++) {
    const x = r.int(big);
    assert.ok(Number.isInteger(x) && x >= 0 && x < big);
    if (x >= 2 ** 32) over32++;
  }
  assert.ok(over32 > 990);
});

test('permutation, shuffleInPlace, choice, fork', () => {
  const r = new Rng(3);
  for (const n of [0, 1, 2, 10, 1000]) assert.ok(isPermutation(r.permutation(n), n));
  const arr = Array.from({ length: 50 }, (_, i) => `s${i}`);
  r.shuffleInPlace(arr);
  assert.equal(new Set(arr).size, 50);
  assert.notDeepEqual(arr, Array.from({ length: 50 }, (_, i) => `s${i}`));
  const fa = Float32Array.from({ length: 20 }, (_, i) => i);
  r.shuffleInPlace(fa);
  assert.ok(isPermutation(fa, 20));
  // Permutation position histogram: element 0 lands uniformly among 5 slots.
  const pos = new Float64Array(5);
  for (let i = 0; i < 20000; i++) pos[r.permutation(5).indexOf(0)]!++;
  for (const c of pos) assert.ok(Math.abs(c - 4000) < 300, `positions ${pos}`);
  // choice without replacement: distinct, in range; full draw is a permutation.
  for (const [n, k] of [[10, 10], [100, 30], [5_000_000, 50], [3, 0]] as const) {
    const c = r.choice(n, k);
    assert.equal(c.length, k);
    assert.equal(new Set(c).size, k);
    assert.ok(c.every((x) => x >= 0 && x < n));
  }
  assert.ok(isPermutation(r.choice(10, 10), 10));
  const withRep = r.choice(3, 300, true);
  assert.ok(withRep.every((x) => x >= 0 && x < 3) && new Set(withRep).size === 3);
  // fork: deterministic, and a stream distinct from the parent's continuation.
  const p1 = new Rng(77), p2 = new Rng(77);
  const c1 = p1.fork(), c2 = p2.fork();
  assert.deepEqual(draws(c1, 8), draws(c2, 8));
  assert.deepEqual(draws(p1, 8), draws(p2, 8));
  assert.notDeepEqual(draws(p1.fork(), 8), draws(p1, 8));
  assert.notDeepEqual(draws(new Rng(77).fork(), 4), draws(new Rng(78).fork(), 4));
});

test('MT19937 matches the reference generator and numpy', () => {
  // mt19937ar.c: init_genrand(5489) and init_by_array({0x123,0x234,0x345,0x456}).
  const a = new MT19937(5489);
  assert.deepEqual([a.nextUint32(), a.nextUint32(), a.nextUint32()], [3499211612, 581869302, 3890346734]);
  const b = MT19937.fromArray([0x123, 0x234, 0x345, 0x456]);
  assert.deepEqual([b.nextUint32(), b.nextUint32(), b.nextUint32()], [1067595299, 955945823, 477289528]);
  // numpy: RandomState(1993) raw uint32 draws; RandomState(7).random_sample(2).
  const c = new MT19937(1993);
  assert.deepEqual([c.nextUint32(), c.nextUint32(), c.nextUint32()], [431310241, 1195554489, 942364593]);
  const d = new MT19937(7);
  assert.deepEqual([d.randomSample(), d.randomSample()], [0.07630828937395717, 0.7799187922401146]);
  // numpy: RandomState(0).shuffle(arange(7)); RandomState(2**32-1).permutation(10).
  assert.deepEqual(numpyLegacyShuffledArange(0, 7), [6, 2, 1, 3, 0, 5, 4]);
  assert.deepEqual(numpyLegacyShuffledArange(4294967295, 10), [6, 9, 5, 1, 8, 0, 7, 4, 2, 3]);
  assert.deepEqual(numpyLegacyShuffledArange(5, 0), []);
  assert.deepEqual(numpyLegacyShuffledArange(5, 1), [0]);
});

test('class orders equal the effective class orders of the reference code (every key)', () => {
  const orders = JSON.parse(readFileSync(join(REFERENCE, 'classOrders.json'), 'utf8')) as Record<string, unknown>;
  const sizes: Record<string, number> = { cifar100: 100, 'imagenet-r': 200 };
  let checked = 0;
  for (const [key, value] of Object.entries(orders)) {
    if (key.startsWith('_')) continue;
    const m = /^([a-z0-9-]+)\/num_run=(\d+)$/.exec(key);
    assert.ok(m, `unexpected key ${key}`);
    const n = sizes[m[1]!];
    assert.ok(n !== undefined, `unknown dataset in ${key}`);
    assert.deepEqual(numpyLegacyShuffledArange(1993 + Number(m[2]), n), value, key);
    checked++;
  }
  assert.equal(checked, 22);
  const dytox = JSON.parse(readFileSync(join(REFERENCE, 'cifar100ContinualClipOrder.json'), 'utf8')) as number[];
  assert.ok(isPermutation(dytox, 100));
  assert.deepEqual(dytox.slice(0, 4), [87, 0, 52, 58]);
});
