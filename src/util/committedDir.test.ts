import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  COMPLETE_FILE, LATEST_FILE, readCommittedDir, writeCommittedDir, type CommitStage, type CommittedDirLayout,
} from './committedDir.js';
import { acquireDirLock } from './dirLock.js';
import { Clap4ClipError, DataError } from './errors.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-committed-'));
  dirs.push(d);
  return d;
}

const LAYOUT: CommittedDirLayout = { prefix: 'v', format: 'test-thing', noun: 'thing', pointerHint: '(written by the test?)' };
const NAMES = ['a.bin', 'b.json'];
/** Version `n`: binary and text files whose content says which version they are. */
const version = (n: number): Record<string, Uint8Array | string> => ({
  'a.bin': Uint8Array.from({ length: 1000 + n }, (_, i) => (i * 7 + n) & 255),
  'b.json': JSON.stringify({ version: n }) + '\n',
});
const read = (root: string) => readCommittedDir(root, LAYOUT, { files: NAMES, optional: true });
/** Which version the reader sees (null: none), after checking every byte. */
async function versionSeen(root: string): Promise<number | null> {
  const r = await read(root);
  if (r === null) return null;
  r.verify();
  return (JSON.parse(r.bytes['b.json']!.toString('utf8')) as { version: number }).version;
}
const versionDirs = async (root: string): Promise<string[]> => (await readdir(root)).filter((n) => n.startsWith('v-')).sort();

