/** The command table: name → summary and entry point. */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  run: {
    summary: 'train and evaluate a method class-incrementally (no arguments: the synthetic benchmark comparison)',
    run: async (args) => (await import('./run.js')).runCommand(args),
  },
  synth: {
    summary: 'write the synthetic CLIP-like features dataset to a directory',
    run: async (args) => (await import('./synth.js')).synthCommand(args),
  },
  bench: {
    summary: 'measure the engine on the CLAP-shaped training step (writes JSON)',
    run: async (args) => (await import('../../../bench/main.js')).runBench(args),
  },
};
