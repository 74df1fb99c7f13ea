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
export function timeLoops(loops: readonly TimedLoop[], quick: boolean): LoopResult[] {
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

/**
 * Times the loops forwards then backwards (A B B A, A B C C B A) and keeps each loop's better run: a drift in
 * machine load then weighs on every loop alike instead of on whichever ran last. Quick runs time each loop
 * once (their figures are rough anyway).
 */
export function timeMirrored(loops: readonly TimedLoop[], quick: boolean): LoopResult[] {
  if (quick) return timeLoops(loops, true);
  const results = timeLoops([...loops, ...[...loops].reverse()], false);
  return loops.map((_, i) => {
    const a = results[i]!;
    const b = results[results.length - 1 - i]!;
    return a.hz >= b.hz ? a : b;
  });
}

/** Two loops timed mirrored (a, b, b, a): each side's better run. */
export function timeAbba(
  a: () => void,
  b: () => void,
  names: readonly [string, string],
  quick: boolean,
): [LoopResult, LoopResult] {
  const [x, y] = timeMirrored(
    [
      { name: names[0], fn: a },
      { name: names[1], fn: b },
    ],
    quick,
  );
  return [x!, y!];
}
