/**
 * VTAB as the paper uses it: several small datasets, each one task (5 tasks of 10 classes). On disk:
 *   root/<task>/...   one image folder per sub-dataset, in any layout `readImageFolder` reads
 *                     (train/ + test/ or val/ folders, or class folders with the seeded split);
 *   root/tasks.txt    optional: task folder names in task order, one per line (else sorted names).
 * Labels are contiguous per task in task order, so task t owns one block of labels; the blocks are
 * recorded in the manifest (`extra.tasks`), because the paper's VTAB protocol keeps this order (no
 * class shuffling across datasets). Item keys are `<task>/<path>`. A class name that occurs in two
 * tasks becomes `name (task)` so names stay unique. `--class-names FILE` renames all classes: one
 * name per line in label order, or JSON keyed by `<task>/<folder>`.
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { DataError } from '../../util/errors.js';
import { readInputText } from '../../util/inputFile.js';
import { fileItem, readImageFolder, resolveClassNames } from './imageFolder.js';
import type { DatasetOptions, ImageDataset, ImageItem } from './types.js';

/** Task folders: `tasks.txt` if present (every entry must exist), else the sorted sub-folders. */
async function taskFolders(root: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new DataError(root, `cannot list VTAB root (${(err as Error).message})`, { cause: err });
  }
  const dirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  const listFile = path.join(root, 'tasks.txt');
  let order: string[];
  try {
    order = (await readInputText(listFile, 'VTAB task list')).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    for (const t of order) {
      if (!dirs.includes(t)) throw new DataError(listFile, `task ${JSON.stringify(t)} has no folder ${path.join(root, t)}`);
    }
    if (new Set(order).size !== order.length) throw new DataError(listFile, 'a task is listed twice');
  } catch (err) {
    if (!(err instanceof DataError && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')) throw err;
    order = dirs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  if (order.length < 2) {
    throw new DataError(root, `VTAB needs one sub-folder per dataset (task), found ${order.length}: expected root/<dataset>/<class>/*.jpg (or root/<dataset>/train|test/<class>/*.jpg)`);
  }
  return order;
}

export async function readVtab(opts: DatasetOptions): Promise<ImageDataset> {
  const { root } = opts;
  if (opts.trainList !== undefined || opts.testList !== undefined) {
    throw new DataError(opts.trainList ?? opts.testList!, 'VTAB does not take split lists: give each task folder train/ and test/ sub-folders, or let the seeded split cut them');
  }
  const tasks = await taskFolders(root);
  const classNames: string[] = [], folders: string[] = [], taskOf: string[] = [];
  const train: ImageItem[] = [], test: ImageItem[] = [], notes: string[] = [];
  const blocks: Array<{ name: string; classes: [number, number]; layout: unknown }> = [];
  for (const task of tasks) {
    const ds = await readImageFolder({ root: path.join(root, task), name: task, splitSeed: opts.splitSeed, testFraction: opts.testFraction, emptyClasses: opts.emptyClasses });
    const offset = classNames.length;
    // Without a names file, a task's class names are its class folder names.
    for (const f of ds.classNames) {
      classNames.push(f);
      folders.push(`${task}/${f}`);
      taskOf.push(task);
    }
    const rebase = (it: ImageItem) => fileItem(root, `${task}/${it.key}`, it.label + offset);
    train.push(...ds.train.map(rebase));
    test.push(...ds.test.map(rebase));
    notes.push(...(ds.notes ?? []));
    blocks.push({ name: task, classes: [offset, classNames.length], layout: ds.extra?.['layout'] });
  }
  let names: string[];
  if (opts.classNamesFile !== undefined) {
    names = await resolveClassNames(folders, opts.classNamesFile, root);
  } else {
    const count = new Map<string, number>();
    for (const n of classNames) count.set(n, (count.get(n) ?? 0) + 1);
    names = classNames.map((n, c) => (count.get(n)! > 1 ? `${n} (${taskOf[c]})` : n));
  }
  return { name: 'vtab', classNames: names, train, test, extra: { layout: 'vtab: one image folder per task', tasks: blocks }, notes };
}
