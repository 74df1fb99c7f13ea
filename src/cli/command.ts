import { parseArgs } from 'node:util';

/** A CLI mistake (bad flag, missing argument): printed with the command's usage, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

export interface Command<Options extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  summary: string;
  /** Full --help text, starting with the usage line. */
  help: string;
  options: Options;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

/** Parses argv for a command with node:util's parseArgs; unknown flags are usage errors. */
export function parseCommandArgs(
  command: Command,
  argv: string[],
): { values: Record<string, unknown>; positionals: string[] } | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: command.options,
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A non-negative integer flag value, or a usage error naming the flag. */
export function integerOption(values: Record<string, unknown>, flag: string): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`--${flag} needs a non-negative integer, got '${raw}'`);
  return n;
}

/** A positive number flag value (durations, rates), or a usage error naming the flag. */
export function numberOption(values: Record<string, unknown>, flag: string): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} needs a positive number, got '${raw}'`);
  return n;
}
