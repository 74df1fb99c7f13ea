/**
 * Percentiles of a stream of non-negative integers (nanosecond gaps and delays) in bounded space: a
 * log-linear histogram in the manner of HdrHistogram. Values below 2048 are counted exactly; above, each
 * power of two is cut into 1024 buckets, so a bucket is at most 1/1024 of its values wide. A percentile is
 * reported as the mean of the values in its bucket: within 0.1% of the true one, and exact when the bucket
 * holds one distinct value (the common case of repeated gaps in virtual time).
 *
 * Space grows with the largest value seen: about 740 KB of counters and sums for values up to 2^53.
 */

const SUB_BITS = 10;
const SUB_BUCKETS = 1 << SUB_BITS;
/** Values below this are their own bucket. */
const EXACT_LIMIT = 2 * SUB_BUCKETS;

export class QuantileSketch {
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private counts = new Float64Array(EXACT_LIMIT + SUB_BUCKETS * 4);
  /** Sum of the values in each bucket. */
  private sums = new Float64Array(EXACT_LIMIT + SUB_BUCKETS * 4);

  /** Adds one value; negative values count as 0 and fractions are floored. */
  add(value: number): void {
    const v = value > 0 ? Math.floor(value) : 0;
    const index = bucketIndex(v);
    if (index >= this.counts.length) this.grow(index);
    this.counts[index]!++;
    this.sums[index]! += v;
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /**
   * The nearest-rank p-quantile (0 < p ≤ 1): the smallest value with at least p·count values at or below
   * it, to the sketch's precision (the mean of its bucket). NaN when empty.
   */
  quantile(p: number): number {
    if (!(p > 0 && p <= 1)) throw new RangeError(`quantile needs 0 < p <= 1, got ${p}`);
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(p * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const n = this.counts[i]!;
      seen += n;
      if (seen >= rank) return this.sums[i]! / n;
    }
    return this.max;
  }

  private grow(index: number): void {
    let length = this.counts.length;
    while (length <= index) length *= 2;
    const counts = new Float64Array(length);
    counts.set(this.counts);
    this.counts = counts;
    const sums = new Float64Array(length);
    sums.set(this.sums);
    this.sums = sums;
  }
}

/** Index of the bucket holding the non-negative integer v. */
export function bucketIndex(v: number): number {
  if (v < EXACT_LIMIT) return v;
  if (v < 0x1_0000_0000) {
    // Below 2^32 (gaps up to 4.3 s): integer bit operations, no floating-point logarithm.
    const exponent = 31 - Math.clz32(v);
    const mantissa = v >>> (exponent - SUB_BITS); // in [1024, 2048)
    return EXACT_LIMIT + (exponent - SUB_BITS - 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
  }
  let exponent = Math.floor(Math.log2(v));
  // log2 of a double near a power of two can land one off: correct against exact powers.
  if (2 ** exponent > v) exponent--;
  else if (2 ** (exponent + 1) <= v) exponent++;
  const mantissa = Math.floor(v / 2 ** (exponent - SUB_BITS)); // in [1024, 2048)
  return EXACT_LIMIT + (exponent - SUB_BITS - 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
}

/** Lower bound and width of bucket i. */
export function bucketBounds(i: number): { lo: number; width: number } {
  if (i < EXACT_LIMIT) return { lo: i, width: 1 };
  const octave = Math.floor((i - EXACT_LIMIT) / SUB_BUCKETS);
  const mantissa = SUB_BUCKETS + ((i - EXACT_LIMIT) % SUB_BUCKETS);
  const width = 2 ** (octave + 1);
  return { lo: mantissa * width, width };
}
