/**
 * Added delay: the packets of the capture before a TFC transform (PLAIN, "sent") found again among the
 * packets delivered after it (the decapsulated inner packets, or the transformed capture itself when its
 * packets are the same IP packets), by IP packet bytes with TTL and header checksum ignored
 * (ip-packet-hash.ts). Delay = delivered timestamp − sent timestamp, both captures on one clock.
 *
 * The two captures are read side by side in time order: before a delivered packet is matched, PLAIN is
 * read up to the delivered packet's timestamp (a packet cannot arrive before it was sent), so only the
 * packets in flight are held, and a sent packet still undelivered after the horizon is counted lost.
 * PLAIN's totals (for the overhead) are gathered on the way.
 */
import { PacketParser } from '../../codec/parser.js';
import type { LayerRegistry } from '../../codec/registry.js';
import { readCapture } from '../../io/capture-file.js';
import { type Packet, wireLength } from '../../packet.js';
import { DelayMatcher } from './delay-matcher.js';
import { readError } from './input-error.js';
import { fingerprintIpPacket } from './ip-packet-hash.js';
import { DurationAccumulator, type DurationDistribution } from './observer-metrics.js';
import { TrafficTotals } from './overhead.js';

/** How long a sent packet may wait for its delivery by default before it counts as lost. */
export const DEFAULT_DELAY_HORIZON_NS = 10e9;

export interface DelayReport extends DurationDistribution {
  /** The capture the sent packets were looked for in. */
  deliveredFile: string;
  /** Packets of PLAIN found delivered. */
  matched: number;
  /** IP packets of PLAIN never found (lost, changed beyond TTL and checksum, or later than the horizon). */
  unmatchedBefore: number;
  /** IP packets delivered that PLAIN did not send (dummies, padding, another source's packets). */
  unmatchedDelivered: number;
  /** Frames without an IP packet, not matched: in PLAIN and in the delivered capture. */
  notIpBefore: number;
  notIpDelivered: number;
  horizonSeconds: number;
}

export class DelayMeasurement {
  /** PLAIN's packets, bytes and span. */
  readonly sentTotals = new TrafficTotals();
  private readonly matcher: DelayMatcher;
  private readonly delays = new DurationAccumulator();
  private readonly parser: PacketParser;
  private readonly it: AsyncIterator<Packet, undefined>;
  private readonly fp = new Uint32Array(2);
  // The next PLAIN packet, read but not yet handed to the matcher (fields, not an object per packet).
  private hasNext = false;
  private nextTs = 0n;
  private nextH1 = 0;
  private nextH2 = 0;
  private nextIp = false;
  private exhausted = false;
  private origin: bigint | null = null;
  private notIpBefore = 0;
  private notIpDelivered = 0;

  constructor(
    readonly plainFile: string,
    readonly deliveredFile: string,
    registry: LayerRegistry,
    horizonNs = DEFAULT_DELAY_HORIZON_NS,
  ) {
    this.matcher = new DelayMatcher(horizonNs);
    this.parser = new PacketParser(registry);
    this.it = readCapture(plainFile)[Symbol.asyncIterator]();
  }

  /** A delivered packet at `ts`, already parsed by `parser` (read before anything is awaited). */
  async deliver(ts: bigint, parser: PacketParser): Promise<void> {
    const ip = fingerprintIpPacket(parser, this.fp);
    const h1 = this.fp[0]!;
    const h2 = this.fp[1]!;
    this.origin ??= ts;
    if (this.hasNext ? this.nextTs <= ts : !this.exhausted) await this.readSentUpTo(ts);
    if (!ip) {
      this.notIpDelivered++;
      return;
    }
    const now = Number(ts - this.origin);
    this.matcher.expire(now);
    const delay = this.matcher.delivered(h1, h2, now);
    if (delay >= 0) this.delays.add(delay);
  }

  /** Reads what is left of PLAIN and reports. */
  async finish(): Promise<DelayReport> {
    await this.readSentUpTo(null);
    this.matcher.finish();
    return {
      deliveredFile: this.deliveredFile,
      matched: this.matcher.matched,
      unmatchedBefore: this.matcher.unmatchedSent,
      unmatchedDelivered: this.matcher.unmatchedDelivered,
      notIpBefore: this.notIpBefore,
      notIpDelivered: this.notIpDelivered,
      horizonSeconds: this.matcher.horizonNs / 1e9,
      ...this.delays.report(),
    };
  }

  /** Hands PLAIN packets up to `ts` (all of them when null) to the matcher. */
  private async readSentUpTo(ts: bigint | null): Promise<void> {
    for (;;) {
      if (this.hasNext) {
        if (ts !== null && this.nextTs > ts) return;
        this.origin ??= this.nextTs;
        if (this.nextIp) this.matcher.sent(this.nextH1, this.nextH2, Number(this.nextTs - this.origin));
        this.hasNext = false;
      }
      if (this.exhausted) return;
      let r: IteratorResult<Packet, undefined>;
      try {
        r = await this.it.next();
      } catch (err) {
        throw readError('before capture', this.plainFile, err);
      }
      if (r.done) {
        this.exhausted = true;
        return;
      }
      const pkt = r.value;
      this.sentTotals.add(pkt.ts, wireLength(pkt));
      this.parser.parsePacket(pkt);
      this.nextIp = fingerprintIpPacket(this.parser, this.fp);
      if (!this.nextIp) this.notIpBefore++;
      this.hasNext = true;
      this.nextTs = pkt.ts;
      this.nextH1 = this.fp[0]!;
      this.nextH2 = this.fp[1]!;
    }
  }
}
