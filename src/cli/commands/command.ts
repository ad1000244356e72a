/**
 * The shape of one `clap4clip` subcommand. Its own module so a command may declare itself as a
 * `Command` without importing the command table (which lazily imports every command).
 */
export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}
