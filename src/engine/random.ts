/**
 * Seeded random numbers. Every random draw in the project comes from an `Rng` passed explicitly,
 * so a run is reproducible from its seed and resumable from `state()`.
 *
 * - `Rng`: xoshiro128** (32-bit state words, fast with Math.imul), seeded through splitmix32.
 * - Normals: Marsaglia–Tsang ziggurat (128 layers), one 32-bit draw per normal on the fast path.
 * - `MT19937` / `numpyLegacyShuffledArange`: bit-exact numpy legacy `RandomState(seed).shuffle`,
 *   used only to reproduce the reference's class orders.
 */

export interface RngState {
  kind: 'xoshiro128**';
  s: [number, number, number, number];
  /** Kept for format stability; the ziggurat caches nothing, so this is always null. */
  spare?: number | null;
}

const TWO_32 = 4294967296;
const TWO_M32 = 1 / TWO_32;
const TWO_M24 = 1 / 16777216;
const TWO_M53 = 1 / 9007199254740992;

/** splitmix32 output function for counter value `x` (a bijection of 32-bit words). */
function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Four state words from splitmix32 run on `key`: nearby keys give unrelated states. */
function expandSeed(key: number): [number, number, number, number] {
  const GOLDEN = 0x9e3779b9;
  const s: [number, number, number, number] = [0, 0, 0, 0];
  let c = key | 0;
  for (let i = 0; i < 4; i++) {
    c = (c + GOLDEN) | 0;
    s[i] = mix32(c);
  }
  // Outputs of distinct counters are distinct, so at most one word is 0: never the all-zero state.
  return s;
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
  }
}

