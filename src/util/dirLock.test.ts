import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { acquireDirLock, holdsLockOver, LOCK_FILE, refuseIfHeldByOther } from './dirLock.js';
import { FolderBusyError } from './errors.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'clap4clip-lock-'));
  dirs.push(d);
  return d;
}

/** A pid that was alive a moment ago and is not now (a finished child). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid!;
}

const lockRecord = (pid: number, host = hostname(), token = 'aaaaaaaaaaaaaaaa') =>
  JSON.stringify({ pid, hostname: host, startedAt: '2026-01-01T00:00:00.000Z', command: 'clap4clip run --out x', token }) + '\n';

async function busy(p: Promise<unknown>, folder: string, problem: RegExp): Promise<FolderBusyError> {
  let caught: unknown;
  await p.then(() => assert.fail('expected FolderBusyError'), (e: unknown) => { caught = e; });
  assert.ok(caught instanceof FolderBusyError, `expected FolderBusyError, got ${String(caught)}`);
  assert.equal(caught.file, folder);
  assert.match(caught.message, problem);
  return caught;
}

test('a lock names its holder, refuses a second writer in this process, and is gone after release', async () => {
  const root = await tempDir();
  const dir = join(root, 'run');
  const lock = await acquireDirLock(dir, { command: 'test writer' });
  const record = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as Record<string, unknown>;
  assert.equal(record['pid'], process.pid);
  assert.equal(record['hostname'], hostname());
  assert.equal(record['command'], 'test writer');
  assert.ok(holdsLockOver(join(dir, 'checkpoint')));
  await busy(acquireDirLock(dir), dir, new RegExp(`already in use by this process \\(pid ${process.pid} on this host`));
  await lock.release();
  assert.equal(holdsLockOver(dir), false);
  // The folder was created by the lock and is empty again: removed, nothing else left behind.
  assert.deepEqual(await readdir(root), []);
  const again = await acquireDirLock(dir);
  await again.release();
});

test('a lock held by another live process is refused, naming the folder and the pid', async () => {
  const dir = await tempDir();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  try {
    await writeFile(join(dir, LOCK_FILE), lockRecord(sleeper.pid!));
    const e = await busy(acquireDirLock(dir), dir, new RegExp(`in use by another clap4clip process \\(pid ${sleeper.pid} on this host.*clap4clip run --out x`));
    assert.equal(e.holder?.pid, sleeper.pid);
    // Refused, and the other process's lock is untouched.
    assert.equal(await readFile(join(dir, LOCK_FILE), 'utf8'), lockRecord(sleeper.pid!));
    // A writer about to clear the folder from above asks the same question.
    await busy(refuseIfHeldByOther(dir), dir, new RegExp(`pid ${sleeper.pid}`));
    await writeFile(join(dir, LOCK_FILE), lockRecord(deadPid()));
    await refuseIfHeldByOther(dir); // a stale lock is no obstacle
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('a stale lock (its process is dead) is taken over; a stale claim of a dead remover too', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, LOCK_FILE), lockRecord(deadPid()));
  const lock = await acquireDirLock(dir);
  assert.equal((JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
  await lock.release();
  assert.deepEqual(await readdir(dir), []);

  // A remover killed while holding its claim on the stale lock: the claim is stale too.
  await writeFile(join(dir, LOCK_FILE), lockRecord(deadPid(), hostname(), 'bbbbbbbbbbbbbbbb'));
  await writeFile(join(dir, `${LOCK_FILE}.claim-bbbbbbbbbbbbbbbb`), lockRecord(deadPid(), hostname(), 'cccccccccccccccc'));
  const lock2 = await acquireDirLock(dir);
  assert.deepEqual(await readdir(dir), [LOCK_FILE]);
  await lock2.release();
});

test('a lock from another host is refused with how to remove it, never taken over', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, LOCK_FILE), lockRecord(1, 'some-other-host'));
  const file = join(dir, LOCK_FILE);
  await busy(acquireDirLock(dir), dir, new RegExp(`on another host \\(pid 1 on host some-other-host.*delete ${file.replace(/[.]/g, '\\.')}`));
  assert.match(await readFile(file, 'utf8'), /some-other-host/);
});

test('a lock covers the folder tree: above a locked folder and inside one are refused', async () => {
  const root = await tempDir();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  try {
    await mkdir(join(root, 'compare', 'clap'), { recursive: true });
    await writeFile(join(root, 'compare', LOCK_FILE), lockRecord(sleeper.pid!));
    await busy(acquireDirLock(join(root, 'compare', 'clap')), join(root, 'compare'), /in use by another clap4clip process/);
    assert.deepEqual(await readdir(join(root, 'compare', 'clap')), [], 'the refused lock is given back');
    await rm(join(root, 'compare', LOCK_FILE));
    await writeFile(join(root, 'compare', 'clap', LOCK_FILE), lockRecord(sleeper.pid!));
    await busy(acquireDirLock(join(root, 'compare'), { inside: [join(root, 'compare', 'clap')] }), join(root, 'compare', 'clap'), /in use by another/);
    assert.deepEqual(await readdir(join(root, 'compare')), ['clap']);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('release never removes a lock file that is no longer its own', async () => {
  const dir = await tempDir();
  const lock = await acquireDirLock(dir);
  await writeFile(join(dir, LOCK_FILE), lockRecord(process.pid, hostname(), 'dddddddddddddddd'));
  await lock.release();
  assert.match(await readFile(join(dir, LOCK_FILE), 'utf8'), /dddddddddddddddd/);
});

test('a file where the folder should be is named', async () => {
  const root = await tempDir();
  await writeFile(join(root, 'out'), 'x');
  await assert.rejects(acquireDirLock(join(root, 'out')), (e: Error) => e.message === `${join(root, 'out')}: is a file, not a folder`);
});

test('concurrent takers in one process: exactly one wins, on a free folder and on a stale lock', async () => {
  for (const stale of [false, true]) {
    const dir = await tempDir();
    if (stale) await writeFile(join(dir, LOCK_FILE), lockRecord(deadPid()));
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => acquireDirLock(dir)));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    assert.equal(won.length, 1, `stale=${stale}: ${won.length} winners`);
    for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof FolderBusyError, String(o.reason));
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireDirLock>>>).value.release();
  }
});

const LOCK_MODULE = fileURLToPath(new URL('./dirLock.js', import.meta.url));
/**
 * A child process that waits for the wall-clock time `startAt` (so every taker is up before any
 * tries), tries to take the lock, holds it for `holdMs`, and prints "won" or the error.
 */
