/**
 * `clap4clip forward --checkpoint FILE --inputs FILE --mode train|finetune|test --out FILE`:
 * evaluates a CLAP head saved in the reference's names on given inputs and noise (dropout off)
 * and writes logits, losses and gradients, for checking parity with the reference PyTorch code.
 * The formats are documented in `src/interchange/forward.ts` and `referenceCheckpoint.ts`.
 */
import { FORWARD_MODES, forwardFiles, type ForwardMode } from '../../interchange/forward.js';
import { parseOrHelp, renderHelp, UsageError, type CommandSpec } from '../args.js';

export interface ForwardIO {
  stdout: { write(s: string): unknown };
}

export const FORWARD_SPEC: CommandSpec = {
  name: 'forward',
  summary: "Evaluate a CLAP head saved in the reference's parameter names on given inputs and noise (dropout off), and write logits, losses and gradients: a parity check with the reference PyTorch code.",
  usage: ['forward --checkpoint FILE --inputs FILE --mode MODE --out FILE'],
  options: [
    { name: 'checkpoint', type: 'string', arg: 'FILE', help: "CLAP head in the reference's names (safetensors: vga.layers.0.*, mu_adapters.<i>.fc.0.*, sigma_adapters.<i>.fc.0.*; metadata task_sizes, nhead, logit_scale)" },
    { name: 'inputs', type: 'string', arg: 'FILE', help: 'safetensors with features F32 [B, D], text F32 [C, P, D], labels I32 [B], eps F32 [T, C, D] (task i uses columns s_i..e_i), taskSizes I32 [tasks] (last = current)' },
    { name: 'mode', type: 'string', arg: 'MODE', help: 'train: CE + KL and LASP of the current task, gradients for the VGA and the newest pair; finetune: CE + KL and LASP of all tasks, gradients for every pair (VGA frozen); test: logits only' },
    { name: 'out', type: 'string', arg: 'FILE', help: 'safetensors with logits [T, B, C], loss.ce, loss.kl, loss.lasp, loss.total and grad.<reference name> for every tensor trainable in the mode' },
  ],
};

export function forwardHelp(columns = 80): string {
  return renderHelp(FORWARD_SPEC, columns);
}

const VALUE_FLAGS = ['--checkpoint', '--inputs', '--mode', '--out'] as const;

async function run(args: string[], io: ForwardIO = { stdout: process.stdout }): Promise<number> {
  const p = parseOrHelp(FORWARD_SPEC, args);
  if (p.help) {
    io.stdout.write(forwardHelp() + '\n');
    return 0;
  }
  const values = new Map(Object.entries(p.values).map(([k, v]) => [`--${k}`, String(v)]));
  const missing = VALUE_FLAGS.filter((f) => !values.has(f));
  if (missing.length > 0) throw new UsageError(`forward: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} required; see clap4clip forward --help`);
  const mode = values.get('--mode')!;
  if (!(FORWARD_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`forward: --mode must be one of [${FORWARD_MODES.join(', ')}], got ${JSON.stringify(mode)}`);
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
