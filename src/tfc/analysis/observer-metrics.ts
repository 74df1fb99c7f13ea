/**
 * What an observer of a capture learns from sizes and timing alone, accumulated packet by packet in
 * bounded state: size histogram and exact size counts, gap (inter-arrival) distribution, volume over time,
 * and per-flow tables. A million-packet capture needs no more memory than a thousand-packet one (beyond
 * its number of flows, capped, and of volume bins, capped).
 *
 * Definitions, as `pktveil analyze --help` states them:
 * - size: a frame's length on the wire as the capture records it (pcap original length), link header
 *   included;
 * - gap: time between consecutive packets in capture order (a negative one, from out-of-order
 *   timestamps, is counted in `outOfOrder` and left out);
 * - standard deviations are population ones; CV = stddev / mean.
 */
import { formatTimestamp } from '../../codec/describe.js';
import type { PacketParser } from '../../codec/parser.js';
import type { FlowIdentity } from './flow-key.js';
import { DEFAULT_MAX_FLOWS, FlowTable } from './flow-table.js';
import {
  BinnedHistogram,
  gapEdgesNs,
  type HistogramBin,
  packetSizeEdges,
  SIZE_BIN_BYTES,
} from './histogram.js';
import { QuantileSketch } from './quantile-sketch.js';
import { RunningStats } from './running-stats.js';
import { type SizeCount, SizeCounts } from './size-counts.js';
import { VolumeSeries } from './volume-series.js';

export const DEFAULT_TOP_FLOWS = 20;
export const DEFAULT_TOP_SIZES = 10;
/** Percentiles reported for gaps and delays. */
export const PERCENTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99] as const;

export interface ObserverMetricsOptions {
  /** Volume bin width in nanoseconds; chosen from the capture's length when absent (volume-series.ts). */
  volumeBinNs?: number;
  /** Rows in the flow table (default 20). */
  topFlows?: number;
  /** Flows tracked before new ones are counted as untracked (default 65,536). */
  maxFlows?: number;
  /** Most common sizes listed (default 10). */
  topSizes?: number;
}

export interface SizesReport {
  mean: number | null;
  stddev: number | null;
  min: number | null;
  max: number | null;
  distinct: number;
  top: SizeCount[];
  histogram: { binBytes: number; bins: HistogramBin[] };
}

/** A distribution of durations in seconds: summary statistics, percentiles and a 1-2-5 histogram. */
export interface DurationDistribution {
  count: number;
  meanSeconds: number | null;
  stddevSeconds: number | null;
  cv: number | null;
  minSeconds: number | null;
  maxSeconds: number | null;
  /** Keys p1, p5, p25, p50, p75, p95, p99 (nearest rank, within 0.1%); null when empty. */
  percentilesSeconds: Record<string, number> | null;
  histogram: { bins: HistogramBin[] };
}

export interface TimingReport extends DurationDistribution {
  /** Negative gaps (timestamps going back), left out of the distribution. */
  outOfOrder: number;
}

export interface VolumeReport {
  binSeconds: number;
  /** Start of the first bin: the first packet's timestamp. */
  start: string | null;
  bytes: number[];
  packets: number[];
}

export interface FlowReportRow extends FlowIdentity {
  packets: number;
  bytes: number;
  firstTs: string;
  lastTs: string;
  durationSeconds: number;
  size: { mean: number | null; stddev: number | null; min: number | null; max: number | null };
  /** Gaps between this flow's consecutive packets (null with fewer than two packets). */
  gap: {
    meanSeconds: number | null;
    stddevSeconds: number | null;
    cv: number | null;
    minSeconds: number | null;
    maxSeconds: number | null;
  };
}

export interface FlowsReport {
  count: number;
  /** Packets of flows first seen after the table was full. */
  untracked: { packets: number; bytes: number };
  /** The flows with the most bytes, largest first. */
  top: FlowReportRow[];
}

export interface ObserverReport {
  packets: number;
  bytes: number;
  durationSeconds: number;
  firstTs: string | null;
  lastTs: string | null;
  sizes: SizesReport;
  timing: TimingReport;
  volume: VolumeReport;
  flows: FlowsReport;
}

/** A distribution of nanosecond durations: statistics, percentile sketch and histogram together. */
export class DurationAccumulator {
  readonly stats = new RunningStats();
  readonly sketch = new QuantileSketch();
  readonly histogram = new BinnedHistogram(gapEdgesNs());

  add(ns: number): void {
    this.stats.add(ns);
    this.sketch.add(ns);
    this.histogram.add(ns);
  }