// ---- ziggurat tables (Marsaglia & Tsang 2000, 128 layers) ----
// One 32-bit draw per normal: bits 0-6 pick the layer, bit 7 the sign, bits 8-31 the magnitude,
// so layer and value are independent (the original reused the layer bits inside the value).
// WNS holds the width signed by bit 7, which keeps the fast path free of branches on the sign.
const ZIG_R = 3.442619855899;
const ZIG_V = 9.91256303526217e-3;
const ZIG_M = 16777216; // 2^24: the magnitude has 24 bits
const KN = new Uint32Array(128);
const WN = new Float64Array(128);
const WNS = new Float64Array(256);
const FN = new Float64Array(128);
(function buildZiggurat(): void {
  let dn = ZIG_R;
  let tn = dn;
  const q = ZIG_V / Math.exp(-0.5 * dn * dn);
  KN[0] = Math.floor((dn / q) * ZIG_M);
  KN[1] = 0; // the top layer is all wedge
  WN[0] = q / ZIG_M;
  WN[127] = dn / ZIG_M;
  FN[0] = 1;
  FN[127] = Math.exp(-0.5 * dn * dn);
  for (let i = 126; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(ZIG_V / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = Math.floor((dn / tn) * ZIG_M);
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / ZIG_M;
  }
  for (let i = 0; i < 128; i++) {
    WNS[i] = WN[i]!;
    WNS[i + 128] = -WN[i]!;
  }
})();

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** `seed`: any safe integer (negative and 0 included); both 32-bit halves are mixed in. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer, got ${seed}`);
    }
    const lo = seed >>> 0; // two's complement low word, also for negative seeds
    const hi = Math.floor(seed / TWO_32) | 0;
    this.setWords(expandSeed(lo ^ mix32(hi ^ 0x6a09e667)));
  }

  static fromState(state: RngState): Rng {
    if (state?.kind !== 'xoshiro128**' || !Array.isArray(state.s) || state.s.length !== 4) {
      throw new TypeError('Rng.fromState: expected { kind: "xoshiro128**", s: [4 words] }');
    }
    for (const w of state.s) checkInt('Rng state word', w, 0, TWO_32 - 1);
    if (state.s.every((w) => w === 0)) throw new RangeError('Rng.fromState: all-zero state');
    const r = new Rng(0);
    r.setWords(state.s);
    return r;
  }

  private setWords(s: readonly number[]): void {
    this.s0 = s[0]! | 0;
    this.s1 = s[1]! | 0;
    this.s2 = s[2]! | 0;
    this.s3 = s[3]! | 0;
  }

  /** JSON-serializable snapshot; `Rng.fromState(r.state())` continues identically. */
  state(): RngState {
    return { kind: 'xoshiro128**', s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spare: null };
  }

  /** Next xoshiro128** output as an unsigned 32-bit integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const m = Math.imul(s1, 5);
    const r = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return r >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits (two 32-bit draws: 27 + 26 bits). */
  uniform(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) * TWO_M53;
  }

  /** Uniform double in [0, 1) with 32 random bits (one draw); cheaper, coarser. */
  uniform32(): number {
    return this.nextUint32() * TWO_M32;
  }

  /** Standard normal (ziggurat; the value has 24 bits of resolution, plenty for noise). */
  normal(): number {
    const u = this.nextUint32();
    const hz = u >>> 8;
    if (hz < KN[u & 127]!) return hz * WNS[u & 255]!;
    return this.zigSlow(u);
  }

  /** Ziggurat rejection path (~2% of draws): the top layer, wedges and the tail beyond ZIG_R. */
  private zigSlow(u: number): number {
    for (;;) {
      const iz = u & 127;
      const neg = (u & 128) !== 0;
      if (iz === 0) {
        // Tail: Marsaglia's exponential-rejection method (1 - uniform() avoids log(0)).
        let x: number;
        let y: number;
        do {
          x = -Math.log(1 - this.uniform()) / ZIG_R;
          y = -Math.log(1 - this.uniform());
        } while (y + y < x * x);
        return neg ? -ZIG_R - x : ZIG_R + x;
      }
      const x = (u >>> 8) * WN[iz]!;
      if (FN[iz]! + this.uniform() * (FN[iz - 1]! - FN[iz]!) < Math.exp(-0.5 * x * x)) return neg ? -x : x;
      u = this.nextUint32();
      const hz = u >>> 8;
      if (hz < KN[u & 127]!) return hz * WNS[u & 255]!;
    }
  }

  /** Fill `out` with N(mean, std^2). Hot path: xoshiro and the ziggurat inlined on local state. */
  fillNormal(out: Float32Array, mean = 0, std = 1): void {
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const m = Math.imul(s1, 5);
      const u = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const hz = u >>> 8;
      let z: number;
      if (hz < KN[u & 127]!) {
        z = hz * WNS[u & 255]!;
      } else {
        // Rare: hand the state back for the slow path, then reload it.
        this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
        z = this.zigSlow(u);
        s0 = this.s0; s1 = this.s1; s2 = this.s2; s3 = this.s3;
      }
      out[i] = mean + std * z;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }

  /** Fill `out` with uniforms in [lo, hi): 24 bits per value so the unit draw is exact in float32
   *  (a 32-bit value would round up to 1.0); for general lo/hi, float32 rounding may reach hi. */
  fillUniform(out: Float32Array, lo = 0, hi = 1): void {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * ((this.nextUint32() >>> 8) * TWO_M24);
  }

  /** Uniform integer in [0, n), unbiased by rejection; 1 <= n <= 2^53. */
  int(n: number): number {
    checkInt('Rng.int n', n, 1, Number.MAX_SAFE_INTEGER + 1);
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n); // multiples of n below 2^32
      let u: number;
      do u = this.nextUint32(); while (u >= limit);
      return u % n;
    }
    const RANGE = 9007199254740992; // 2^53
    const limit = RANGE - (RANGE % n);
    let v: number;
    do v = (this.nextUint32() >>> 11) * TWO_32 + this.nextUint32(); while (v >= limit);
    return v % n;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    checkInt('Rng.permutation n', n, 0, 0x7fffffff);
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = i;
    this.shuffleInPlace(a);
    return a;
  }

  /** Fisher–Yates shuffle in place (from the end: i = len-1 .. 1, j uniform in [0, i]). */
  shuffleInPlace<T>(arr: T[] | Int32Array | Float32Array): void {
    const a = arr as unknown as Record<number, unknown>;
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
  }

  /**
   * `k` indices from [0, n). Without replacement (default): a random ordered sample, by partial
   * Fisher–Yates from the front; for large n a sparse (Map) version gives the same result in O(k).
   */
  choice(n: number, k: number, replace = false): Int32Array {
    checkInt('Rng.choice n', n, 0, 0x7fffffff);
    checkInt('Rng.choice k', k, 0, 0x7fffffff);
    const out = new Int32Array(k);
    if (replace) {
      if (k > 0 && n === 0) throw new RangeError('Rng.choice: cannot draw from an empty range');
      for (let i = 0; i < k; i++) out[i] = this.int(n);
      return out;
    }
    if (k > n) {
      throw new RangeError(`Rng.choice: cannot take k=${k} of n=${n} without replacement`);
    }
    const swapped = new Map<number, number>(); // positions whose value differs from the index
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i);
      const vj = swapped.get(j) ?? j;
      const vi = swapped.get(i) ?? i;
      swapped.set(j, vi);
      out[i] = vj;
    }
    return out;
  }

  /** Dropout mask: out[i] = (uniform < keepProb) ? scale : 0, one 32-bit draw per element. */
  bernoulliMask(out: Float32Array, keepProb: number, scale: number): void {
    if (!(keepProb >= 0 && keepProb <= 1)) {
      throw new RangeError(`Rng.bernoulliMask keepProb must be in [0, 1], got ${keepProb}`);
    }
    const threshold = keepProb * TWO_32; // u < p*2^32  <=>  u/2^32 < p
    // nextUint32 inlined on local state, as in fillNormal: a step draws ~0.5M mask values.
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    for (let i = 0; i < out.length; i++) {
      const m = Math.imul(s1, 5);
      const u = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = u < threshold ? scale : 0;
    }
    this.s0 = s0; this.s1 = s1; this.s2 = s2; this.s3 = s3;
  }

  /** An independent child stream: four parent draws, each whitened by splitmix32's mixer. */
  fork(): Rng {
    const w: number[] = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) w[i] = mix32((this.nextUint32() + Math.imul(i + 1, 0x9e3779b9)) | 0);
    if ((w[0]! | w[1]! | w[2]! | w[3]!) === 0) w[0] = 1; // never the all-zero state
    const r = new Rng(0);
    r.setWords(w);
    return r;
  }
}

/** MT19937 as in numpy's legacy `RandomState` (reference: Matsumoto & Nishimura, mt19937ar.c). */
export class MT19937 {
  private readonly mt = new Uint32Array(624);
  private mti = 624;

  /** `init_genrand(seed)`: what numpy's `RandomState(int)` does (`mt19937_seed`). */
  constructor(seed: number) {
    checkInt('MT19937 seed', seed, 0, TWO_32 - 1);
    this.initGenrand(seed);
  }

  private initGenrand(seed: number): void {
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = 624;
  }

  /** `init_by_array(key)`: numpy's seeding for array seeds (e.g. `RandomState([s])`). */
  static fromArray(key: readonly number[]): MT19937 {
    for (const k of key) checkInt('MT19937 key word', k, 0, TWO_32 - 1);
    const r = new MT19937(19650218);
    const mt = r.mt;
    let i = 1;
    let j = 0;
    const len = key.length;
    for (let k = Math.max(624, len); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++; j++;
      if (i >= 624) { mt[0] = mt[623]!; i = 1; }
      if (j >= len) j = 0;
    }
    for (let k = 623; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= 624) { mt[0] = mt[623]!; i = 1; }
    }
    mt[0] = 0x80000000;
    return r;
  }

  private twist(): void {
    const mt = this.mt;
    for (let k = 0; k < 624; k++) {
      const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
      mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.mti = 0;
  }

  /** `genrand_int32`. */
  nextUint32(): number {
    if (this.mti >= 624) this.twist();
    let y = this.mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** numpy `random_sample`: 53-bit double in [0, 1). */
  randomSample(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) * TWO_M53;
  }

  /** numpy `random_interval(max)`: uniform in [0, max] by masking to the next power of two
   *  minus one and rejecting; max < 2^32 here (the 64-bit branch is not needed). */
  randomInterval(max: number): number {
    checkInt('MT19937.randomInterval max', max, 0, TWO_32 - 1);
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0; while (v > max);
    return v;
  }
}

/**
 * numpy legacy `np.random.RandomState(seed).shuffle(np.arange(n))`, bit-exact: an int seed goes
 * through `init_genrand` (not `init_by_array`), then for i = n-1 .. 1, j = random_interval(i).
 */
export function numpyLegacyShuffledArange(seed: number, n: number): number[] {
  checkInt('numpyLegacyShuffledArange seed', seed, 0, TWO_32 - 1);
  checkInt('numpyLegacyShuffledArange n', n, 0, 0x7fffffff);
  const mt = new MT19937(seed);
  const a: number[] = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = mt.randomInterval(i);
    const tmp = a[i]!;
    a[i] = a[j]!;
    a[j] = tmp;
  }
  return a;
}
