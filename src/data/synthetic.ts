/**
 * Synthetic "CLIP-like" features: the built-in default dataset when no real CLIP features exist.
 *
 * Generative model (D = `dim`; every named direction below is a random unit vector; S is a random
 * r-dimensional "semantic" subspace, r = min(semanticDim, D - 3), and u, g, h are orthonormal and
 * orthogonal to S, so the modality terms never favour one class over another):
 *
 *   text anchor   a_c    = normalize(sqrt(w) s_k(c) + sqrt(1 - w) b_c)  (s_k, b_c in S; w = superclassShare)
 *   text          e[c,p] = normalize(a_c + beta_t u + kappa h + tau_p + nu_cp)
 *   image centre  m_c    = a_c + lambda o_c                             (o_c in S; lambda = imageOffset)
 *   image view 0  f_0    = normalize(m_c + beta_i u + gamma g + sigma Q z + eta)
 *   image view 1  f_1    = the same with z' = rho_s z + sqrt(1 - rho_s^2) z*, eta' = rho_n eta + sqrt(1 - rho_n^2) eta*
 *
 * Why each part exists. Superclasses (k(c): classes spread over `numSuperclasses` groups, like the 20
 * coarse labels of CIFAR-100) share the component s_k, so sibling anchors have cosine ~w: classes of
 * one superclass overlap and are confused, which is what makes naive sequential training forget.
 * tau_p (shared by all classes) and nu_cp (class x template) give the per-template variation that
 * CLAP's language-aware initialization and LASP read. u is a direction common to both modalities,
 * h a text-only and g an image-only direction: together they put images and texts in two separate
 * narrow cones (the modality gap of real CLIP), so cosines between an image and a class text are
 * small (~0.3 for its class, ~0.2 for others) while images (~0.7) and texts (~0.7) are much closer
 * to each other.
 * The per-class offset o_c moves each image class centre away from its text anchor, so zero-shot
 * classification (argmax_c f . t_c, t_c = normalize(mean_p e[c,p])) is clearly worse than a
 * classifier fit on images (nearest class mean). Within-class variation sigma Q z (z ~ N(0, I_r),
 * Q an orthonormal basis of S) lives in the semantic subspace, where it competes with the class
 * structure, so difficulty depends on r, sigma and the class geometry but hardly on D; eta is
 * isotropic nuisance noise of norm `nuisanceNoise` over all D coordinates. The "mirror image"
 * (view 1, the horizontal flip of the reference pipeline) re-draws part of the within-class and
 * nuisance noise of the same sample, giving a view cosine of ~0.95.
 *
 * Everything is drawn from one `Rng(seed)`: a first fork builds the geometry (subspace, anchors,
 * templates, offsets), a second the training images and a third the test images, so the text
 * features and the test set do not change when only `trainPerClass` changes.
 */
import { Rng } from '../engine/random.js';
import type { FeaturesDataset, FeaturesManifest, FeaturesSplit } from './types.js';
import { resolveSyntheticConfig, syntheticClassNames, syntheticTemplates, type SyntheticConfig } from './syntheticConfig.js';
import { dot } from './syntheticDiagnostics.js';

export * from './syntheticConfig.js';
// ---------------------------------------------------------------------------------------------
// Small dense helpers (Float64 for the geometry, which is tiny next to the image features).


/**
 * `count` orthonormal vectors of R^d (rows of the result), from Gaussian draws by twice-repeated
 * modified Gram-Schmidt. Requires count <= d.
 */
function orthonormalRows(rng: Rng, count: number, d: number): Float64Array {
  const out = new Float64Array(count * d);
  const tmp = new Float32Array(d);
  for (let i = 0; i < count; i++) {
    const o = i * d;
    for (;;) {
      rng.fillNormal(tmp);
      for (let k = 0; k < d; k++) out[o + k] = tmp[k]!;
      for (let pass = 0; pass < 2; pass++) {
        for (let j = 0; j < i; j++) {
          const p = dot(out, o, out, j * d, d);
          for (let k = 0; k < d; k++) out[o + k] -= p * out[j * d + k]!;
        }
      }
      const n = Math.sqrt(dot(out, o, out, o, d));
      if (n > 1e-6) {
        for (let k = 0; k < d; k++) out[o + k] /= n;
        break;
      }
      // Degenerate draw (practically impossible): draw again.
    }
  }
  return out;
}

