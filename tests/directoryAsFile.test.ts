/**
 * A folder given where a file is expected: every path option and every reader behind one names the
 * path and says "is a directory" (never a raw EISDIR with a stack trace). One row per option or
 * file; a new reader of a user-named file belongs in this table.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decodeImage } from '../src/api/inputs.js';
import { loadClassifier } from '../src/api/classifier.js';
import { runCommand } from '../src/cli/commands/run.js';
import { commands } from '../src/cli/commands/index.js';
import { recordingIO } from '../src/cli/commands/io.js';
import { readDataset } from '../src/data/datasets/registry.js';
import { fileItem } from '../src/data/datasets/imageFolder.js';
import { loadTemplatesFile } from '../src/data/datasets/templates.js';
import { loadFeaturesDataset, writeFeaturesDataset } from '../src/data/featuresDataset.js';
import { readSafetensors } from '../src/data/safetensors.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { SYNTHETIC_PRESETS } from '../src/run/config.js';
import { readJson } from '../src/encoders/featurePlan.js';
import { checkModelFolder, JSON_FILES, onnxFiles } from '../src/encoders/modelFolder.js';
import { readForwardInputs } from '../src/interchange/forward.js';
import { readReferenceCheckpoint } from '../src/interchange/referenceCheckpoint.js';
import { loadResultsFile } from '../src/report/loadResults.js';
import { readLatestCheckpoint } from '../src/run/checkpoint.js';
import { readInvocation } from '../src/run/invocation/index.js';
import { readRunConfig } from '../src/run/runDirectory.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-dir-as-file-'));
  dirs.push(d);
  return d;
}

/** A folder at `root/name` (where the reader expects a file); returns its path. */
async function folderAt(root: string, ...name: string[]): Promise<string> {
  const p = join(root, ...name);
  await mkdir(p, { recursive: true });
  return p;
}

/** A 1x1 RGB PNG (the image files of the image-folder rows). */
const PNG_1x1 = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003010100c9fe92ef0000000049454e44ae426082', 'hex');

interface Row {
  /** The option (or file) as the user knows it. */
  option: string;
  /** Sets up `root` with a folder where the file should be; returns that folder's path and the call to make. */
  setup(root: string): Promise<{ folder: string; call: () => Promise<unknown> }>;
}

