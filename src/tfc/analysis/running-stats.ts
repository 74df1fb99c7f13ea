/**
 * Count, mean, variance, minimum and maximum of a stream of numbers in constant space (Welford's update,
 * which stays accurate where a sum of squares would cancel).
 *
 * Variance is the population variance (divided by n): the statistics describe the packets observed, not
 * an estimate for a larger population.
 */
export class RunningStats {
  count = 0;
  mean = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private m2 = 0;

  add(x: number): void {
    const n = ++this.count;
    const delta = x - this.mean;
    this.mean += delta / n;
    this.m2 += delta * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  /** Population variance; 0 for fewer than two values. */
  get variance(): number {
    return this.count > 1 ? this.m2 / this.count : 0;
  }

  get stddev(): number {
    return Math.sqrt(this.variance);
  }

  /** Coefficient of variation (stddev / mean): 0 for a constant stream, 1 for a Poisson process's gaps. */
  get cv(): number {
    return this.mean === 0 ? 0 : this.stddev / this.mean;
  }

  /** Plain numbers for JSON, each divided by `unit` (e.g. 1e9 for ns to seconds); nulls when empty. */
  summary(unit = 1): StatsSummary {
    if (this.count === 0) return { count: 0, mean: null, stddev: null, min: null, max: null };
    return {
      count: this.count,
      mean: this.mean / unit,
      stddev: this.stddev / unit,
      min: this.min / unit,
      max: this.max / unit,
    };
  }
}

export interface StatsSummary {
  count: number;
  mean: number | null;
  stddev: number | null;
  min: number | null;
  max: number | null;
}
