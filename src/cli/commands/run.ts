/**
 * `clap4clip run`: train and evaluate one method, or compare several on the same data and print a
 * table (--methods a,b,c; without --method or --methods: COMPARED_METHODS).
 *
 * Flags are the rows of `RUN_CONFIG_FIELDS` in kebab-case (`--finetune-epochs 2` sets
 * `finetuneEpochs`), with their help and defaults; a JSON file given with --config supplies a
 * base, flags override it. Without any data option the data is the `benchmark` synthetic world
 * (QUICK_BENCHMARK, whose values --help shows as the defaults); --full uses the CIFAR-100-sized one.
 */
import { methods } from '../../methods/registry.js';
import { DEFAULT_RUN_CONFIG, SYNTHETIC_PRESETS } from '../../run/config.js';
import {
  COMPARED_METHODS, loadRunData, newInvocation, planRuns, prepareInvocation, QUICK_BENCHMARK, resumedInvocation, runInvocation, startFirstRuns,
} from '../../run/invocation/index.js';
import type { StepRecord } from '../../run/loopResult.js';
import { exitCodeFor, listenForStopSignals, StopRequest } from '../../run/signals.js';
import {
  JSON_OPTION, outputColumns, parseOrHelp, QUIET_OPTION, renderHelp, stringValue, UsageError, type CommandSpec, type ParsedCommandLine,
} from '../args.js';
import { configValues, FIELD_OPTIONS, readConfigFile } from '../runFields.js';
import { inUserTerms } from '../userTerms.js';
import { PROCESS_IO, type CommandIO } from './io.js';
import { benchmarkOptionsNote, describeData, printingHooks, runJson, shellWord, type OutputMode } from './runPrint.js';

export { COMPARED_METHODS, loadRunData, QUICK_BENCHMARK, type CommandIO };
export { comparisonTable } from './runPrint.js';

const bench = SYNTHETIC_PRESETS.benchmark;
const full = SYNTHETIC_PRESETS.default;

export const RUN_SPEC: CommandSpec = {
  name: 'run',
  summary: `Train and evaluate a method one task at a time; without --method, compare the methods of --methods (default ${COMPARED_METHODS.join(', ')}) on the same data.`,
  usage: ['run [options]', 'run --resume DIR [options]'],
  description: [
    `Without --data the data is the synthetic "benchmark" world (${bench.numClasses} classes in tasks of ${DEFAULT_RUN_CONFIG.increment}, ${bench.trainPerClass} training and ${bench.testPerClass} test images per class, D = ${bench.dim}, a memory of ${QUICK_BENCHMARK.memorySize} exemplars): a few minutes on 2 cores. --full runs the CIFAR-100-sized world (${full.trainPerClass}/${full.testPerClass} images per class, D = ${full.dim}, memory ${DEFAULT_RUN_CONFIG.memorySize}). Results on synthetic features are labelled synthetic.`,
    'A comparison runs every method on the same data, protocol and seeds, one run directory per method. Its --method-options is a JSON object keyed by method name, e.g. --methods clap,ranpac --method-options \'{"clap":{"laspWeight":10},"ranpac":{"M":2000}}\' (methods without an entry get their defaults; a flat object goes to clap alone). --resume DIR reruns the recorded list; a different --methods list is refused.',
    'A checkpoint is written after every task. Ctrl-C (SIGINT) or SIGTERM stops at the next safe point and keeps the last complete checkpoint; --resume DIR continues with the same results as an uninterrupted run. The run ends by writing report.html into its directory.',
  ],
  options: [
    { name: 'config', type: 'string', arg: 'FILE', help: 'a JSON object of run settings (the camel-case names of these options); options given override it' },
    { name: 'full', type: 'boolean', help: 'the full CIFAR-100-sized synthetic protocol' },
    { name: 'resume', type: 'string', arg: 'DIR', help: "continue the run(s) in DIR from the last complete task; options given must match the run's settings" },
    { name: 'force', type: 'boolean', help: 'replace a run with different settings in --out DIR' },
    { name: 'methods', type: 'string', arg: 'A,B,...', help: `compare these methods (names from the Methods list, in the order they run; default ${COMPARED_METHODS.join(',')})` },
    ...FIELD_OPTIONS,
    JSON_OPTION,
    QUIET_OPTION,
  ],
  sections: [{ title: 'Methods', rows: Object.entries(methods).map(([n, m]) => [n, m.description] as const) }],
  examples: [
    'run --synthetic-preset tiny --increment 5 --out runs/tiny-compare',
    `run --synthetic-preset tiny --increment 5 --method clap --method-options '{"laspWeight":15}' --out runs/tiny-clap`,
    'run --resume runs/tiny-clap',
    `run --synthetic-preset tiny --increment 5 --methods simplecil,ranpac --method-options '{"ranpac":{"M":64}}' --out runs/tiny-closed-form`,
    'run --synthetic-preset tiny --increment 5 --method clip-adapter --runs 2 --json --out runs/tiny-seeds',
  ],
};

export function runHelp(columns = 80): string {
  return renderHelp(RUN_SPEC, columns);
}

