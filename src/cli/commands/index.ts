/** The command table: name → summary and entry point. */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

export const commands: Record<string, Command> = {
  bench: {
    summary: 'measure the engine on the CLAP-shaped training step (writes JSON)',
    run: async (args) => (await import('../../../bench/main.js')).runBench(args),
  },
};
