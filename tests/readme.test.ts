import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { generateSyntheticDataset, SYNTHETIC_PRESETS, writeFeaturesDataset } from '../src/index.js';
import { repoRoot } from '../src/util/paths.js';
import { exampleAsApplication, readmeQuickstart } from './readmeQuickstart.js';

const root = repoRoot();
const readme = await readFile(join(root, 'README.md'), 'utf8');

test("the README's features-only quickstart is examples/featuresOnly.ts, which runs as written", async () => {
  assert.equal(await readmeQuickstart(root), await exampleAsApplication(root));
  const dir = await mkdtemp(join(tmpdir(), 'clap4clip-quickstart-'));
  try {
    await writeFeaturesDataset(join(dir, 'feats'), generateSyntheticDataset(SYNTHETIC_PRESETS.tiny));
    const example = join(root, 'dist', 'examples', 'featuresOnly.js');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [example], { cwd: dir, timeout: 120_000 });
    assert.equal(stderr, '');
    const accuracy = /^learned class_000, class_001, class_002, class_003; test accuracy (\d+) \/ 40$/m.exec(stdout);
    assert.ok(accuracy !== null, stdout);
    assert.ok(Number(accuracy[1]) >= 36, `accuracy ${accuracy[1]} / 40`);
    const first = JSON.parse(/^first prediction: (.*)$/m.exec(stdout)![1]!) as { top: { label: string; probability: number }[]; isNovel: unknown };
    assert.equal(first.top.length, 2);
    assert.equal(first.isNovel, null);
    // save() returned the sub-folder it wrote; loadClassifier read the folder given to save().
    const saves = (await readdir(join(dir, 'my-classifier'))).filter((f) => f.startsWith('classifier-'));
    assert.equal(saves.length, 1);
    assert.match(stdout, new RegExp(`^saved to ${join(dir, 'my-classifier', saves[0]!).replaceAll('/', '\\/')}; reloaded with 4 classes$`, 'm'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the README keeps its newcomer commands first and says how to install, bring features, cite and license', () => {
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1]!;
  assert.match(firstBlock, /^npm ci && npx clap4clip run /m);
  assert.match(firstBlock, /^npm test /m);
  assert.ok(readme.indexOf('```sh') < readme.indexOf('## '), 'the two commands come before any section');
  for (const section of ['## Use in your project', '## Features-only quickstart', '## Bring your own features', '## API reference', '## Citation', '## License']) {
    assert.ok(readme.includes(`\n${section}\n`), section);
  }
  assert.match(readme, /ONNXRUNTIME_NODE_INSTALL=skip npm install clap4clip/);
  assert.match(readme, /^onnxruntime-node-install=skip$/m);
  assert.match(readme, /npm install @huggingface\/transformers@4\.3\.1 sharp@0\.35\.5/);
  assert.match(readme, /@inproceedings\{jha2024clap4clip,/);
  assert.match(readme, /\[docs\/API\.md\]\(docs\/API\.md\)/);
});

test('docs/API.md documents every export of the package entry, values and types', async () => {
  const api = await readFile(join(root, 'docs', 'API.md'), 'utf8');
  const entry = (await import(pathToFileURL(join(root, 'dist', 'src', 'index.js')).href)) as Record<string, unknown>;
  // Types too: every name of the entry's declarations (`export { a, type B, C as D }`, functions).
  const declarations = await readFile(join(root, 'dist', 'src', 'index.d.ts'), 'utf8');
  const typeNames = [...declarations.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) => m[1]!.split(','))
    .map((x) => x.trim().replace(/^type /, '').split(/ as /).pop()!.trim()).filter((x) => x !== '');
  const names = new Set([...Object.keys(entry), ...typeNames]);
  assert.ok(names.size > 70 && names.has('ClassifierOptions') && names.has('MemoryBudget'), `read ${names.size} names`);
  const missing = [...names].filter((name) => !api.includes(`\`${name}`));
  assert.deepEqual(missing, [], 'exports without an entry in docs/API.md');
  // The typed options and the save layout are spelled out.
  for (const phrase of ['MethodName', 'SelectorName', 'MemoryBudget', 'classifier-<tasks>-<suffix>']) assert.ok(api.includes(phrase), phrase);
});

test("the README's Python writer is the function examples/write_features.py runs (tests/pythonFeatures.test.ts)", async () => {
  const script = await readFile(join(root, 'examples', 'write_features.py'), 'utf8');
  const block = /```python\n([\s\S]*?)^```$/m.exec(readme);
  assert.ok(block !== null, 'README.md has a python block');
  assert.match(block[1]!, /^def write_features_dataset\(/m);
  assert.ok(script.includes(block[1]!), 'the README block appears verbatim in examples/write_features.py');
});
