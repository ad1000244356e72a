import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DataError } from '../../util/errors.js';
import { repoRoot } from '../../util/paths.js';
import { CIFAR100_TEMPLATES, fillTemplate, IMAGENET_TEMPLATES, loadTemplatesFile, validateTemplates } from './templates.js';

const sorted = (xs: readonly string[]) => [...xs].sort();

describe('built-in templates', () => {
  it('match the templates the reference code ensembles (order-free: the reference uses a set)', async () => {
    const ref = JSON.parse(await readFile(path.join(repoRoot(), 'tests', 'fixtures', 'reference-data', 'templates.json'), 'utf8')) as Record<string, string[]>;
    assert.equal(CIFAR100_TEMPLATES.length, 18);
    assert.equal(IMAGENET_TEMPLATES.length, 80);
    assert.deepEqual(sorted(CIFAR100_TEMPLATES), sorted(ref['cifar100']!));
    assert.deepEqual(sorted(IMAGENET_TEMPLATES), sorted(ref['imagenet-r']!));
  });

  it('are valid: unique, each with {}', () => {
    assert.deepEqual(validateTemplates(CIFAR100_TEMPLATES, 'cifar'), [...CIFAR100_TEMPLATES]);
    assert.deepEqual(validateTemplates(IMAGENET_TEMPLATES, 'imagenet'), [...IMAGENET_TEMPLATES]);
  });

  it('fill the class name with underscores turned into spaces', () => {
    assert.equal(fillTemplate('a photo of a {}.', 'aquarium_fish'), 'a photo of a aquarium fish.');
    assert.equal(fillTemplate('{} and {}', 'a_b'), 'a b and a b');
  });
});

describe('custom templates file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'clap4clip-templates-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  };

  it('reads a JSON array, a JSON object and plain text lines', async () => {
    assert.deepEqual(await loadTemplatesFile(await write('a.json', '["a {}.", "the {}"]')), ['a {}.', 'the {}']);
    assert.deepEqual(await loadTemplatesFile(await write('b.json', '{"templates": ["x {}"]}')), ['x {}']);
    assert.deepEqual(await loadTemplatesFile(await write('c.txt', '# mine\na photo of a {}.\n\n  art of {}  \n')), ['a photo of a {}.', 'art of {}']);
  });

  it('rejects templates without {}, duplicates, empty files and bad JSON, naming the file', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['d.txt', 'a photo\n', /template 1 "a photo" has no "\{\}"/],
      ['e.txt', 'a {}\na {}\n', /template 2 "a \{\}" repeats template 1/],
      ['f.txt', '\n# nothing\n', /no templates/],
      ['g.json', '[1]', /template 1 must be a non-empty string/],
      ['h.json', '{"x": 1}', /"templates" array/],
      ['i.json', '[oops', /does not parse/],
    ];
    for (const [name, text, re] of cases) {
      const file = await write(name, text);
      await assert.rejects(loadTemplatesFile(file), (err: unknown) => err instanceof DataError && err.file === file && re.test(err.message));
    }
    await assert.rejects(loadTemplatesFile(path.join(dir, 'missing.txt')), /templates file not found/);
  });
});
