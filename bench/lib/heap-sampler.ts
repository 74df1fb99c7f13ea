/**
 * Heap samples that mean something: a full collection first, so heapUsed counts live objects, not
 * garbage that has not been collected yet.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface GarbageCollector {
  collect: () => void;
  /** How the collector was reached, for the report. */
  source: string;
}

/**
 * `global.gc` when node runs with --expose-gc; otherwise the flag is turned on now and `gc` is taken
 * from a fresh context (V8 installs it in contexts created after the flag is set).
 */
export function garbageCollector(): GarbageCollector {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return { collect: () => exposed(), source: 'node --expose-gc' };
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as unknown;
  if (typeof gc !== 'function')
    throw new Error('cannot reach the garbage collector: run node with --expose-gc');
  return { collect: () => (gc as () => void)(), source: 'v8.setFlagsFromString(--expose-gc)' };
}

/**
 * heapUsed once it has settled: full collections until two readings in a row agree (at most five, then
 * the smallest). Right after busy work one collection can still count a few hundred kB that the next
 * one frees (background compilation finishing), which would read as noise or false growth.
 */
export function liveHeapBytes(gc: GarbageCollector): number {
  gc.collect();
  let least = process.memoryUsage().heapUsed;
  let previous = least;
  for (let i = 0; i < 5; i++) {
    gc.collect();
    const now = process.memoryUsage().heapUsed;
    if (now === previous) return now;
    least = Math.min(least, now);
    previous = now;
  }
  return least;
}
