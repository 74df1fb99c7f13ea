/**
 * Bytes and packets per time bin, from the first packet on, in space bounded by the number of bins.
 *
 * With no width given the width adapts to the capture's length without a second pass: it starts at 1 ms
 * and, whenever the capture would need more than MAX_AUTO_BINS bins, grows along 1, 2, 10, 20, 100, 200 ms,
 * 1 s, 2 s, 10 s … by merging neighbouring bins, which is exact because every width divides the next.
 * A given width stays fixed; a capture that would need more than MAX_FIXED_BINS bins of it is refused.
 */

const MS = 1_000_000;
/** Upper bound on bins when the width is chosen automatically. */
export const MAX_AUTO_BINS = 500;
/** Upper bound on bins of a width the caller chose (8 MB each of counters). */
export const MAX_FIXED_BINS = 1_000_000;

export class VolumeSeries {
  /** Current bin width in nanoseconds. */
  binNs: number;
  private readonly fixed: boolean;
  private bytes = new Float64Array(64);
  private packets = new Float64Array(64);
  /** Bins in use: one past the last bin that holds a packet. */
  private used = 0;

  /** `binNs`: a fixed bin width in nanoseconds, or undefined to let the width follow the capture. */
  constructor(binNs?: number) {
    if (binNs !== undefined && !(Number.isInteger(binNs) && binNs >= 1))
      throw new Error(`volume bin width must be a positive whole number of nanoseconds, got ${binNs}`);
    this.fixed = binNs !== undefined;
    this.binNs = binNs ?? MS;
  }

  /** Counts a packet of `size` bytes at `relNs` nanoseconds after the first packet (earlier: first bin). */
  add(relNs: number, size: number): void {
    let bin = relNs > 0 ? Math.floor(relNs / this.binNs) : 0;
    if (bin >= this.used) {
      if (bin >= MAX_AUTO_BINS && !this.fixed) {
        this.widenFor(relNs);
        bin = Math.floor(relNs / this.binNs);
      }
      if (bin >= this.bytes.length) this.grow(bin);
      if (bin >= this.used) this.used = bin + 1;
    }
    this.bytes[bin]! += size;
    this.packets[bin]!++;
  }

  /** The bins as plain arrays: bin i covers [i·binNs, (i+1)·binNs) after the first packet. */
  series(): { binNs: number; bytes: number[]; packets: number[] } {
    return {
      binNs: this.binNs,
      bytes: Array.from(this.bytes.subarray(0, this.used)),
      packets: Array.from(this.packets.subarray(0, this.used)),
    };
  }

  /** Steps the width up the 1-2-10-20 ladder until `relNs` falls within MAX_AUTO_BINS bins, merging. */
  private widenFor(relNs: number): void {
    while (Math.floor(relNs / this.binNs) >= MAX_AUTO_BINS) {
      const factor = isPowerOfTenMs(this.binNs) ? 2 : 5;
      const merged = Math.ceil(this.used / factor);
      for (let i = 0; i < merged; i++) {
        let b = 0;
        let p = 0;
        for (let j = i * factor; j < Math.min(this.used, (i + 1) * factor); j++) {
          b += this.bytes[j]!;
          p += this.packets[j]!;
        }
        this.bytes[i] = b;
        this.packets[i] = p;
      }
      this.bytes.fill(0, merged, this.used);
      this.packets.fill(0, merged, this.used);
      this.used = merged;
      this.binNs *= factor;
    }
  }

  private grow(bin: number): void {
    if (this.fixed && bin >= MAX_FIXED_BINS)
      throw new Error(
        `the capture spans more than ${MAX_FIXED_BINS} volume bins of ${this.binNs / MS} ms: choose a wider bin`,
      );
    let length = this.bytes.length;
    while (length <= bin) length *= 2;
    const bytes = new Float64Array(length);
    const packets = new Float64Array(length);
    bytes.set(this.bytes.subarray(0, this.used));
    packets.set(this.packets.subarray(0, this.used));
    this.bytes = bytes;
    this.packets = packets;
  }
}

/** True for 1 ms, 10 ms, 100 ms, 1 s … (the next step doubles); false for 2, 20, 200 ms … (×5 follows). */
function isPowerOfTenMs(ns: number): boolean {
  let ms = ns / MS;
  while (ms >= 10) ms /= 10;
  return ms === 1;
}
