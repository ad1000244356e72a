/**
 * The README's features-only quickstart and the example it is copied from, so tests can check the
 * two are the same program and run the README's text as a user would paste it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The line before the quickstart's code block in README.md. */
export const QUICKSTART_MARK = '<!-- quickstart: examples/featuresOnly.ts -->';

/** The ```ts block that follows QUICKSTART_MARK in README.md (its code, ending with a newline). */
export async function readmeQuickstart(root: string): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(QUICKSTART_MARK);
  if (at < 0) throw new Error(`README.md has no ${QUICKSTART_MARK}`);
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(readme.slice(at + QUICKSTART_MARK.length));
  if (block === null) throw new Error('README.md: no ```ts block after the quickstart mark');
  return block[1]!;
}

/** examples/featuresOnly.ts from its `import` on, importing the package by name as an application does. */
export async function exampleAsApplication(root: string): Promise<string> {
  const source = await readFile(join(root, 'examples', 'featuresOnly.ts'), 'utf8');
  const start = source.indexOf('\nimport ');
  if (start < 0) throw new Error('examples/featuresOnly.ts: no import line');
  return source.slice(start + 1).replace("from '../src/index.js';", "from 'clap4clip';");
}
