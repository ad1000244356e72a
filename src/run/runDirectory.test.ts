import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Clap4ClipError } from '../util/errors.js';
import { resolveRunConfig } from './config.js';
import { CHECKPOINT_DIR, CONFIG_FILE, configHash, diffConfigs, prepareRunDirectory, readRunConfig } from './runDirectory.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-rundir-'));
  dirs.push(d);
  return d;
}
const exists = (p: string) => stat(p).then(() => true, () => false);

const base = resolveRunConfig({ syntheticPreset: 'tiny', increment: 5, epochs: 1, methodOptions: { beta: 15 } });

test('the config hash and diff ignore keys that do not change results (out, progress)', () => {
  const moved = { ...base, out: 'somewhere/else', progress: 'never' as const };
  assert.equal(configHash(moved), configHash(base));
  assert.deepEqual(diffConfigs(base, moved), []);
  assert.notEqual(configHash({ ...base, seed: 1 }), configHash(base));
  const changed = { ...base, epochs: 2, methodOptions: { beta: 10, samplesOverride: 3 }, classOrder: [1, 0, 2, 3, 4, 5, 6, 7, 8, 9] as number[] };
  assert.deepEqual(diffConfigs(base, changed).map((d) => d.key), ['classOrder', 'epochs', 'methodOptions.beta', 'methodOptions.samplesOverride']);
  // Key order inside objects does not matter.
  assert.deepEqual(diffConfigs({ ...base, syntheticOptions: { a: 1, b: 2 } } as never, { ...base, syntheticOptions: { b: 2, a: 1 } } as never), []);
});

test('a new directory gets config.json, which reads back as the same config', async () => {
  const dir = join(await tempDir(), 'run');
  const r = await prepareRunDirectory(dir, base);
  assert.equal(r.mode, 'fresh');
  assert.deepEqual(await readRunConfig(dir), base);
  // config.json is a valid --config file.
  assert.deepEqual(resolveRunConfig(JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8'))), base);
});

test('a different config is refused, naming the differing keys; --force replaces the run', async () => {
  const dir = await tempDir();
  await prepareRunDirectory(dir, base);
  await mkdir(join(dir, CHECKPOINT_DIR));
  await writeFile(join(dir, 'notes.txt'), 'mine');
  const changed = { ...base, epochs: 3, methodOptions: { beta: 10 } };
  await assert.rejects(prepareRunDirectory(dir, changed), (e: unknown) => {
    assert.ok(e instanceof Clap4ClipError);
    assert.match(e.message, /holds a run with a different config; differing keys: epochs \(1 -> 3\), methodOptions\.beta \(15 -> 10\)/);
    assert.match(e.message, /--force/);
    return true;
  });
  assert.ok(await exists(join(dir, CHECKPOINT_DIR)), 'nothing deleted when refusing');
  const r = await prepareRunDirectory(dir, changed, { force: true });
  assert.equal(r.mode, 'overwrite');
  assert.deepEqual(await readRunConfig(dir), changed);
  assert.equal(await exists(join(dir, CHECKPOINT_DIR)), false, 'the old checkpoint is gone');
  assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'mine', 'files that are not the run\'s stay');
});

test('the same config starts over (old checkpoint removed); changing only out/progress is the same config', async () => {
  const dir = await tempDir();
  await prepareRunDirectory(dir, base);
  await mkdir(join(dir, CHECKPOINT_DIR));
  const r = await prepareRunDirectory(dir, { ...base, progress: 'always' });
  assert.equal(r.mode, 'restart');
  assert.equal(await exists(join(dir, CHECKPOINT_DIR)), false);
});

test('resume: same config continues (the run\'s own config is returned); a changed config names the keys', async () => {
  const dir = await tempDir();
  await prepareRunDirectory(dir, base);
  await mkdir(join(dir, CHECKPOINT_DIR));
  const r = await prepareRunDirectory(dir, { ...base, out: 'elsewhere' }, { resume: true });
  assert.equal(r.mode, 'resume');
  assert.deepEqual(r.config, base);
  assert.ok(await exists(join(dir, CHECKPOINT_DIR)), 'the checkpoint is kept');
  await assert.rejects(prepareRunDirectory(dir, { ...base, seed: 4, selector: 'herding' }, { resume: true }), /cannot resume with a changed config; differing keys: seed \(0 -> 4\), selector \("random" -> "herding"\)/);
  await assert.rejects(prepareRunDirectory(dir, base, { resume: true, force: true }), /--force and --resume contradict/);
  await assert.rejects(prepareRunDirectory(join(dir, 'none'), base, { resume: true }), /nothing to resume: no config\.json/);
});

test('a non-empty directory that is not a run is refused unless --force, which keeps its files', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'data.bin'), 'x');
  await assert.rejects(prepareRunDirectory(dir, base), /is not a clap4clip run \(no config\.json\)/);
  assert.equal((await prepareRunDirectory(dir, base, { force: true })).mode, 'overwrite');
  assert.ok(await exists(join(dir, 'data.bin')));
  const file = join(dir, 'data.bin');
  await assert.rejects(prepareRunDirectory(file, base), /is a file, not a directory/);
});

test('a corrupt config.json is a clear error naming the file', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, CONFIG_FILE), '{"seed": 1,');
  await assert.rejects(prepareRunDirectory(dir, base), (e: unknown) => e instanceof Clap4ClipError && /config\.json: not valid JSON .*truncated or corrupt/.test(e.message));
  await writeFile(join(dir, CONFIG_FILE), '{"sed": 1}');
  await assert.rejects(readRunConfig(dir), /config\.json: config: unknown key "sed" \(did you mean "seed"\?\)/);
  await writeFile(join(dir, CONFIG_FILE), '{"epochs": -1}');
  await assert.rejects(readRunConfig(dir), /config\.json: config: "epochs" must be >= 0, got -1/);
  await writeFile(join(dir, CONFIG_FILE), Buffer.alloc(2 * 1024 * 1024, 32));
  await assert.rejects(readRunConfig(dir), /too large for a run config/);
});
