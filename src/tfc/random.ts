/**
 * Random numbers for the TFC stages: a default drawn from the OS CSPRNG (dummy timing, jitter and padding
 * sizes must not be predictable by the observer they are meant to confuse) and a seeded generator for
 * reproducible tests and statistics.
 */
import { randomFillSync } from 'node:crypto';

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

const POOL_WORDS = 2048;
const pool = new Uint32Array(POOL_WORDS);
let poolIndex = POOL_WORDS;

/**
 * Uniform in [0, 1) with 53 bits from the OS CSPRNG. Words come from an 8 KiB pool refilled in one
 * randomFillSync, so a call costs a few array reads, not a system call.
 */
export function cryptoRandom(): number {
  if (poolIndex > POOL_WORDS - 2) {
    randomFillSync(pool);
    poolIndex = 0;
  }
  const hi = pool[poolIndex++]! >>> 5; // 27 bits
  const lo = pool[poolIndex++]! >>> 6; // 26 bits
  return (hi * 67_108_864 + lo) / 9_007_199_254_740_992;
}

/** Mulberry32: small, fast and seeded, so a run repeats exactly. Not for anything an adversary sees. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** An exponentially distributed value with the given mean (inverse transform: −mean·ln(1 − u)). */
export function exponential(random: Random, mean: number): number {
  return -mean * Math.log(1 - random());
}
