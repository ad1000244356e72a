/**
 * Every example printed by every `--help` runs as written: the lines starting with `clap4clip `
 * (joined over `\` continuations) of the top-level help and of every command's help are run in
 * order by a shell, in one temporary directory, with `clap4clip` on the PATH. The only things
 * prepared beforehand are what an example names as already there: a folder of images (`photos`)
 * and a local CLIP model folder (`tiny-clip`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { Rng } from '../engine/random.js';
import { buildTinyClip } from '../encoders/fixtures/tinyClip.js';
import { commands } from './commands/index.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
let dir = '';
let env: NodeJS.ProcessEnv = {};

/** The example command lines of a help text. */
export function examplesOf(help: string): string[] {
  const out: string[] = [];
  let current: string | null = null;
  for (const raw of help.split('\n')) {
    const line = raw.trim();
    if (current !== null) current += ' ' + line.replace(/\\$/, '').trim();
    else if (/^(\$ )?clap4clip /.test(line)) current = line.replace(/^\$ /, '').replace(/\\$/, '').trim();
    if (current !== null && !line.endsWith('\\')) {
      out.push(current);
      current = null;
    }
  }
  return out;
}

const shell = (line: string) => spawnSync('bash', ['-c', line], { cwd: dir, env, encoding: 'utf8', timeout: 240_000 });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clap4clip-examples-'));
  await mkdir(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'clap4clip'), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(join(dir, 'bin', 'clap4clip'), 0o755);
  env = { ...process.env, PATH: `${join(dir, 'bin')}:${process.env['PATH']}`, CLAP4CLIP_NO_REEXEC: '1' };
  await buildTinyClip(join(dir, 'tiny-clip'), { seed: 4 });
  const rng = new Rng(9);
  for (const [c, name] of ['red_fox', 'blue_whale', 'green_frog'].entries()) {
    await mkdir(join(dir, 'photos', name), { recursive: true });
    for (let k = 0; k < 5; k++) {
      const px = Buffer.alloc(20 * 16 * 3);
      for (let i = 0; i < px.length; i++) px[i] = (c * 60 + (i % 3) * 50 + rng.int(30)) & 255;
      await sharp(px, { raw: { width: 20, height: 16, channels: 3 } }).png().toFile(join(dir, 'photos', name, `img${k}.png`));
    }
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('every example of every --help runs as written and succeeds', () => {
  const helps = [[], ...Object.keys(commands).map((c) => [c, '--help']), ['features', 'merge', '--help']].map((args) => {
    const r = spawnSync(process.execPath, [MAIN, ...args], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `clap4clip ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  });
  const examples = helps.flatMap(examplesOf);
  assert.ok(examples.length >= 12, `${examples.length} examples: ${examples.join('\n')}`);
  for (const cmd of ['run', 'synth', 'features', 'report', 'params', 'bench']) assert.ok(examples.some((e) => e.startsWith(`clap4clip ${cmd} `)), `an example of ${cmd}`);
  for (const line of examples) {
    const r = shell(line);
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
  }
});
