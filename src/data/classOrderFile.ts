/**
 * Class-order files: the order in which dataset labels become incremental labels, as a JSON array
 * (`[87, 0, 52, ...]`, or `{"order": [...]}`) or as integers separated by commas, spaces or new
 * lines (`#` starts a comment). Whether the list is a permutation of the dataset's labels is
 * checked against the dataset later (scenario.ts); here, that it is a list of distinct labels.
 */
import { DataError } from '../util/errors.js';
import { inputFileSizeSync, readInputFileSync } from '../util/inputFile.js';

/** Largest file read as a class order: even 100,000 labels fit in far less. */
const MAX_BYTES = 4 * 2 ** 20;

/** Parses a class order from a file's text; errors name `file`. */
export function parseClassOrder(textContent: string, file: string): number[] {
  const trimmed = textContent.trim();
  if (trimmed === '') throw new DataError(file, 'class-order file is empty');
  let values: unknown[];
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new DataError(file, `class-order file is not valid JSON (${(err as Error).message})`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { order?: unknown }).order;
    if (!Array.isArray(list)) throw new DataError(file, 'class-order JSON must be an array of labels or {"order": [...]}');
    values = list;
  } else {
    const tokens = trimmed.split('\n').map((l) => l.replace(/#.*$/, '')).join(' ').split(/[\s,]+/).filter((t) => t !== '');
    values = tokens.map((t) => (/^-?\d+$/.test(t) ? Number(t) : t));
  }
  if (values.length === 0) throw new DataError(file, 'class-order file lists no labels');
  const seen = new Set<number>();
  values.forEach((v, k) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new DataError(file, `entry ${k} is ${JSON.stringify(v)}, not a non-negative integer label`);
    }
    if (seen.has(v)) throw new DataError(file, `label ${v} is listed twice (entry ${k}); a class order is a permutation`);
    seen.add(v);
  });
  return values as number[];
}

/** Reads and parses a class-order file (size-checked before reading). */
export function readClassOrderFile(file: string): number[] {
  const size = inputFileSizeSync(file, 'class-order file');
  if (size > MAX_BYTES) throw new DataError(file, `class-order file is ${size} bytes, more than a class order needs (limit ${MAX_BYTES})`);
  const bytes = readInputFileSync(file, 'class-order file');
  const textContent = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (textContent.includes('\u0000')) throw new DataError(file, 'class-order file is binary, not text');
  return parseClassOrder(textContent, file);
}
