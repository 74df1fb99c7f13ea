/**
 * Counts per bin for fixed, documented bins: bin i holds values in [edges[i], edges[i+1]), and the last
 * bin is open-ended ([edges[n-1], ∞)). Values below edges[0] count in the first bin.
 */
export class BinnedHistogram {
  readonly counts: Float64Array;

  /** `edges`: ascending lower edges of the bins. */
  constructor(readonly edges: readonly number[]) {
    if (edges.length === 0) throw new Error('a histogram needs at least one bin edge');
    for (let i = 1; i < edges.length; i++)
      if (!(edges[i]! > edges[i - 1]!)) throw new Error(`histogram edges must ascend: ${edges.join(', ')}`);
    this.counts = new Float64Array(edges.length);
  }

  add(value: number): void {
    // Binary search for the last edge <= value: a handful of comparisons for the bin sets used here.
    const edges = this.edges;
    let lo = 0;
    let hi = edges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (edges[mid]! <= value) lo = mid;
      else hi = mid - 1;
    }
    this.counts[lo]!++;
  }

  /**
   * The bins as plain objects, edges divided by `unit` (1e9 turns ns into seconds; dividing keeps 20e6 ns
   * exactly 0.02 where multiplying by 1e-9 would not); `hi` is null for the open last bin.
   */
  bins(unit = 1): HistogramBin[] {
    const out: HistogramBin[] = [];
    for (let i = 0; i < this.edges.length; i++) {
      const hi = this.edges[i + 1];
      out.push({
        lo: this.edges[i]! / unit,
        hi: hi === undefined ? null : hi / unit,
        count: this.counts[i]!,
      });
    }
    return out;
  }
}

export interface HistogramBin {
  lo: number;
  /** Exclusive upper edge; null for the last, open-ended bin. */
  hi: number | null;
  count: number;
}

/** Width of a packet-size bin in bytes. */
export const SIZE_BIN_BYTES = 32;
/** Sizes from this many bytes up share the last bin (jumbo frames, offloaded super-packets). */
export const SIZE_BINS_OPEN_FROM = 1536;

/** Packet-size bins: 32-byte bins from 0 to 1536, then one bin for everything larger. */
export function packetSizeEdges(): number[] {
  const edges: number[] = [];
  for (let lo = 0; lo <= SIZE_BINS_OPEN_FROM; lo += SIZE_BIN_BYTES) edges.push(lo);
  return edges;
}

/**
 * Inter-arrival bins in nanoseconds, on a 1-2-5 scale: [0, 1 µs), [1, 2 µs), [2, 5 µs), … [5, 10 s), and
 * [10 s, ∞): gaps span nine decades, from back-to-back frames to idle periods.
 */
export function gapEdgesNs(): number[] {
  const edges = [0];
  for (let decade = 1e3; decade < 1e10; decade *= 10) edges.push(decade, 2 * decade, 5 * decade);
  edges.push(1e10);
  return edges;
}