function taker(dir: string, startAt: number, holdMs: number): Promise<string> {
  const script = `
    const { acquireDirLock } = await import(${JSON.stringify(LOCK_MODULE)});
    await new Promise((r) => setTimeout(r, Math.max(0, ${startAt} - Date.now())));
    try {
      const lock = await acquireDirLock(${JSON.stringify(dir)});
      await new Promise((r) => setTimeout(r, ${holdMs}));
      await lock.release();
      console.log('won');
    } catch (e) { console.log(e.name + ': ' + e.message); }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.on('error', reject);
    child.on('close', () => resolve(out.trim()));
  });
}

test('concurrent takers in separate processes of one stale lock: exactly one wins, the others name it', async () => {
  for (let trial = 0; trial < 2; trial++) {
    const dir = await tempDir();
    await writeFile(join(dir, LOCK_FILE), lockRecord(deadPid()));
    const startAt = Date.now() + 2500;
    const results = await Promise.all(Array.from({ length: 4 }, () => taker(dir, startAt, 1500)));
    assert.equal(results.filter((r) => r === 'won').length, 1, results.join('\n'));
    for (const r of results.filter((x) => x !== 'won')) assert.match(r, /^FolderBusyError: .*in use by another clap4clip process \(pid \d+ on this host/);
    assert.deepEqual(await readdir(dir), [], 'the winner released; no claim or temp file is left');
  }
});
