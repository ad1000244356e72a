/**
 * `clap4clip forward --checkpoint FILE --inputs FILE --mode train|finetune|test --out FILE`:
 * evaluates a CLAP head saved in the reference's names on given inputs and noise (dropout off)
 * and writes logits, losses and gradients, for checking parity with the reference PyTorch code.
 * The formats are documented in `src/interchange/forward.ts` and `referenceCheckpoint.ts`.
 */
import { FORWARD_MODES, forwardFiles, type ForwardMode } from '../../interchange/forward.js';
import { Clap4ClipError } from '../../util/errors.js';

export interface ForwardIO {
  stdout: { write(s: string): unknown };
}

export function forwardHelp(): string {
  return [
    'Usage: clap4clip forward --checkpoint FILE --inputs FILE --mode train|finetune|test --out FILE',
    '',
    '  --checkpoint FILE  CLAP head in the reference\'s names (safetensors: vga.layers.0.*, mu_adapters.<i>.fc.0.*,',
    '                     sigma_adapters.<i>.fc.0.*; metadata task_sizes, nhead, logit_scale)',
    '  --inputs FILE      safetensors with features F32 [B, D], text F32 [C, P, D], labels I32 [B],',
    '                     eps F32 [T, C, D] (task i uses columns s_i..e_i), taskSizes I32 [tasks] (last = current)',
    '  --mode MODE        train: CE + KL and LASP of the current task, gradients for the VGA and the newest pair;',
    '                     finetune: CE + KL and LASP of all tasks, gradients for every pair (VGA frozen);',
    '                     test: logits only. Dropout is off in every mode.',
    '  --out FILE         safetensors with logits [T, B, C], loss.ce, loss.kl, loss.lasp, loss.total and',
    '                     grad.<reference name> for every tensor trainable in the mode',
  ].join('\n');
}

const VALUE_FLAGS = ['--checkpoint', '--inputs', '--mode', '--out'] as const;

async function run(args: string[], io: ForwardIO = { stdout: process.stdout }): Promise<number> {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    if (flag === '--help' || flag === '-h') {
      io.stdout.write(forwardHelp() + '\n');
      return 0;
    }
    if (!(VALUE_FLAGS as readonly string[]).includes(flag)) {
      throw new Clap4ClipError(`forward: unknown ${arg.startsWith('-') ? 'option' : 'argument'} ${JSON.stringify(arg)}; see clap4clip forward --help`);
    }
    const v = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (v === undefined || v === '') throw new Clap4ClipError(`forward: option ${flag} needs a value`);
    values.set(flag, v);
  }
  const missing = VALUE_FLAGS.filter((f) => !values.has(f));
  if (missing.length > 0) throw new Clap4ClipError(`forward: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required; see clap4clip forward --help`);
  const mode = values.get('--mode')!;
  if (!(FORWARD_MODES as readonly string[]).includes(mode)) {
    throw new Clap4ClipError(`forward: --mode must be one of [${FORWARD_MODES.join(', ')}], got ${JSON.stringify(mode)}`);
  }
  const files = { checkpoint: values.get('--checkpoint')!, inputs: values.get('--inputs')!, mode: mode as ForwardMode, out: values.get('--out')! };
  const out = await forwardFiles(files);
  const [t, b, c] = out['logits']!.shape as [number, number, number];
  const losses = ['ce', 'kl', 'lasp', 'total'].filter((k) => out[`loss.${k}`]).map((k) => `${k} ${out[`loss.${k}`]!.data[0]}`);
  const grads = Object.keys(out).filter((k) => k.startsWith('grad.')).length;
  io.stdout.write(`forward (${mode}): logits [${t}, ${b}, ${c}]${losses.length ? `, loss ${losses.join(', ')}` : ''}${grads ? `, ${grads} gradients` : ''} -> ${files.out}\n`);
  return 0;
}

/** The command-table entry (registered in `index.ts` by the lead). */
export const forwardCommand: { summary: string; run(args: string[], io?: ForwardIO): Promise<number> } = {
  summary: 'evaluate a CLAP head in the reference\'s names on given inputs (parity check with PyTorch)',
  run,
};
