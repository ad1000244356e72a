/**
 * The package as an application gets it: `npm pack`, then `npm ci --offline` into a new
 * application with the setting the README documents, then the README's quickstart compiled against
 * the installed types and run, the entry's boundaries (no deep imports, no optional packages) and
 * onnxruntime-node's install script with and without the setting.
 *
 * Offline: the application's lockfile is the project's own package-lock.json minus the development
 * packages, so npm asks for exactly what `npm ci` in the project already put in npm's cache.
 */
import assert from 'node:assert/strict';
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { repoRoot } from '../src/util/paths.js';
import { installCommand, OPTIONAL_PACKAGES } from '../src/util/optionalPackage.js';
import { readmeQuickstart } from './readmeQuickstart.js';

const root = repoRoot();
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** Any download attempted by an install script goes here and fails at once (nothing listens on port 9). */
const NO_NETWORK = 'http://127.0.0.1:9';

interface Run { code: number; stdout: string; stderr: string }

/** Runs a command; resolves with its exit code and output (a non-zero exit is data, not an error). */
function run(file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, timeout = 300_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 << 20 }, (err: ExecFileException | null, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') reject(err);
      else resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
    });
  });
}

/**
 * The environment of a user's shell: without the npm_* variables `npm test` exports (among them the
 * project's own `onnxruntime-node-install=skip`, which must not leak into the application), but
 * with the same npm cache, and with install-script downloads pointed at a closed port.
 */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'ONNXRUNTIME_NODE_INSTALL') env[k] = v;
  if (process.env['npm_config_cache'] !== undefined) env['npm_config_cache'] = process.env['npm_config_cache'];
  return { ...env, GLOBAL_AGENT_HTTPS_PROXY: NO_NETWORK, GLOBAL_AGENT_HTTP_PROXY: NO_NETWORK, https_proxy: NO_NETWORK, HTTPS_PROXY: NO_NETWORK, ...extra };
}

interface LockEntry { dev?: boolean; [key: string]: unknown }
interface Lockfile { packages: Record<string, LockEntry> }