interface ParsedArgs {
  help: boolean;
  full: boolean;
  force: boolean;
  json: boolean;
  quiet: boolean;
  /** --resume DIR. */
  resume: string | null;
  /** --methods a,b,c (null: not given). */
  methods: string[] | null;
  configFile: string | null;
  /** Config values from flags, by key. */
  values: Record<string, unknown>;
  /** The flags' values as typed, by key. */
  typed: Record<string, unknown>;
}

/** The run's arguments, config keys converted by their field (`fromFlag`); UsageError on a bad command line. */
export function parseRunArgs(args: readonly string[]): ParsedArgs {
  const p: ParsedCommandLine = parseOrHelp(RUN_SPEC, args);
  const { values, typed } = configValues(p);
  return {
    help: p.help, full: p.values['full'] === true, force: p.values['force'] === true, json: p.values['json'] === true, quiet: p.values['quiet'] === true,
    resume: stringValue(p, 'resume') ?? null, methods: stringValue(p, 'methods')?.split(',').map((m) => m.trim()) ?? null, configFile: stringValue(p, 'config') ?? null, values, typed,
  };
}

export interface RunCommandOptions {
  /** The run's stop request (default: a new one, set by SIGINT/SIGTERM while the runs are going). */
  stop?: StopRequest;
  /** Called after every task of every run, once its checkpoint is committed. */
  onStep?: (dir: string, step: StepRecord) => void | Promise<void>;
}

/**
 * Entry of `clap4clip run`. Returns the exit code (0; 128 + signal number when stopped by a
 * signal, after printing how to resume); throws Clap4ClipError on bad input, UsageError on a bad
 * command line.
 */
export async function runCommand(args: string[], io: CommandIO = PROCESS_IO, options: RunCommandOptions = {}): Promise<number> {
  const parsed = parseRunArgs(args);
  const columns = outputColumns(io.stdout as { isTTY?: boolean; columns?: number });
  if (parsed.help) {
    io.stdout.write(runHelp(columns) + '\n');
    return 0;
  }
  if (parsed.json && parsed.quiet) throw new UsageError('run: --json and --quiet contradict each other (--json prints the result, --quiet nothing)');
  const mode: OutputMode = parsed.json ? 'json' : parsed.quiet ? 'quiet' : 'text';
  const fromFile = parsed.configFile === null ? {} : await readConfigFile(parsed.configFile);
  const given = { ...fromFile, ...parsed.values };
  const sources = {
    command: 'run', flags: parsed.typed, configFile: parsed.configFile, fileKeys: new Set(Object.keys(fromFile)),
    implied: given['fewShot'] === true && 'fewShot' in parsed.typed
      ? { baseClasses: '--few-shot (a first task of 60 classes)', increment: '--few-shot (tasks of 5 classes)', shots: '--few-shot (5 images per class)' }
      : undefined,
  };
  try {
    const inv = parsed.resume !== null ? await resumedInvocation(parsed.resume, given, parsed) : newInvocation(given, parsed.full, parsed.force, parsed.methods);
    const plan = planRuns(inv);
    const first = plan[0]!.runs[0]!.config;
    const ds = await loadRunData(first);
    // Every method is started for its first run before any directory is touched, so bad options fail early.
    const firstRuns = await startFirstRuns(plan, ds);
    const tasks = firstRuns[0]!.scenario.tasks.length;
    if (mode === 'text') io.stdout.write(describeData(first, ds, tasks, columns) + '\n' + benchmarkOptionsNote(inv.benchmarkOptions, columns));
    const lock = await prepareInvocation(inv, plan);

    const stop = options.stop ?? new StopRequest();
    const stopListening = options.stop ? () => undefined : listenForStopSignals(stop, io.stderr);
    const hooks = printingHooks(io, mode, tasks, columns, options.onStep);
    try {
      const outcome = await runInvocation(inv, plan, ds, firstRuns, { stop, lock, hooks });
      hooks.board?.clear();
      if (outcome.status === 'interrupted') {
        const of = outcome.dir !== inv.root ? ` of ${outcome.dir}` : '';
        const resume = `clap4clip run --resume ${shellWord(inv.root)}`;
        io.stderr.write(`clap4clip: ${outcome.interruption.message}${of}; resume with \`${resume}\`\n`);
        if (mode === 'json') io.stdout.write(JSON.stringify({ status: 'interrupted', directory: inv.root, reason: outcome.interruption.reason, resume }) + '\n');
        return exitCodeFor(outcome.interruption.reason);
      }
      const { report } = outcome;
      if (!('file' in report)) io.stderr.write(`clap4clip: warning: the report was not written (${report.error.message}); the results are complete (\`clap4clip report ${shellWord(inv.root)}\` can write it later)\n`);
      if (mode === 'json') io.stdout.write(JSON.stringify(runJson(inv.root, outcome.results, outcome.summaries, 'file' in report ? report.file : null)) + '\n');
      else if (mode === 'text' && 'file' in report) io.stdout.write(`report -> ${report.file}\n`);
    } finally {
      stopListening();
    }
  } catch (err) {
    throw inUserTerms(err, sources);
  }
  return 0;
}
