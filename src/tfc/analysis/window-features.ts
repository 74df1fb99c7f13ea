/**
 * The classifier's samples: every labelled window cut into sub-windows of `windowSeconds` (a remainder
 * shorter than that is left out, since features depend on the window's length), each described by what an
 * observer of the wire sees in it. Accumulated packet by packet in typed arrays: state grows with the
 * number of sub-windows, not packets.
 *
 * Features (sizes are frame lengths on the wire; gaps are between consecutive packets in the sub-window):
 * - packets, bytes
 * - meanSize, stddevSize, minSize, maxSize (0 for an empty sub-window)
 * - distinctSizes: how many different sizes appear (counted assuming packets come in time order; a packet
 *   of an earlier sub-window arriving late may count its size twice)
 * - meanGap (s): the sub-window's length when it has fewer than two packets
 * - gapCv: stddev / mean of the gaps, 0 with fewer than two gaps
 * - maxIdle (s): the longest time without a packet, counting from the sub-window's start and to its end
 * - burstFraction: the fraction of gaps shorter than 1 ms (packets sent back to back)
 */
import type { Labels } from './labels.js';

export const FEATURE_NAMES = [
  'packets',
  'bytes',
  'meanSize',
  'stddevSize',
  'minSize',
  'maxSize',
  'distinctSizes',
  'meanGap',
  'gapCv',
  'maxIdle',
  'burstFraction',
] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];

/** Gaps shorter than this count as back to back. */
export const BURST_GAP_NS = 1_000_000;

// Accumulator fields per sub-window.
const PACKETS = 0;
const BYTES = 1;
const SIZE_MEAN = 2;
const SIZE_M2 = 3;
const SIZE_MIN = 4;
const SIZE_MAX = 5;
const DISTINCT = 6;
const GAPS = 7;
const GAP_MEAN = 8;
const GAP_M2 = 9;
const GAP_MAX = 10;
const SHORT_GAPS = 11;
const FIRST = 12;
const LAST = 13;
const STRIDE = 14;

const SIZE_STAMPS = 65_536 + 256;
/** More sub-windows than this is a labels mistake (a tiny windowSeconds), not a plan. */
export const MAX_SUB_WINDOWS = 1_000_000;

/** Throws when the labels would make more than MAX_SUB_WINDOWS sub-windows, saying what to change. */
export function checkSubWindowCount(labels: Labels): void {
  let total = 0n;
  for (const w of labels.windows) total += (w.end - w.start) / labels.windowNs;
  if (total > BigInt(MAX_SUB_WINDOWS))
    throw new Error(
      `labels cut into ${total} sub-windows of ${Number(labels.windowNs) / 1e9} s, more than ${MAX_SUB_WINDOWS}: ` +
        'raise windowSeconds',
    );
}

export interface WindowSamples {
  features: readonly FeatureName[];
  /** One row of FEATURE_NAMES values per sub-window. */
  rows: number[][];
  /** The class of each row. */
  classes: string[];
  /** Sub-windows without a single packet. */
  empty: number;
}

export class WindowFeatures {
  private readonly windowNs: number;
  /** Start of each sub-window, ns after the capture's first packet, ascending. */
  private readonly starts: Float64Array;
  private readonly classOf: string[];
  private readonly acc: Float64Array;
  /** sub-window index + 1 that last saw each size (distinct counting without a set per sub-window). */
  private readonly sizeStamp = new Int32Array(SIZE_STAMPS);
  private cursor = 0;

  /** `t0`: the capture's first timestamp, the origin of the relative times given to add(). */
  constructor(labels: Labels, t0: bigint) {
    this.windowNs = Number(labels.windowNs);
    const starts: number[] = [];
    this.classOf = [];
    checkSubWindowCount(labels);
    for (const w of labels.windows) {
      const count = (w.end - w.start) / labels.windowNs;
      const origin = Number(w.start - t0);
      for (let j = 0n; j < count; j++) {
        starts.push(origin + Number(j * labels.windowNs));
        this.classOf.push(w.class);
      }
    }
    this.starts = Float64Array.from(starts);
    this.acc = new Float64Array(starts.length * STRIDE);
  }