/** A random unit vector of the subspace spanned by the r orthonormal rows of `q`, added with weight `w` to `out[oo..]`. */
function addRandomSubspaceUnit(rng: Rng, q: Float64Array, r: number, d: number, w: number, out: Float64Array, oo: number, coef: Float32Array): void {
  rng.fillNormal(coef);
  let n = 0;
  for (let k = 0; k < r; k++) n += coef[k]! * coef[k]!;
  const scale = w / Math.sqrt(n);
  for (let k = 0; k < r; k++) {
    const c = coef[k]! * scale;
    const qo = k * d;
    for (let i = 0; i < d; i++) out[oo + i] += c * q[qo + i]!;
  }
}

/** A random vector of R^d with (exactly) norm `norm`, added to `out[oo..]`. */
function addRandomVector(rng: Rng, d: number, norm: number, out: Float64Array, oo: number, tmp: Float32Array): void {
  rng.fillNormal(tmp);
  let n = 0;
  for (let i = 0; i < d; i++) n += tmp[i]! * tmp[i]!;
  const scale = norm / Math.sqrt(n);
  for (let i = 0; i < d; i++) out[oo + i] += tmp[i]! * scale;
}

/** Superclass of each class: a seeded permutation dealt round-robin, so sizes differ by at most 1
 *  and the members of a superclass are scattered over the label range (as in CIFAR-100). */
function assignSuperclasses(rng: Rng, c: number, k: number): Int32Array {
  const perm = rng.permutation(c);
  const out = new Int32Array(c);
  for (let i = 0; i < c; i++) out[perm[i]!] = i % k;
  return out;
}

interface Geometry {
  superclassOf: Int32Array;
  /** e[c, p] as float32 [C, P, D], unit rows. */
  text: Float32Array;
  /** Semantic basis Q: r orthonormal rows of length D. */
  q: Float64Array;
  r: number;
  /** Per-class image mean before noise: m_c + beta_i u + gamma g, [C, D]. */
  imageBase: Float64Array;
}

function buildGeometry(cfg: SyntheticConfig, rng: Rng): Geometry {
  const { numClasses: C, numSuperclasses: K, numTemplates: P, dim: D } = cfg;
  const r = Math.min(cfg.semanticDim, D - 3);
  // Rows 0..r-1: Q (basis of S); rows r, r+1, r+2: u, g, h.
  const basis = orthonormalRows(rng, r + 3, D);
  const q = basis.subarray(0, r * D);
  const uo = r * D;
  const go = (r + 1) * D;
  const ho = (r + 2) * D;
  const superclassOf = assignSuperclasses(rng, C, K);
  const coef = new Float32Array(r);
  const tmp = new Float32Array(D);

  // Superclass components s_k and class anchors a_c (unit: s_k and b_c are nearly orthogonal; we
  // renormalize anyway so that |a_c| = 1 exactly).
  const sup = new Float64Array(K * D);
  for (let k = 0; k < K; k++) addRandomSubspaceUnit(rng, q, r, D, 1, sup, k * D, coef);
  const w = cfg.superclassShare;
  const anchors = new Float64Array(C * D);
  for (let c = 0; c < C; c++) {
    const o = c * D;
    addRandomSubspaceUnit(rng, q, r, D, Math.sqrt(1 - w), anchors, o, coef);
    const so = superclassOf[c]! * D;
    const sw = Math.sqrt(w);
    for (let i = 0; i < D; i++) anchors[o + i] += sw * sup[so + i]!;
    const n = Math.sqrt(dot(anchors, o, anchors, o, D));
    for (let i = 0; i < D; i++) anchors[o + i] /= n;
  }

  // Template offsets tau_p (full space), then text e[c,p].
  const tau = new Float64Array(P * D);
  for (let p = 0; p < P; p++) addRandomVector(rng, D, cfg.templateOffset, tau, p * D, tmp);
  const text = new Float32Array(C * P * D);
  const row = new Float64Array(D);
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < D; i++) {
        row[i] = anchors[c * D + i]! + cfg.sharedText * basis[uo + i]! + cfg.textGap * basis[ho + i]! + tau[p * D + i]!;
      }
      addRandomVector(rng, D, cfg.templateNoise, row, 0, tmp);
      const n = Math.sqrt(dot(row, 0, row, 0, D));
      const o = (c * P + p) * D;
      for (let i = 0; i < D; i++) text[o + i] = row[i]! / n;
    }
  }

  // Image class centres m_c = a_c + lambda o_c, plus the image-side constant directions.
  const imageBase = new Float64Array(C * D);
  for (let c = 0; c < C; c++) {
    const o = c * D;
    for (let i = 0; i < D; i++) {
      imageBase[o + i] = anchors[o + i]! + cfg.sharedImage * basis[uo + i]! + cfg.imageGap * basis[go + i]!;
    }
    addRandomSubspaceUnit(rng, q, r, D, cfg.imageOffset, imageBase, o, coef);
  }
  return { superclassOf, text, q, r, imageBase };
}