const ROWS: Row[] = [
  { option: 'run --config FILE', setup: async (r) => { const f = await folderAt(r, 'cfg.json'); return { folder: f, call: () => runCommand(['--config', f], recordingIO()) }; } },
  { option: 'run --class-order FILE', setup: async (r) => { const f = await folderAt(r, 'order.txt'); return { folder: f, call: () => runCommand(['--method', 'zeroshot', '--class-order', f], recordingIO()) }; } },
  { option: 'params --config FILE', setup: async (r) => { const f = await folderAt(r, 'cfg.json'); return { folder: f, call: () => commands['params']!.run(['--config', f]) }; } },
  { option: 'run --resume DIR: config.json', setup: async (r) => { const f = await folderAt(r, 'config.json'); return { folder: f, call: () => readRunConfig(r) }; } },
  { option: 'run --resume DIR: invocation.json', setup: async (r) => { const f = await folderAt(r, 'invocation.json'); return { folder: f, call: () => readInvocation(r) }; } },
  { option: 'run --resume DIR: checkpoint pointer', setup: async (r) => { const f = await folderAt(r, 'checkpoint', 'latest'); return { folder: f, call: () => readLatestCheckpoint(r) }; } },
  { option: 'run --resume DIR: checkpoint files', setup: async (r) => {
    await mkdir(join(r, 'checkpoint', 'task-0000-00000000'), { recursive: true });
    await writeFile(join(r, 'checkpoint', 'latest'), 'task-0000-00000000\n');
    const f = await folderAt(r, 'checkpoint', 'task-0000-00000000', 'COMPLETE');
    return { folder: f, call: () => readLatestCheckpoint(r) };
  } },
  { option: 'run --data DIR: manifest.json', setup: async (r) => {
    for (const n of ['text.safetensors', 'train.safetensors', 'test.safetensors']) await writeFile(join(r, n), '');
    const f = await folderAt(r, 'manifest.json');
    return { folder: f, call: () => loadFeaturesDataset(r) };
  } },
  { option: 'run --data DIR: train.safetensors', setup: async (r) => {
    await writeFeaturesDataset(join(r, 'ds'), generateSyntheticDataset(SYNTHETIC_PRESETS.tiny));
    await rm(join(r, 'ds', 'train.safetensors'));
    const f = await folderAt(r, 'ds', 'train.safetensors');
    return { folder: f, call: () => loadFeaturesDataset(join(r, 'ds')) };
  } },
  { option: 'library loadClassifier(DIR): save pointer', setup: async (r) => { const f = await folderAt(r, 'latest'); return { folder: f, call: () => loadClassifier(r) }; } },
  { option: 'library predict/learn image path', setup: async (r) => { const f = await folderAt(r, 'photo.jpg'); return { folder: f, call: () => decodeImage(f, 'predict input 0') }; } },
  { option: 'features: an image of the dataset', setup: async (r) => {
    const f = await folderAt(r, 'cat', 'a.png');
    return { folder: f, call: () => fileItem(r, 'cat/a.png', 0).load() };
  } },
  { option: 'features --class-names FILE', setup: async (r) => {
    for (const c of ['cat', 'dog']) { await mkdir(join(r, c)); for (const i of [1, 2, 3, 4, 5]) await writeFile(join(r, c, `${i}.png`), PNG_1x1); }
    const f = await folderAt(r, 'names.txt');
    return { folder: f, call: () => readDataset('image-folder', { root: r, classNamesFile: f }) };
  } },
  { option: 'features --train-list FILE', setup: async (r) => {
    await writeFile(join(r, 'test.txt'), 'cat/1.png 0\n');
    const f = await folderAt(r, 'train.txt');
    return { folder: f, call: () => readDataset('image-folder', { root: r, trainList: f, testList: join(r, 'test.txt') }) };
  } },
  { option: 'features --test-list FILE', setup: async (r) => {
    await writeFile(join(r, 'train.txt'), 'cat/1.png 0\n');
    const f = await folderAt(r, 'test.txt');
    return { folder: f, call: () => readDataset('image-folder', { root: r, trainList: join(r, 'train.txt'), testList: f }) };
  } },
  { option: 'features --templates FILE', setup: async (r) => { const f = await folderAt(r, 'templates.txt'); return { folder: f, call: () => loadTemplatesFile(f) }; } },
  { option: 'features --dataset cifar100: a data file', setup: async (r) => {
    await writeFile(join(r, 'train.bin'), '');
    const f = await folderAt(r, 'fine_label_names.txt');
    return { folder: f, call: () => readDataset('cifar100', { root: r }) };
  } },
  { option: 'features --dataset vtab: tasks.txt', setup: async (r) => {
    await mkdir(join(r, 'a')); await mkdir(join(r, 'b'));
    const f = await folderAt(r, 'tasks.txt');
    return { folder: f, call: () => readDataset('vtab', { root: r }) };
  } },
  { option: 'features --encoder DIR: a model file', setup: async (r) => {
    const { text, vision } = onnxFiles('fp32');
    for (const n of [...JSON_FILES.slice(1), text, vision]) { await mkdir(join(r, n, '..'), { recursive: true }); await writeFile(join(r, n), '{}'); }
    const f = await folderAt(r, JSON_FILES[0]);
    return { folder: f, call: async () => checkModelFolder(r, 'fp32') };
  } },
  { option: 'features --out DIR (resumed): the chunk plan', setup: async (r) => { const f = await folderAt(r, 'plan.json'); return { folder: f, call: () => readJson(f) }; } },
  { option: 'forward --checkpoint FILE', setup: async (r) => { const f = await folderAt(r, 'head.safetensors'); return { folder: f, call: () => readReferenceCheckpoint(f) }; } },
  { option: 'forward --inputs FILE', setup: async (r) => { const f = await folderAt(r, 'inputs.safetensors'); return { folder: f, call: () => readForwardInputs(f, 'test') }; } },
  { option: 'any safetensors file', setup: async (r) => { const f = await folderAt(r, 'x.safetensors'); return { folder: f, call: () => readSafetensors(f) }; } },
  { option: 'report DIR: results.json', setup: async (r) => { const f = await folderAt(r, 'results.json'); return { folder: f, call: () => loadResultsFile(f) }; } },
];

for (const row of ROWS) {
  test(`a folder where a file is expected is named: ${row.option}`, async () => {
    const root = await tempDir();
    const { folder, call } = await row.setup(root);
    let caught: unknown;
    await call().then(() => assert.fail('expected an error'), (e: unknown) => { caught = e; });
    const message = caught instanceof Error ? caught.message : String(caught);
    assert.ok(message.includes(folder), `names ${folder}: ${message}`);
    assert.match(message, /is a directory/, message);
    assert.doesNotMatch(message, /EISDIR|illegal operation/, message);
  });
}