async function expectDataError(p: Promise<unknown> | (() => unknown), file: string, problem: RegExp): Promise<void> {
  const check = (e: unknown): boolean => {
    assert.ok(e instanceof DataError, `a DataError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.ok(e.message.startsWith(`${file}: `), e.message);
    assert.match(e.problem, problem);
    return true;
  };
  if (typeof p === 'function') assert.throws(p, check);
  else await assert.rejects(p, check);
}

test('round trip: the same bytes, the marker fields, a COMPLETE recording size and sha256; the root is created', async () => {
  const root = join(await tempDir(), 'x', 'y'); // two levels that do not exist yet
  assert.equal(await read(root), null, 'nothing committed yet');
  const dir = await writeCommittedDir(root, LAYOUT, version(3), { sequence: 3, marker: { step: 3 } });
  assert.match(dir, /\/v-0003-[0-9a-f]{8}$/);
  assert.deepEqual((await readdir(root)).sort(), [LATEST_FILE, dir.split('/').at(-1)!].sort());
  assert.deepEqual((await readdir(dir)).sort(), [COMPLETE_FILE, ...NAMES].sort());

  const r = (await read(root))!;
  assert.equal(r.dir, dir);
  assert.deepEqual(r.marker, { step: 3 });
  assert.deepEqual(r.leftovers, []);
  assert.deepEqual(r.paths, { 'a.bin': join(dir, 'a.bin'), 'b.json': join(dir, 'b.json') });
  assert.ok(r.bytes['a.bin']!.equals(version(3)['a.bin'] as Uint8Array));
  assert.equal(r.bytes['b.json']!.toString('utf8'), version(3)['b.json']);
  r.verify();

  const marker = JSON.parse(await readFile(join(dir, COMPLETE_FILE), 'utf8')) as Record<string, unknown>;
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  assert.deepEqual(marker, {
    format: 'test-thing-complete', step: 3,
    files: { 'a.bin': { bytes: 1003, sha256: sha(r.bytes['a.bin']!) }, 'b.json': { bytes: r.bytes['b.json']!.length, sha256: sha(r.bytes['b.json']!) } },
  });
});

test('an overwrite keeps the old version readable until the commit, then only the new one remains', async () => {
  const root = await tempDir();
  await writeCommittedDir(root, LAYOUT, version(1), { sequence: 1 });
  const seen: string[] = [];
  await writeCommittedDir(root, LAYOUT, version(2), {
    sequence: 2,
    afterStage: async (stage, _dir, file) => {
      seen.push(`${stage}${file === undefined ? '' : ` ${file}`}:${await versionSeen(root)}`);
    },
  });
  assert.deepEqual(seen, ['directory:1', 'file a.bin:1', 'file b.json:1', 'complete:1', 'latest:2', 'cleanup:2']);
  assert.equal((await versionDirs(root)).length, 1);
});

const STAGES: CommitStage[] = ['directory', 'file', 'complete', 'latest', 'cleanup'];

test('a write interrupted after any stage leaves a complete version (old before the commit, new after); the next write cleans up', async () => {
  for (const crashAt of STAGES) {
    const root = await tempDir();
    await writeCommittedDir(root, LAYOUT, version(1), { sequence: 1 });
    const crash = new Error(`killed after ${crashAt}`);
    await assert.rejects(writeCommittedDir(root, LAYOUT, version(2), { sequence: 2, afterStage: (s) => { if (s === crashAt) throw crash; } }), crash);

    const committed = STAGES.indexOf(crashAt) >= STAGES.indexOf('latest');
    assert.equal(await versionSeen(root), committed ? 2 : 1, `after ${crashAt}`);
    const r = (await read(root))!;
    // Before the cleanup there are two version directories: the one not named by `latest` is a leftover.
    assert.equal(r.leftovers.length, crashAt === 'cleanup' ? 0 : 1, `leftovers after ${crashAt}: ${r.leftovers.join(', ')}`);

    await writeCommittedDir(root, LAYOUT, version(3), { sequence: 3 });
    assert.equal(await versionSeen(root), 3);
    assert.deepEqual((await read(root))!.leftovers, []);
    assert.deepEqual((await readdir(root)).sort(), [LATEST_FILE, ...(await versionDirs(root))].sort());
    assert.equal((await versionDirs(root)).length, 1, `cleanup after ${crashAt}`);
  }
});

test('leftovers of a crash (a half-written version directory, a pointer rename that never happened) are ignored, reported and removed', async () => {
  const root = await tempDir();
  const committed = await writeCommittedDir(root, LAYOUT, version(1), { sequence: 1 });
  // What a SIGKILL mid-write leaves: a version directory with a truncated file and no COMPLETE,
  // and the temp file of the `latest` replacement, written but not renamed into place.
  const partial = join(root, 'v-0002-deadbeef');
  await mkdir(partial);
  await writeFile(join(partial, 'a.bin'), Buffer.from([1, 2, 3]));
  await writeFile(join(root, `.${LATEST_FILE}.123-abcdef.tmp`), 'v-0002-deadbeef\n');

  const r = (await read(root))!;
  assert.equal(r.dir, committed);
  r.verify();
  assert.deepEqual(r.leftovers, [`.${LATEST_FILE}.123-abcdef.tmp`, 'v-0002-deadbeef']);
  assert.equal(await versionSeen(root), 1);
  // Reading does not delete: another process may be in the middle of that write.
  assert.ok((await readdir(root)).includes('v-0002-deadbeef'));

  // Without the folder's lock a write removes only what this process wrote: the leftovers may be
  // another process's write in progress.
  await writeCommittedDir(root, LAYOUT, version(2), { sequence: 2 });
  let names = await readdir(root);
  assert.ok(names.includes('v-0002-deadbeef') && names.includes(`.${LATEST_FILE}.123-abcdef.tmp`), names.join(', '));
  assert.ok(!names.includes(committed.split('/').at(-1)!), 'its own superseded version is removed');
  // Holding the lock, every writer of the folder but this one is dead: the leftovers go.
  const lock = await acquireDirLock(root);
  await writeCommittedDir(root, LAYOUT, version(2), { sequence: 2 });
  await lock.release();
  names = await readdir(root);
  assert.ok(!names.includes('v-0002-deadbeef') && !names.some((n) => n.endsWith('.tmp')), names.join(', '));
  assert.equal(await versionSeen(root), 2);
  // Other files in the root are not ours to delete.
  await writeFile(join(root, 'notes.txt'), 'mine');
  await writeCommittedDir(root, LAYOUT, version(3), { sequence: 3 });
  assert.ok((await readdir(root)).includes('notes.txt'));
});

test('a missing or corrupt file of a committed version is an error naming the file', async () => {
  const root = await tempDir();
  const dir = await writeCommittedDir(root, LAYOUT, version(1), { sequence: 1 });

  await rm(join(dir, 'b.json'));
  await expectDataError(read(root), join(dir, 'b.json'), /is missing from the thing \(COMPLETE lists it\)/);

  await writeFile(join(dir, 'b.json'), JSON.stringify({ version: 9 }) + '\n'); // same length, other bytes
  const r = (await read(root))!;
  await expectDataError(() => r.verify(), join(dir, 'b.json'), /content does not match the checksum in COMPLETE \(14 bytes, recorded 14\); modified or corrupted/);
  await writeFile(join(dir, 'b.json'), version(1)['b.json']!);
  const a = await readFile(join(dir, 'a.bin'));
  await writeFile(join(dir, 'a.bin'), a.subarray(0, 10));
  await expectDataError(read(root).then((x) => x!.verify()), join(dir, 'a.bin'), /\(10 bytes, recorded 1001\)/);
  await writeFile(join(dir, 'a.bin'), a);
  await versionSeen(root); // intact again

  const marker = await readFile(join(dir, COMPLETE_FILE), 'utf8');
  const edit = async (change: (m: Record<string, unknown>) => void): Promise<void> => {
    const m = JSON.parse(marker) as Record<string, unknown>;
    change(m);
    await writeFile(join(dir, COMPLETE_FILE), JSON.stringify(m));
  };
  await edit((m) => { delete (m['files'] as Record<string, unknown>)['a.bin']; });
  await expectDataError(read(root), join(dir, COMPLETE_FILE), /does not record the size and sha256 of a\.bin/);
  await edit((m) => { m['format'] = 'other-complete'; });
  await expectDataError(read(root), join(dir, COMPLETE_FILE), /is not the COMPLETE marker of a thing \("format" must be "test-thing-complete"\)/);
  await writeFile(join(dir, COMPLETE_FILE), marker.slice(0, 20));
  await expectDataError(read(root), join(dir, COMPLETE_FILE), /not valid JSON .*truncated or corrupt/);
  await rm(join(dir, COMPLETE_FILE));
  await expectDataError(read(root), join(dir, COMPLETE_FILE), /COMPLETE marker \(the thing is incomplete\) is missing/);

  const latest = join(root, LATEST_FILE);
  await rm(dir, { recursive: true });
  await expectDataError(read(root), latest, /names the thing directory "v-0001-[0-9a-f]{8}", which does not exist/);
  await writeFile(latest, '../../etc\n');
  await expectDataError(read(root), latest, /does not name a thing directory \(got "\.\.\/\.\.\/etc"\)/);
  await writeFile(latest, 'x'.repeat(5000));
  await expectDataError(read(root), latest, /is 5000 bytes, more than any thing pointer/);
  await rm(latest);
  await expectDataError(readCommittedDir(root, LAYOUT, { files: NAMES }), latest, /^thing pointer \(written by the test\?\) is missing$/);
});

test('a file over its size limit is refused before it is read', async () => {
  const root = await tempDir();
  const dir = await writeCommittedDir(root, LAYOUT, version(1), { sequence: 1 });
  await expectDataError(readCommittedDir(root, LAYOUT, { files: NAMES, limits: { 'a.bin': 1000 } }), join(dir, 'a.bin'), /is 1001 bytes, more than any a\.bin of a thing \(limit 1000\)/);
  assert.ok(await readCommittedDir(root, LAYOUT, { files: NAMES, limits: { 'a.bin': 1001 } }));
});

test('the writer refuses file names that would break the layout, and reserved marker fields', async () => {
  const root = await tempDir();
  for (const name of [COMPLETE_FILE, '.hidden', '../escape', 'sub/file', '']) {
    await assert.rejects(writeCommittedDir(root, LAYOUT, { [name]: 'x' }, { sequence: 0 }), (e: unknown) => e instanceof Clap4ClipError && /cannot be a file of a committed directory/.test(e.message), name);
  }
  await assert.rejects(writeCommittedDir(root, LAYOUT, { 'a.bin': 'x' }, { sequence: 0, marker: { files: 1 } }), /"format" and "files" are reserved/);
  assert.deepEqual(await readdir(root), [], 'nothing was created');
});
