/**
 * How many packets had each exact size: the number of distinct sizes and the most common ones, which is
 * what betrays a protocol whose packets keep one size (VoIP codecs, padding to a fixed length). Sizes up to
 * 65,535 bytes plus a link header are counted in one array (512 KB, no allocation per packet); the rare
 * larger ones (offloaded super-packets) in a map.
 */

const ARRAY_SIZES = 65_536 + 256;

export interface SizeCount {
  size: number;
  packets: number;
  /** Fraction of all packets. */
  share: number;
}

export class SizeCounts {
  private readonly counts = new Float64Array(ARRAY_SIZES);
  private readonly large = new Map<number, number>();
  private distinctSizes = 0;
  private total = 0;

  add(size: number): void {
    this.total++;
    if (size < ARRAY_SIZES) {
      if (this.counts[size]!++ === 0) this.distinctSizes++;
      return;
    }
    const n = this.large.get(size) ?? 0;
    if (n === 0) this.distinctSizes++;
    this.large.set(size, n + 1);
  }

  get distinct(): number {
    return this.distinctSizes;
  }

  /** The `n` most common sizes, most packets first (ties: the smaller size first). */
  top(n: number): SizeCount[] {
    const all: SizeCount[] = [];
    for (let size = 0; size < ARRAY_SIZES; size++) {
      const packets = this.counts[size]!;
      if (packets > 0) all.push({ size, packets, share: packets / this.total });
    }
    for (const [size, packets] of this.large) all.push({ size, packets, share: packets / this.total });
    all.sort((a, b) => b.packets - a.packets || a.size - b.size);
    return all.slice(0, n);
  }
}
