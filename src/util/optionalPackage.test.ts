import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';
import { Clap4ClipError } from './errors.js';
import { installCommand, isMissingPackage, missingPackageError, OPTIONAL_PACKAGES, withOptionalPackages } from './optionalPackage.js';

const PACKAGE_JSON = JSON.parse(await readFile(join(repoRoot(), 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>; devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>; peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

test('the optional packages are optional peers of package.json, pinned for the repository at the versions the error names', () => {
  for (const [name, version] of Object.entries(OPTIONAL_PACKAGES)) {
    assert.equal(PACKAGE_JSON.dependencies[name], undefined, `${name} must not be a dependency`);
    assert.equal(PACKAGE_JSON.devDependencies[name], version, `${name}: devDependencies pin`);
    assert.equal(PACKAGE_JSON.peerDependencies[name], `^${version}`, `${name}: peer range`);
    assert.equal(PACKAGE_JSON.peerDependenciesMeta[name]?.optional, true, `${name}: optional peer`);
  }
  assert.equal(installCommand(), 'npm install @huggingface/transformers@4.3.1 sharp@0.35.5');
});

test('a missing optional package becomes an error naming it and the install command; other errors pass through', async () => {
  const notFound = Object.assign(new Error("Cannot find package 'sharp' imported from /app/x.js"), { code: 'ERR_MODULE_NOT_FOUND' });
  assert.ok(isMissingPackage(notFound, 'sharp'));
  assert.ok(!isMissingPackage(notFound, '@huggingface/transformers'));
  // A missing file of the project (not the package) is not reported as a missing package.
  assert.ok(!isMissingPackage(Object.assign(new Error("Cannot find module '/app/sharpen.js'"), { code: 'ERR_MODULE_NOT_FOUND' }), 'sharp'));
  assert.ok(!isMissingPackage(new Error("Cannot find package 'sharp'"), 'sharp'), 'needs the resolution error code');

  await assert.rejects(withOptionalPackages('decoding images', () => Promise.reject(notFound)), (err: unknown) => {
    assert.ok(err instanceof Clap4ClipError);
    assert.equal(err.message, 'decoding images needs the optional package "sharp", which is not installed. Install the encoder packages with '
      + '`npm install @huggingface/transformers@4.3.1 sharp@0.35.5` (an application that passes precomputed features needs neither).');
    assert.equal(err.cause, notFound);
    return true;
  });
  const other = new TypeError('boom');
  await assert.rejects(withOptionalPackages('x', () => Promise.reject(other)), (err: unknown) => err === other);
  assert.equal(await withOptionalPackages('x', async () => 42), 42);
  assert.match(missingPackageError('@huggingface/transformers', 'loading').message, /^loading needs the optional package "@huggingface\/transformers"/);
});

/**
 * A module hook that makes the optional packages unresolvable (as in an application that did not
 * install them) and logs every attempt to import one, next to phase marks written by the program.
 */
const HIDE_PACKAGES_HOOK = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const name = ${JSON.stringify(Object.keys(OPTIONAL_PACKAGES))}.find((p) => specifier === p || specifier.startsWith(p + '/'));
  if (name !== undefined) {
    appendFileSync(log, 'import ' + name + '\\n');
    throw Object.assign(new Error("Cannot find package '" + name + "' imported from " + context.parentURL), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}`;

/** Runs in the child: features-only use first, then each encoder-mode entry point. */
const PROGRAM = (index: string, log: string) => `
import { appendFileSync } from 'node:fs';
const mark = (s) => appendFileSync(${JSON.stringify(log)}, s + '\\n');
const lib = await import(${JSON.stringify(index)});
const world = lib.generateSyntheticDataset(lib.SYNTHETIC_PRESETS.tiny);
const D = world.manifest.dim, P = world.numTemplates;
const classOf = (c) => {
  const rows = [...world.train.labels.keys()].filter((i) => world.train.labels[i] === c);
  const features = new Float32Array(rows.length * D);
  rows.forEach((i, r) => features.set(world.train.features.subarray(i * world.train.views * D, i * world.train.views * D + D), r * D));
  return { name: world.manifest.classNames[c], features, textFeatures: world.text.slice(c * P * D, (c + 1) * P * D) };
};
const clf = await lib.createClassifier({ dim: D, samples: 2, options: { epochs: 1, finetuneEpochs: 1 } });
await clf.learn({ classes: [classOf(0), classOf(1)] });
const [p] = await clf.predict([classOf(1).features.slice(0, D)]);
mark('features-only done: ' + p.top[0].label);
const attempt = async (what, f) => { try { await f(); mark(what + ': no error'); } catch (err) { mark(what + ': ' + err.name + ': ' + err.message); } };
await attempt('loadClipEncoder', () => lib.loadClipEncoder('Xenova/clip-vit-base-patch16'));
await attempt('createClassifier encoder id', () => lib.createClassifier({ encoder: 'Xenova/clip-vit-base-patch16' }));
const encoder = { info: { id: 'fake', dim: D, logitScale: 100 }, encodeImages: async () => new Float32Array(D), encodeTexts: async () => new Float32Array(D), dispose: async () => {} };
const withEncoder = await lib.createClassifier({ encoder, templates: ['a photo of a {}.'] });
await attempt('learn from images', () => withEncoder.learn({ classes: [{ name: 'a', images: [new Uint8Array([137, 80, 78, 71])], textFeatures: classOf(0).textFeatures.slice(0, D) }] }));
await attempt('learn without textFeatures', () => withEncoder.learn({ classes: [{ name: 'a', features: classOf(0).features }] }));
`;

test('features-only use imports neither optional package; each encoder entry point names the missing one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'clap4clip-optional-'));
  try {
    const log = join(dir, 'log.txt');
    const index = pathToFileURL(join(repoRoot(), 'dist', 'src', 'index.js')).href;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HIDE_PACKAGES_HOOK)}`)}, { data: { log: ${JSON.stringify(log)} } });`;
    await promisify(execFile)(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', PROGRAM(index, log)], { timeout: 120_000 });
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    const install = '`npm install @huggingface/transformers@4.3.1 sharp@0.35.5`';
    assert.match(lines[0]!, /^features-only done: class_00[01]$/, 'nothing optional was imported before or during features-only use');
    // Node remembers a module that failed to load, so clip.js's missing import is attempted once.
    assert.deepEqual(new Set(lines.filter((l) => l.startsWith('import '))), new Set(['import @huggingface/transformers', 'import sharp']));
    assert.deepEqual(lines.slice(1).filter((l) => !l.startsWith('import ')), [
      `loadClipEncoder: Clap4ClipError: a CLIP encoder (transformers.js) needs the optional package "@huggingface/transformers", which is not installed. Install the encoder packages with ${install} (an application that passes precomputed features needs neither).`,
      `createClassifier encoder id: Clap4ClipError: a CLIP encoder (transformers.js) needs the optional package "@huggingface/transformers", which is not installed. Install the encoder packages with ${install} (an application that passes precomputed features needs neither).`,
      `learn from images: Clap4ClipError: decoding images needs the optional package "sharp", which is not installed. Install the encoder packages with ${install} (an application that passes precomputed features needs neither).`,
      `learn without textFeatures: Clap4ClipError: computing text features from class names (a class without "textFeatures") needs the optional package "@huggingface/transformers", which is not installed. Install the encoder packages with ${install} (an application that passes precomputed features needs neither).`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