/** package.json + package-lock.json of an application depending on the tarball only. */
async function writeApplication(app: string, tarball: string, tarballBytes: Buffer): Promise<void> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as Lockfile;
  const dependencies = { clap4clip: `file:${tarball}` };
  // allowScripts: recent npm 11 releases run a dependency's install script only when allowed (older npm always does);
  // allowing onnxruntime-node's makes the test run it, as most users' npm does.
  const manifest = { name: 'scratch-app', version: '1.0.0', private: true, type: 'module', dependencies, allowScripts: { 'onnxruntime-node': true } };
  const packages: Record<string, unknown> = {
    '': { name: manifest.name, version: manifest.version, dependencies },
    'node_modules/clap4clip': {
      version: pkg['version'], resolved: `file:${tarball}`,
      integrity: `sha512-${createHash('sha512').update(tarballBytes).digest('base64')}`,
      ...Object.fromEntries(['license', 'dependencies', 'peerDependencies', 'peerDependenciesMeta', 'bin', 'engines'].map((k) => [k, lock.packages['']![k]])),
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && entry.dev !== true) packages[path] = entry;
  await writeFile(join(app, 'package.json'), JSON.stringify(manifest, null, 2));
  await writeFile(join(app, 'package-lock.json'), JSON.stringify({ name: manifest.name, version: manifest.version, lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** In the application: what the entry refuses and how encoder mode fails without its packages. */
const BOUNDARIES = `
const lines = [];
try { await import('clap4clip/dist/src/index.js'); lines.push('deep import: loaded'); } catch (err) { lines.push('deep import: ' + err.code); }
const { createClassifier, loadFeaturesDataset } = await import('clap4clip');
try { await createClassifier({ encoder: 'Xenova/clip-vit-base-patch16' }); lines.push('encoder id: created'); } catch (err) { lines.push('encoder id: ' + err.message); }
const encoder = { info: { id: 'mine', dim: 4, logitScale: 100 }, encodeImages: async () => new Float32Array(4), encodeTexts: async () => new Float32Array(4), dispose: async () => {} };
const clf = await createClassifier({ encoder, templates: ['a photo of a {}.'] });
try { await clf.learn({ classes: [{ name: 'fox', images: ['fox.jpg'], textFeatures: new Float32Array([1, 0, 0, 0]) }] }); lines.push('images: learned'); } catch (err) { lines.push('images: ' + err.message); }
console.log(lines.join('\\n'));
`;

test('the packed tarball installs offline into a new application: quickstart, types, entry boundaries, optional packages, onnxruntime-node setting', { timeout: 900_000 }, async (t) => {
  const npmVersion = await run(NPM, ['--version'], root, userEnv()).catch((err: NodeJS.ErrnoException) => err);
  if (npmVersion instanceof Error) {
    t.skip(`npm is not available (${npmVersion.code ?? npmVersion.message}): cannot pack and install the package`);
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'clap4clip-install-'));
  try {
    // 1. Pack the built project (--ignore-scripts: `npm test` has just built dist/, and a second
    //    build would rewrite files other tests are reading).
    const pack = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root, userEnv());
    assert.equal(pack.code, 0, pack.stderr);
    const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    const unwanted = files.filter((f) => /\.test\.|(^|\/)fixtures\/|(^|\/)testing\/|testFixtures|\.map$|^\.ci\/|^(tests|src|bench|examples|scripts|docs)\//.test(f));
    assert.deepEqual(unwanted, [], 'the tarball ships only the library, its types, README, LICENSE and package.json');
    for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/launcher.js']) assert.ok(files.includes(f), f);
    assert.ok(files.every((f) => /^(LICENSE|README\.md|package\.json|dist\/src\/.*\.(js|d\.ts))$/.test(f)), files.join(', '));

    // 2. Install it offline, with the environment variable the README documents.
    const app = join(work, 'app');
    await mkdir(app);
    const tarball = join(work, packed!.filename);
    await writeApplication(app, tarball, await readFile(tarball));
    const install = await run(NPM, ['ci', '--offline', '--foreground-scripts', '--no-audit', '--no-fund'], app, userEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }));
    assert.equal(install.code, 0, `npm ci --offline failed (is npm's cache filled by \`npm ci\` in the project?):\n${install.stdout}\n${install.stderr}`);
    assert.match(install.stdout, /onnxruntime-node@[\d.]+ postinstall/, 'onnxruntime-node\'s install script ran (and skipped its download)');
    for (const name of Object.keys(OPTIONAL_PACKAGES)) assert.ok(!existsSync(join(app, 'node_modules', name)), `${name} is not installed`);

    // 3. The README's quickstart, pasted into a TypeScript file, compiles against the installed
    //    declarations (skipLibCheck off: they must not need the optional packages) and runs.
    await writeFile(join(app, 'quickstart.ts'), await readmeQuickstart(root));
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
      files: ['quickstart.ts'],
    }));
    const tsc = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app, userEnv());
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
    const synth = await run(join(app, 'node_modules', '.bin', 'clap4clip'), ['synth', '--preset', 'tiny', '--out', 'feats'], app, userEnv());
    assert.equal(synth.code, 0, synth.stderr);
    const quickstart = await run(process.execPath, ['quickstart.js', 'feats'], app, userEnv());
    assert.equal(quickstart.code, 0, quickstart.stderr);
    const accuracy = /test accuracy (\d+) \/ 40$/m.exec(quickstart.stdout);
    assert.ok(accuracy !== null && Number(accuracy[1]) >= 36, quickstart.stdout);
    assert.match(quickstart.stdout, /^saved to .*\/my-classifier\/classifier-0002-[0-9a-f]+; reloaded with 4 classes$/m);

    // 4. The entry's boundaries, and encoder mode without the optional packages.
    const boundaries = await run(process.execPath, ['--input-type=module', '-e', BOUNDARIES], app, userEnv());
    assert.equal(boundaries.code, 0, boundaries.stderr);
    assert.deepEqual(boundaries.stdout.trim().split('\n'), [
      'deep import: ERR_PACKAGE_PATH_NOT_EXPORTED',
      `encoder id: a CLIP encoder (transformers.js) needs the optional package "@huggingface/transformers", which is not installed. Install the encoder packages with \`${installCommand()}\` (an application that passes precomputed features needs neither).`,
      `images: decoding images needs the optional package "sharp", which is not installed. Install the encoder packages with \`${installCommand()}\` (an application that passes precomputed features needs neither).`,
    ]);

    // The command line: encoding images without transformers.js, and the benchmarks, which stay in the repository.
    for (const c of ['a', 'b']) {
      await mkdir(join(app, 'images', c), { recursive: true });
      for (let i = 0; i < 5; i++) await writeFile(join(app, 'images', c, `${i}.png`), 'not decoded: the encoder is loaded first'); // 4 train + 1 test
    }
    const cli = join(app, 'node_modules', '.bin', 'clap4clip');
    const features = await run(cli, ['features', '--dataset', 'image-folder', '--root', 'images', '--encoder', 'Xenova/clip-vit-base-patch16', '--out', 'out'], app, userEnv());
    assert.equal(features.code, 1);
    assert.equal(features.stderr.trim(), `clap4clip: a CLIP encoder (transformers.js) needs the optional package "@huggingface/transformers", which is not installed. Install the encoder packages with \`${installCommand()}\` (an application that passes precomputed features needs neither).`);
    const bench = await run(cli, ['bench'], app, userEnv());
    assert.equal(bench.code, 1);
    assert.match(bench.stderr, /^clap4clip: bench runs in a clone of the clap4clip repository/);
    const benchHelp = await run(cli, ['bench', '--help'], app, userEnv());
    assert.equal(benchHelp.code, 0, 'bench --help works without the benchmarks');
    assert.match(benchHelp.stdout, /^Usage: clap4clip bench \[options\]\n[\s\S]*installed package does not include them/);

    // 5. onnxruntime-node's install script: the .npmrc line the README documents also skips the
    //    download; without either setting it tries to download (the failure the setting prevents).
    const rebuild = ['rebuild', 'onnxruntime-node', '--offline', '--foreground-scripts'];
    await writeFile(join(app, '.npmrc'), 'onnxruntime-node-install=skip\n');
    const withNpmrc = await run(NPM, rebuild, app, userEnv());
    assert.equal(withNpmrc.code, 0, withNpmrc.stdout + withNpmrc.stderr);
    await rm(join(app, '.npmrc'));
    if (`${process.platform}/${process.arch}` === 'linux/x64') { // the only platform whose CPU package lacks files it downloads
      const without = await run(NPM, rebuild, app, userEnv());
      assert.notEqual(without.code, 0, 'without the setting the script tries to download the CUDA libraries');
      assert.match(without.stdout + without.stderr, /onnxruntime-node/);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
