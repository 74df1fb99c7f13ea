/**
 * What a TFC transform costs on the wire: packets and bytes of the capture after it (FILE) against the
 * capture before it (PLAIN), each over its own span (first to last timestamp).
 *
 * Bytes are frame lengths on the wire as the capture records them (pcap's original length), link header
 * included: compare captures of the same link type.
 */
import { formatTimestamp } from '../../codec/describe.js';

/** Packets, bytes and time span of one capture. */
export class TrafficTotals {
  packets = 0;
  bytes = 0;
  first: bigint | null = null;
  last: bigint | null = null;

  add(ts: bigint, size: number): void {
    this.packets++;
    this.bytes += size;
    if (this.first === null || ts < this.first) this.first = ts;
    if (this.last === null || ts > this.last) this.last = ts;
  }

  /** Seconds from the first to the last packet (0 with fewer than two). */
  get durationSeconds(): number {
    return this.first === null || this.last === null ? 0 : Number(this.last - this.first) / 1e9;
  }

  summary(): TrafficSummary {
    const duration = this.durationSeconds;
    return {
      packets: this.packets,
      bytes: this.bytes,
      firstTs: this.first === null ? null : formatTimestamp(this.first),
      lastTs: this.last === null ? null : formatTimestamp(this.last),
      durationSeconds: duration,
      bitsPerSecond: duration > 0 ? (this.bytes * 8) / duration : null,
      packetsPerSecond: duration > 0 ? this.packets / duration : null,
    };
  }
}

export interface TrafficSummary {
  packets: number;
  bytes: number;
  firstTs: string | null;
  lastTs: string | null;
  durationSeconds: number;
  /** Over the span; null when the span is 0. */
  bitsPerSecond: number | null;
  packetsPerSecond: number | null;
}

export interface OverheadReport {
  before: TrafficSummary;
  after: TrafficSummary;
  /** after.bytes / before.bytes (null when before has no bytes). */
  bytesRatio: number | null;
  packetsRatio: number | null;
  /** after.bytes − before.bytes. */
  extraBytes: number;
  extraPackets: number;
  /** after.bitsPerSecond − before.bitsPerSecond (null when either span is 0). */
  extraBitsPerSecond: number | null;
}

export function compareTotals(before: TrafficTotals, after: TrafficTotals): OverheadReport {
  const b = before.summary();
  const a = after.summary();
  return {
    before: b,
    after: a,
    bytesRatio: b.bytes > 0 ? a.bytes / b.bytes : null,
    packetsRatio: b.packets > 0 ? a.packets / b.packets : null,
    extraBytes: a.bytes - b.bytes,
    extraPackets: a.packets - b.packets,
    extraBitsPerSecond:
      a.bitsPerSecond !== null && b.bitsPerSecond !== null ? a.bitsPerSecond - b.bitsPerSecond : null,
  };
}
