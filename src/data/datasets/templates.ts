/**
 * Prompt templates: `{}` stands for the class name (underscores already turned into spaces).
 * The two built-in lists are CLIP's own (openai/CLIP `data/prompts.md` for CIFAR-100, the ImageNet
 * list of the zero-shot notebook), which the reference code ensembles for CIFAR-100 and ImageNet-R.
 * Order is CLIP's; the reference deduplicates through a set, so its order is arbitrary and nothing
 * downstream depends on it (text features are averaged over templates).
 */
import { DataError } from '../../util/errors.js';
import { readInputText } from '../../util/inputFile.js';

/** CLIP's 18 CIFAR-100 templates. */
export const CIFAR100_TEMPLATES: readonly string[] = Object.freeze([
  'a photo of a {}.',
  'a blurry photo of a {}.',
  'a black and white photo of a {}.',
  'a low contrast photo of a {}.',
  'a high contrast photo of a {}.',
  'a bad photo of a {}.',
  'a good photo of a {}.',
  'a photo of a small {}.',
  'a photo of a big {}.',
  'a photo of the {}.',
  'a blurry photo of the {}.',
  'a black and white photo of the {}.',
  'a low contrast photo of the {}.',
  'a high contrast photo of the {}.',
  'a bad photo of the {}.',
  'a good photo of the {}.',
  'a photo of the small {}.',
  'a photo of the big {}.',
]);

/** CLIP's 80 ImageNet templates (used by the reference for ImageNet-R; our default for other image folders). */
export const IMAGENET_TEMPLATES: readonly string[] = Object.freeze([
  'a bad photo of a {}.',
  'a photo of many {}.',
  'a sculpture of a {}.',
  'a photo of the hard to see {}.',
  'a low resolution photo of the {}.',
  'a rendering of a {}.',
  'graffiti of a {}.',
  'a bad photo of the {}.',
  'a cropped photo of the {}.',
  'a tattoo of a {}.',
  'the embroidered {}.',
  'a photo of a hard to see {}.',
  'a bright photo of a {}.',
  'a photo of a clean {}.',
  'a photo of a dirty {}.',
  'a dark photo of the {}.',
  'a drawing of a {}.',
  'a photo of my {}.',
  'the plastic {}.',
  'a photo of the cool {}.',
  'a close-up photo of a {}.',
  'a black and white photo of the {}.',
  'a painting of the {}.',
  'a painting of a {}.',
  'a pixelated photo of the {}.',
  'a sculpture of the {}.',
  'a bright photo of the {}.',
  'a cropped photo of a {}.',
  'a plastic {}.',
  'a photo of the dirty {}.',
  'a jpeg corrupted photo of a {}.',
  'a blurry photo of the {}.',
  'a photo of the {}.',
  'a good photo of the {}.',
  'a rendering of the {}.',
  'a {} in a video game.',
  'a photo of one {}.',
  'a doodle of a {}.',
  'a close-up photo of the {}.',
  'a photo of a {}.',
  'the origami {}.',
  'the {} in a video game.',
  'a sketch of a {}.',
  'a doodle of the {}.',
  'a origami {}.',
  'a low resolution photo of a {}.',
  'the toy {}.',
  'a rendition of the {}.',
  'a photo of the clean {}.',
  'a photo of a large {}.',
  'a rendition of a {}.',
  'a photo of a nice {}.',
  'a photo of a weird {}.',
  'a blurry photo of a {}.',
  'a cartoon {}.',
  'art of a {}.',
  'a sketch of the {}.',
  'a embroidered {}.',
  'a pixelated photo of a {}.',
  'itap of the {}.',
  'a jpeg corrupted photo of the {}.',
  'a good photo of a {}.',
  'a plushie {}.',
  'a photo of the nice {}.',
  'a photo of the small {}.',
  'a photo of the weird {}.',
  'the cartoon {}.',
  'art of the {}.',
  'a drawing of the {}.',
  'a photo of the large {}.',
  'a black and white photo of a {}.',
  'the plushie {}.',
  'a dark photo of a {}.',
  'itap of a {}.',
  'graffiti of the {}.',
  'a toy {}.',
  'itap of my {}.',
  'a photo of a cool {}.',
  'a photo of a small {}.',
  'a tattoo of the {}.',
]);

/**
 * Check a template list: non-empty, every entry a non-empty string containing `{}`, no duplicates
 * (a duplicate would silently double its weight in the template average). Errors name `source`.
 */
export function validateTemplates(templates: readonly unknown[], source: string): string[] {
  if (templates.length === 0) throw new DataError(source, 'no templates; need at least one containing "{}"');
  const seen = new Map<string, number>();
  templates.forEach((t, i) => {
    if (typeof t !== 'string' || t.trim() === '') throw new DataError(source, `template ${i + 1} must be a non-empty string, got ${JSON.stringify(t)}`);
    if (!t.includes('{}')) throw new DataError(source, `template ${i + 1} ${JSON.stringify(t)} has no "{}" placeholder for the class name`);
    const j = seen.get(t);
    if (j !== undefined) throw new DataError(source, `template ${i + 1} ${JSON.stringify(t)} repeats template ${j + 1}`);
    seen.set(t, i);
  });
  return templates.slice() as string[];
}

/**
 * Custom templates from a file: a JSON array of strings, a JSON object `{ "templates": [...] }`, or
 * plain text with one template per line (blank lines and lines starting with `#` are ignored).
 */
export async function loadTemplatesFile(file: string): Promise<string[]> {
  const text = await readInputText(file, 'templates file');
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    let raw: unknown;
    try {
      raw = JSON.parse(trimmed);
    } catch (err) {
      throw new DataError(file, `looks like JSON but does not parse (${(err as Error).message})`, { cause: err });
    }
    const list = Array.isArray(raw) ? raw : (raw as { templates?: unknown }).templates;
    if (!Array.isArray(list)) throw new DataError(file, 'JSON templates must be an array of strings or an object with a "templates" array');
    return validateTemplates(list, file);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return validateTemplates(lines, file);
}

/** The prompt for one class: every `{}` replaced by the class name with `_` turned into spaces (as the reference does). */
export function fillTemplate(template: string, className: string): string {
  return template.replaceAll('{}', className.replaceAll('_', ' '));
}
