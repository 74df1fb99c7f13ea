/**
 * A bounded uniform sample of a stream of numbers, for percentiles over runs of any length.
 *
 * The first `capacity` values are all kept, so up to there percentiles are exact; after that each new value
 * replaces a random kept one with probability capacity/count (Vitter's Algorithm R), so the kept values stay
 * a uniform sample of everything seen and the percentiles become estimates from it. Count, mean and max are
 * always exact over every value.
 */
import { type Random, seededRandom } from './random.js';

export interface SampleSummary {
  count: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

export const DEFAULT_RESERVOIR_CAPACITY = 65_536;

export class SampleReservoir {
  readonly capacity: number;
  private readonly samples: Float64Array;
  private readonly random: Random;
  private n = 0;
  private sum = 0;
  private maximum = 0;

  /** `random` picks replacements once the reservoir is full (seeded by default, so stats repeat). */
  constructor(capacity = DEFAULT_RESERVOIR_CAPACITY, random: Random = seededRandom(0x7fc0)) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`reservoir capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.samples = new Float64Array(capacity);
    this.random = random;
  }

  /** Values seen so far. */
  get count(): number {
    return this.n;
  }

  /** True while every value seen is kept (percentiles are exact). */
  get exact(): boolean {
    return this.n <= this.capacity;
  }

  add(value: number): void {
    const n = ++this.n;
    this.sum += value;
    if (value > this.maximum) this.maximum = value;
    if (n <= this.capacity) this.samples[n - 1] = value;
    else {
      const j = Math.floor(this.random() * n);
      if (j < this.capacity) this.samples[j] = value;
    }
  }

  /**
   * Count, mean and max of every value, and the nearest-rank percentiles of the kept ones (the p-th
   * percentile is the ⌈p·k/100⌉-th smallest of k). All zero before the first value. Sorts a copy (cold path).
   */
  summary(): SampleSummary {
    if (this.n === 0) return { count: 0, mean: 0, p50: 0, p99: 0, max: 0 };
    const kept = this.samples.slice(0, Math.min(this.n, this.capacity)).sort();
    return {
      count: this.n,
      mean: this.sum / this.n,
      p50: nearestRank(kept, 50),
      p99: nearestRank(kept, 99),
      max: this.maximum,
    };
  }
}

/** The nearest-rank p-th percentile of ascending `sorted` (non-empty). */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}
