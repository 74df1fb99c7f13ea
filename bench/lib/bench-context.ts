/**
 * What every benchmark module shares: its shape, the command-line options, and running one module on
 * its own (`npx tsx bench/decode.ts --json`) the same way bench/run.ts runs them all.
 */
import { pathToFileURL } from 'node:url';
import { Reporter } from './report.js';

export interface BenchOptions {
  json: boolean;
  /** Short runs for smoke tests: the figures are rough. */
  quick: boolean;
  /** Run only the benchmarks whose name contains this. */
  only: string | null;
  /** Leave out the benchmarks whose name contains this. */
  skip: string | null;
}

export interface BenchContext {
  quick: boolean;
  reporter: Reporter;
}

export interface Bench {
  name: string;
  /** One line for --help. */
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

export const USAGE = `usage: bench/run.ts [--json] [--quick] [--only SUBSTRING] [--skip SUBSTRING]
  --json        one JSON line per figure on stdout: {"name","unit","value","baseline","baselineValue","ratio"}
  --quick       short runs (smoke test; the figures are rough)
  --only S      run only the benchmarks whose name contains S
  --skip S      leave out the benchmarks whose name contains S`;

/** Parses the options; throws with a message naming the bad argument. */
export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const options: BenchOptions = { json: false, quick: false, only: null, skip: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') options.json = true;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--only') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--'))
        throw new Error('--only needs a substring of a benchmark name');
      options.only = value;
    } else if (arg.startsWith('--only=')) options.only = arg.slice('--only='.length);
    else if (arg === '--skip') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--'))
        throw new Error('--skip needs a substring of a benchmark name');
      options.skip = value;
    } else if (arg.startsWith('--skip=')) options.skip = arg.slice('--skip='.length);
    else if (arg === '--help' || arg === '-h') return 'help';
    else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  return options;
}

/** Runs the benchmarks the options select, in order; returns the process exit code. */
export async function runBenches(benches: Bench[], argv: string[]): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseBenchArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(
      `${USAGE}\nbenchmarks:\n${benches.map((b) => `  ${b.name.padEnd(16)}${b.description}`).join('\n')}\n`,
    );
    return 0;
  }
  const { only, skip } = options;
  const selected = benches.filter(
    (b) => (only === null || b.name.includes(only)) && (skip === null || !b.name.includes(skip)),
  );
  if (selected.length === 0) {
    process.stderr.write(
      `no benchmark ${skip === null ? `name contains ${JSON.stringify(only)}` : `selected by ${JSON.stringify({ only, skip })}`}: ${benches.map((b) => b.name).join(', ')}\n`,
    );
    return 2;
  }
  const reporter = new Reporter(options.json);
  for (const bench of selected) {
    reporter.note(`${bench.name}: ${bench.description}${options.quick ? ' (quick)' : ''}`);
    await bench.run({ quick: options.quick, reporter });
  }
  reporter.finish();
  return 0;
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(script).href === moduleUrl;
}

/** For a benchmark module's `if (isMain(import.meta.url))` block. */
export function runAlone(...benches: Bench[]): void {
  runBenches(benches, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