  report(): DurationDistribution {
    const s = this.stats.summary(1e9);
    const empty = this.stats.count === 0;
    return {
      count: s.count,
      meanSeconds: s.mean,
      stddevSeconds: s.stddev,
      cv: empty ? null : this.stats.cv,
      minSeconds: s.min,
      maxSeconds: s.max,
      percentilesSeconds: empty
        ? null
        : Object.fromEntries(
            PERCENTILES.map((p) => [`p${Math.round(p * 100)}`, this.sketch.quantile(p) / 1e9]),
          ),
      histogram: { bins: this.histogram.bins(1e9) },
    };
  }
}

export class ObserverMetrics {
  private readonly sizes = new RunningStats();
  private readonly sizeHistogram = new BinnedHistogram(packetSizeEdges());
  private readonly sizeCounts = new SizeCounts();
  private readonly gaps = new DurationAccumulator();
  private readonly volume: VolumeSeries;
  private readonly flows: FlowTable;
  private readonly topFlows: number;
  private readonly topSizes: number;
  private bytes = 0;
  private outOfOrder = 0;
  private previous = 0;
  private earliest = Number.POSITIVE_INFINITY;
  private latest = Number.NEGATIVE_INFINITY;

  constructor(options: ObserverMetricsOptions = {}) {
    this.volume = new VolumeSeries(options.volumeBinNs);
    this.flows = new FlowTable(options.maxFlows ?? DEFAULT_MAX_FLOWS);
    this.topFlows = options.topFlows ?? DEFAULT_TOP_FLOWS;
    this.topSizes = options.topSizes ?? DEFAULT_TOP_SIZES;
  }

  get packets(): number {
    return this.sizes.count;
  }

  /**
   * Counts the parser's last frame: `size` bytes on the wire, `relNs` nanoseconds after the capture's first
   * packet (the origin given to report()).
   */
  add(parser: PacketParser, relNs: number, size: number): void {
    if (this.sizes.count > 0) {
      const gap = relNs - this.previous;
      if (gap >= 0) this.gaps.add(gap);
      else this.outOfOrder++;
    }
    this.previous = relNs;
    if (relNs < this.earliest) this.earliest = relNs;
    if (relNs > this.latest) this.latest = relNs;
    this.bytes += size;
    this.sizes.add(size);
    this.sizeHistogram.add(size);
    this.sizeCounts.add(size);
    this.volume.add(relNs, size);
    this.flows.add(parser, relNs, size);
  }

  /** Everything measured; `t0` is the timestamp the relative times count from (null: no packets). */
  report(t0: bigint | null): ObserverReport {
    const empty = this.sizes.count === 0 || t0 === null;
    const at = (relNs: number) => formatTimestamp(t0! + BigInt(Math.round(relNs)));
    const sizes = this.sizes.summary();
    const volume = this.volume.series();
    return {
      packets: this.sizes.count,
      bytes: this.bytes,
      durationSeconds: empty ? 0 : (this.latest - this.earliest) / 1e9,
      firstTs: empty ? null : at(this.earliest),
      lastTs: empty ? null : at(this.latest),
      sizes: {
        mean: sizes.mean,
        stddev: sizes.stddev,
        min: sizes.min,
        max: sizes.max,
        distinct: this.sizeCounts.distinct,
        top: this.sizeCounts.top(this.topSizes),
        histogram: { binBytes: SIZE_BIN_BYTES, bins: this.sizeHistogram.bins() },
      },
      timing: { ...this.gaps.report(), outOfOrder: this.outOfOrder },
      volume: {
        binSeconds: volume.binNs / 1e9,
        start: empty ? null : at(0),
        bytes: volume.bytes,
        packets: volume.packets,
      },
      flows: {
        count: this.flows.flowCount,
        untracked: { packets: this.flows.untrackedPackets, bytes: this.flows.untrackedBytes },
        top: this.flows.top(this.topFlows).map((row) => {
          const { packets, bytes, firstNs, lastNs, size, gapNs, ...identity } = row;
          return {
            ...identity,
            packets,
            bytes,
            firstTs: at(firstNs),
            lastTs: at(lastNs),
            durationSeconds: (lastNs - firstNs) / 1e9,
            size: { mean: size.mean, stddev: size.stddev, min: size.min, max: size.max },
            gap: {
              meanSeconds: scaled(gapNs.mean),
              stddevSeconds: scaled(gapNs.stddev),
              cv: gapNs.cv,
              minSeconds: scaled(gapNs.min),
              maxSeconds: scaled(gapNs.max),
            },
          };
        }),
      },
    };
  }
}

function scaled(ns: number | null): number | null {
  return ns === null ? null : ns / 1e9;
}