/** Labels: `perClass` of each class, in a seeded random order (like a shuffled real dataset). */
function makeLabels(rng: Rng, C: number, perClass: number): Int32Array {
  const n = C * perClass;
  const perm = rng.permutation(n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = perm[i]! % C;
  return labels;
}

/**
 * x[j] += sum_k zb[j*r + k] * q[k] for the 4 rows j of `x` ([4, D]), q: r rows of length D.
 * The hot loop of the generator: 4 samples x 4 basis rows per pass, so each q value loaded is used
 * 4 times (about 3x faster than one plain axpy per basis row in V8).
 */
function addBlockTimesBasis(x: Float64Array, zb: Float64Array, q: Float64Array, r: number, D: number): void {
  const D2 = 2 * D;
  const D3 = 3 * D;
  const r2 = 2 * r;
  const r3 = 3 * r;
  let k = 0;
  for (; k + 4 <= r; k += 4) {
    const o0 = k * D;
    const o1 = o0 + D;
    const o2 = o1 + D;
    const o3 = o2 + D;
    const a0 = zb[k]!, a1 = zb[k + 1]!, a2 = zb[k + 2]!, a3 = zb[k + 3]!;
    const b0 = zb[r + k]!, b1 = zb[r + k + 1]!, b2 = zb[r + k + 2]!, b3 = zb[r + k + 3]!;
    const c0 = zb[r2 + k]!, c1 = zb[r2 + k + 1]!, c2 = zb[r2 + k + 2]!, c3 = zb[r2 + k + 3]!;
    const d0 = zb[r3 + k]!, d1 = zb[r3 + k + 1]!, d2 = zb[r3 + k + 2]!, d3 = zb[r3 + k + 3]!;
    for (let i = 0; i < D; i++) {
      const v0 = q[o0 + i]!, v1 = q[o1 + i]!, v2 = q[o2 + i]!, v3 = q[o3 + i]!;
      x[i] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3;
      x[D + i] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3;
      x[D2 + i] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3;
      x[D3 + i] += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3;
    }
  }
  for (; k < r; k++) {
    const o = k * D;
    const a = zb[k]!, b = zb[r + k]!, c = zb[r2 + k]!, d = zb[r3 + k]!;
    for (let i = 0; i < D; i++) {
      const v = q[o + i]!;
      x[i] += a * v;
      x[D + i] += b * v;
      x[D2 + i] += c * v;
      x[D3 + i] += d * v;
    }
  }
}

function generateSplit(cfg: SyntheticConfig, geo: Geometry, rng: Rng, perClass: number): FeaturesSplit {
  const { numClasses: C, dim: D, views: V } = cfg;
  const { q, r, imageBase } = geo;
  const labels = makeLabels(rng, C, perClass);
  const n = labels.length;
  const features = new Float32Array(n * V * D);
  const sigma = cfg.withinClassNoise;
  const etaStd = cfg.nuisanceNoise / Math.sqrt(D);
  const rhoS = cfg.mirrorSemantic;
  const rhoSc = Math.sqrt(Math.max(0, 1 - rhoS * rhoS));
  const rhoN = cfg.mirrorNuisance;
  const rhoNc = Math.sqrt(Math.max(0, 1 - rhoN * rhoN));

  const B = 4; // samples per block (addBlockTimesBasis works on 4 rows)
  const zDraw = new Float32Array(r);
  const etaDraw = new Float32Array(D);
  const z0 = new Float64Array(B * r); // sigma * z of view 0, per sample of the block
  const z1 = new Float64Array(B * r); // sigma * z' of view 1
  const eta0 = new Float64Array(B * D);
  const x = new Float64Array(B * D);

  for (let s0 = 0; s0 < n; s0 += B) {
    const m = Math.min(B, n - s0);
    z0.fill(0);
    z1.fill(0);
    // Draws in sample order: z, eta, then (view 1) z*, eta*; the rows of x start at base + eta.
    for (let j = 0; j < m; j++) {
      const bo = labels[s0 + j]! * D;
      const zo = j * r;
      const xo = j * D;
      rng.fillNormal(zDraw);
      for (let k = 0; k < r; k++) z0[zo + k] = sigma * zDraw[k]!;
      rng.fillNormal(etaDraw, 0, etaStd);
      for (let i = 0; i < D; i++) {
        eta0[xo + i] = etaDraw[i]!;
        x[xo + i] = imageBase[bo + i]! + etaDraw[i]!;
      }
      if (V === 2) {
        rng.fillNormal(zDraw);
        for (let k = 0; k < r; k++) z1[zo + k] = rhoS * z0[zo + k]! + rhoSc * sigma * zDraw[k]!;
      }
    }
    addBlockTimesBasis(x, z0, q, r, D);
    for (let j = 0; j < m; j++) writeNormalized(x, j * D, features, ((s0 + j) * V) * D, D);
    if (V === 2) {
      for (let j = 0; j < m; j++) {
        const bo = labels[s0 + j]! * D;
        const xo = j * D;
        rng.fillNormal(etaDraw, 0, etaStd);
        for (let i = 0; i < D; i++) {
          x[xo + i] = imageBase[bo + i]! + rhoN * eta0[xo + i]! + rhoNc * etaDraw[i]!;
        }
      }
      addBlockTimesBasis(x, z1, q, r, D);
      for (let j = 0; j < m; j++) writeNormalized(x, j * D, features, ((s0 + j) * V + 1) * D, D);
    }
  }
  return { features, labels, n, views: V, dim: D };
}

/** out[oo..oo+D) = float32(x[xo..xo+D) / |x[xo..xo+D)|). */
function writeNormalized(x: Float64Array, xo: number, out: Float32Array, oo: number, D: number): void {
  let ss = 0;
  for (let i = 0; i < D; i++) ss += x[xo + i]! * x[xo + i]!;
  const inv = 1 / Math.sqrt(ss);
  for (let i = 0; i < D; i++) out[oo + i] = x[xo + i]! * inv;
}

/**
 * Generate the synthetic dataset for `config` (missing fields take `SYNTHETIC_DEFAULTS`).
 * Same config (seed included) -> byte-identical arrays. The manifest says `encoder: "synthetic"` and
 * carries `extra.synthetic = true`, the full generator config and each class's superclass, so any
 * result computed on it stays labelled synthetic.
 */
export function generateSyntheticDataset(config: Partial<SyntheticConfig> = {}): FeaturesDataset {
  const cfg = resolveSyntheticConfig(config);
  const root = new Rng(cfg.seed);
  const geoRng = root.fork();
  const trainRng = root.fork();
  const testRng = root.fork();
  const geo = buildGeometry(cfg, geoRng);
  const train = generateSplit(cfg, geo, trainRng, cfg.trainPerClass);
  const test = generateSplit(cfg, geo, testRng, cfg.testPerClass);
  const manifest: FeaturesManifest = {
    format: 'clap4clip-features',
    version: 1,
    encoder: 'synthetic',
    dim: cfg.dim,
    logitScale: 100,
    classNames: syntheticClassNames(cfg.numClasses),
    templates: syntheticTemplates(cfg.numTemplates),
    extra: {
      synthetic: true,
      generator: { ...cfg },
      superclassOf: Array.from(geo.superclassOf),
    },
  };
  return { manifest, text: geo.text, numClasses: cfg.numClasses, numTemplates: cfg.numTemplates, train, test };
}

export { classTextFeatures, zeroShotPredictions, zeroShotAccuracy, nearestClassMeanPredictions, nearestClassMeanAccuracy } from './syntheticDiagnostics.js';
