/**
 * The `benchmark` package behind one small function: run named loops in one Suite, get back each loop's
 * operations per second. Loops run one after the other in the same process, so a figure and its baseline
 * share the machine state of the moment.
 */
import { createRequire } from 'node:module';

/** The part of benchmark.js's API used here (the package ships no types). */
interface BenchmarkStats {
  rme: number;
  sample: number[];
}
interface BenchmarkRun {
  name: string;
  hz: number;
  count: number;
  stats: BenchmarkStats;
  error?: unknown;
}
interface BenchmarkSuite {
  add(name: string, fn: () => void, options?: BenchmarkOptions): BenchmarkSuite;
  run(options: { async: boolean }): BenchmarkSuite;
  forEach(callback: (bench: BenchmarkRun) => void): void;
}
interface BenchmarkOptions {
  /** Seconds to keep sampling, at most (benchmark.js default 5). */
  maxTime?: number;
  /** Samples taken at least (default 5). */
  minSamples?: number;
}
interface BenchmarkModule {
  Suite: new () => BenchmarkSuite;
}

const require = createRequire(import.meta.url);
const Benchmark = require('benchmark') as BenchmarkModule;

export interface TimedLoop {
  name: string;
  /** One operation; keep it free of setup work, it is timed as a whole. */
  fn: () => void;
}

export interface LoopResult {
  name: string;
  /** Operations per second. */
  hz: number;
  /** Relative margin of error, in percent. */
  rme: number;
  samples: number;
}

/** Timing budget of each loop: short runs are for smoke tests, their figures are rough. */
export function loopOptions(quick: boolean): BenchmarkOptions {
  return quick ? { maxTime: 0.25, minSamples: 2 } : { maxTime: 4, minSamples: 10 };
}

/**
 * Times each loop with benchmark.js and returns the results in the order given. Throws when a loop threw:
 * a figure from a loop that failed would be a lie.
 */
export function timeLoops(loops: TimedLoop[], quick: boolean): LoopResult[] {
  const suite = new Benchmark.Suite();
  // A bound function has no decompilable source, so benchmark.js calls it rather than re-creating it
  // from text (which would lose the closure it reads its frames from).
  for (const loop of loops) suite.add(loop.name, loop.fn.bind(undefined), loopOptions(quick));
  suite.run({ async: false });
  const results: LoopResult[] = [];
  suite.forEach((bench) => {
    if (bench.error) throw new Error(`benchmark loop "${bench.name}" failed: ${String(bench.error)}`);
    results.push({
      name: bench.name,
      hz: bench.hz,
      rme: bench.stats.rme,
      samples: bench.stats.sample.length,
    });
  });
  return results;
}