  /** Sub-windows in all. */
  get count(): number {
    return this.starts.length;
  }

  /** Counts a packet of `size` bytes at `relNs` after the capture's first packet, if a sub-window holds it. */
  add(relNs: number, size: number): void {
    const w = this.find(relNs);
    if (w < 0) return;
    const a = this.acc;
    const o = w * STRIDE;
    const n = ++a[o + PACKETS]!;
    a[o + BYTES]! += size;
    const d = size - a[o + SIZE_MEAN]!;
    a[o + SIZE_MEAN]! += d / n;
    a[o + SIZE_M2]! += d * (size - a[o + SIZE_MEAN]!);
    const stamp = size < SIZE_STAMPS ? size : SIZE_STAMPS - 1;
    if (this.sizeStamp[stamp] !== w + 1) {
      this.sizeStamp[stamp] = w + 1;
      a[o + DISTINCT]!++;
    }
    if (n === 1) {
      a[o + SIZE_MIN] = size;
      a[o + SIZE_MAX] = size;
      a[o + FIRST] = relNs;
    } else {
      if (size < a[o + SIZE_MIN]!) a[o + SIZE_MIN] = size;
      if (size > a[o + SIZE_MAX]!) a[o + SIZE_MAX] = size;
      const gap = relNs - a[o + LAST]!;
      if (gap >= 0) {
        const g = ++a[o + GAPS]!;
        const dg = gap - a[o + GAP_MEAN]!;
        a[o + GAP_MEAN]! += dg / g;
        a[o + GAP_M2]! += dg * (gap - a[o + GAP_MEAN]!);
        if (gap > a[o + GAP_MAX]!) a[o + GAP_MAX] = gap;
        if (gap < BURST_GAP_NS) a[o + SHORT_GAPS]!++;
      }
      if (relNs < a[o + FIRST]!) a[o + FIRST] = relNs;
    }
    if (n === 1 || relNs > a[o + LAST]!) a[o + LAST] = relNs;
  }

  /** The feature rows and classes of every sub-window, in time order. */
  samples(): WindowSamples {
    const rows: number[][] = [];
    let empty = 0;
    const a = this.acc;
    const windowS = this.windowNs / 1e9;
    for (let w = 0; w < this.starts.length; w++) {
      const o = w * STRIDE;
      const packets = a[o + PACKETS]!;
      if (packets === 0) {
        empty++;
        rows.push([0, 0, 0, 0, 0, 0, 0, windowS, 0, windowS, 0]);
        continue;
      }
      const gaps = a[o + GAPS]!;
      const gapMean = a[o + GAP_MEAN]!;
      const gapStd = gaps > 1 ? Math.sqrt(a[o + GAP_M2]! / gaps) : 0;
      const start = this.starts[w]!;
      const idle = Math.max(a[o + FIRST]! - start, a[o + GAP_MAX]!, start + this.windowNs - a[o + LAST]!);
      rows.push([
        packets,
        a[o + BYTES]!,
        a[o + SIZE_MEAN]!,
        packets > 1 ? Math.sqrt(a[o + SIZE_M2]! / packets) : 0,
        a[o + SIZE_MIN]!,
        a[o + SIZE_MAX]!,
        a[o + DISTINCT]!,
        gaps > 0 ? gapMean / 1e9 : windowS,
        gapMean > 0 ? gapStd / gapMean : 0,
        idle / 1e9,
        gaps > 0 ? a[o + SHORT_GAPS]! / gaps : 0,
      ]);
    }
    return { features: FEATURE_NAMES, rows, classes: [...this.classOf], empty };
  }

  /** Index of the sub-window holding relNs, or -1. Packets mostly come in order: try the last one first. */
  private find(relNs: number): number {
    const starts = this.starts;
    const c = this.cursor;
    if (c < starts.length && relNs >= starts[c]! && relNs < starts[c]! + this.windowNs) return c;
    let lo = 0;
    let hi = starts.length - 1;
    if (hi < 0 || relNs < starts[0]!) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (starts[mid]! <= relNs) lo = mid;
      else hi = mid - 1;
    }
    if (relNs >= starts[lo]! + this.windowNs) return -1;
    this.cursor = lo;
    return lo;
  }
}
