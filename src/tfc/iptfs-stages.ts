/**
 * IP-TFS (RFC 9347) as stages: the encapsulator queues inner packets and sends AGGFRAG payloads of one
 * outer size in iptfs-mode ESP, paced; the decapsulator opens them and reassembles the inner packets.
 */

import { AGGFRAG_BASIC_HEADER_LENGTH, AGGFRAG_CC_HEADER_LENGTH } from '../codec/aggfrag.js';
import { ESP_HEADER_LENGTH } from '../codec/esp.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { networkOffset, setNetworkVersion } from '../codec/network-offset.js';
import { UDP_HEADER_LENGTH } from '../codec/udp.js';
import { type DecapInfo, decapsulate, newDecapInfo } from '../esp/decapsulate.js';
import { encapsulateAggfrag } from '../esp/encapsulate.js';
import { hexSpi, type SecurityAssociation } from '../esp/sa.js';
import { SecurityAssociationDatabase } from '../esp/sad.js';
import { LinkType, type Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { IPTFS_HEADROOM, IptfsReceiver, type IptfsReceiverOptions } from './iptfs-receiver.js';
import { IptfsSender } from './iptfs-sender.js';
import { Pacer } from './pacer.js';

/** Longest link header kept in front of the network packet (Ethernet with 8 VLAN tags is 46). */
const LINK_HEADROOM = 64;
const MAX_INNER = 65_535;
const FAR_FUTURE = (1n << 63n) - 1n;

/**
 * When outer packets leave (RFC 9347 §2.4 and §6.1.x):
 * - fixed-rate: one every interval at `bitsPerSecond` of outer IPv4 bytes, all-pad when nothing is queued;
 *   never more, so the link shows the same packets whatever the traffic.
 * - min-rate: the same floor, plus an extra packet whenever a whole payload's worth is queued (sizes stay
 *   constant, timing leaks load above the floor).
 * - on-demand: no padding-only packets; a packet leaves when a payload is full or when the oldest queued
 *   byte has waited `maxDelayNs` (0: at once).
 */
export type IptfsSendMode =
  | { kind: 'fixed-rate'; bitsPerSecond: number }
  | { kind: 'min-rate'; bitsPerSecond: number }
  | { kind: 'on-demand' };

export interface IptfsEncapStageOptions {
  /** Outer IPv4 total length of every packet sent. */
  packetSize: number;
  mode: IptfsSendMode;
  /** Longest an inner packet may wait in the queue before it is dropped (fixed/min-rate) or sent (on-demand). */
  maxDelayNs?: bigint;
  /** Never split an inner packet over two outer packets (RFC 9347 §2.2.2). */
  dontFragment?: boolean;
  /** Send the congestion-control header (sub-type 1, RFC 9347 §6.1.2). */
  congestionControl?: boolean;
  /** Queue bound in bytes. */
  maxQueueBytes?: number;
  /** Pace on packet timestamps (files; exact) or on the real clock (live; token bucket). Default virtual. */
  time?: 'virtual' | 'real';
  name?: string;
}

/**
 * The AGGFRAG payload size that makes an iptfs-mode ESP packet exactly `packetSize` bytes of outer IPv4:
 * outer header, [UDP,] ESP header, IV, payload, pad length and next header (no padding needed), ICV.
 * Throws, naming the nearest sizes that work, when the suite's block alignment rules `packetSize` out.
 */
export function aggfragPayloadSize(
  sa: SecurityAssociation,
  packetSize: number,
  congestionControl = false,
): number {
  const suite = sa.suite;
  const fixed =
    IPV4_HEADER_LENGTH +
    (sa.natt ? UDP_HEADER_LENGTH : 0) +
    ESP_HEADER_LENGTH +
    suite.ivLength +
    suite.icvLength;
  const encrypted = packetSize - fixed;
  const header = congestionControl ? AGGFRAG_CC_HEADER_LENGTH : AGGFRAG_BASIC_HEADER_LENGTH;
  if (!Number.isInteger(packetSize) || packetSize > 0xffff || encrypted - 2 < header + 1)
    throw new Error(
      `IP-TFS packet size ${packetSize} does not fit SA ${hexSpi(sa.spi)} (${suite.name}): use ${fixed + header + 3} to 65535 bytes`,
    );
  const bs = suite.blockSize;
  if (encrypted % bs !== 0) {
    const below = packetSize - (encrypted % bs);
    throw new Error(
      `IP-TFS packet size ${packetSize} cannot be reached exactly with ${suite.name} (its ciphertext is a multiple of ${bs} bytes): use ${below} or ${below + bs}`,
    );
  }
  return encrypted - 2;
}

/**
 * IP-TFS sender over one iptfs-mode SA. Takes IPv4 and IPv6 packets (any link type; others pass through,
 * counted), queues copies and emits outer ESP packets of exactly `packetSize` bytes as its mode says. The
 * outer packets keep the link header of the latest input frame (raw IPv4 before any). Emitted packets
 * borrow the stage's buffer until the next call.
 *
 * In virtual time the outer packets of fixed- and min-rate modes are spaced exactly at the rate from the
 * first input timestamp, and flush() keeps sending at slot times until every queued byte has left.
 */
export class IptfsEncapStage implements Stage {
  readonly name: string;
  readonly sa: SecurityAssociation;
  readonly payloadSize: number;
  readonly sender: IptfsSender;
  private readonly pacer: Pacer | null;
  private readonly mode: IptfsSendMode['kind'];
  private readonly real: boolean;
  private readonly maxDelayNs: bigint;
  private readonly payload: Buffer;
  private readonly out = Buffer.alloc(LINK_HEADROOM + MAX_INNER);
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private link: number = LinkType.IPV4;
  private linkHeaderLength = 0;
  private ifIndex: number | undefined;
  /** The latest time seen (a packet's or a tick's): when real-time leftovers go out at flush. */
  private lastNow = 0n;
  /** When the oldest byte still queued arrived (on-demand max delay); -1n when nothing is queued. */
  private pendingSince = -1n;
  private readonly counters: StageStats = {
    ...emptyStats(),
    passedThrough: 0,
    outerPackets: 0,
    allPadPackets: 0,
  };

  constructor(sa: SecurityAssociation, options: IptfsEncapStageOptions) {
    if (sa.mode !== 'iptfs')
      throw new Error(`SA ${hexSpi(sa.spi)} is in ${sa.mode} mode; IP-TFS needs iptfs`);
    this.sa = sa;
    this.name = options.name ?? 'iptfs-encap';
    this.mode = options.mode.kind;
    this.real = options.time === 'real';
    this.maxDelayNs = options.maxDelayNs ?? 0n;
    this.payloadSize = aggfragPayloadSize(sa, options.packetSize, options.congestionControl);
    this.payload = Buffer.alloc(this.payloadSize);
    this.sender = new IptfsSender({
      payloadSize: this.payloadSize,
      dontFragment: options.dontFragment ?? false,
      congestionControl: options.congestionControl ?? false,
      ...(options.maxQueueBytes !== undefined ? { maxQueueBytes: options.maxQueueBytes } : {}),
      // On demand, the max delay decides when to send, not what to drop.
      ...(options.maxDelayNs !== undefined && this.mode !== 'on-demand'
        ? { maxDelayNs: options.maxDelayNs }
        : {}),
    });
    if (options.mode.kind === 'on-demand') this.pacer = null;
    else {
      const bps = options.mode.bitsPerSecond;
      if (!(bps > 0) || !Number.isFinite(bps))
        throw new Error(`IP-TFS ${options.mode.kind} needs a positive rate in bits/s, got ${bps}`);
      this.pacer = Pacer.fromRate(bps, options.packetSize);
    }
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0 || netOff > LINK_HEADROOM) {
      this.counters.passedThrough = (this.counters.passedThrough as number) + 1;
      this.counters.packetsOut++;
      emit(pkt);
      return;
    }
    this.keepLinkHeader(pkt, netOff);
    if (this.pacer && !this.pacer.started) this.pacer.start(pkt.ts);
    const wasPending = this.sender.pending;
    this.sender.enqueue(data, netOff, data.length - netOff, pkt.ts);
    if (!wasPending && this.sender.pending) this.pendingSince = pkt.ts;
    this.lastNow = pkt.ts;
    // Virtual time: the slot at the packet's own time carries it (earlier slots went out in tick).
    const pacer = this.pacer;
    if (pacer && !this.real)
      for (let t = pacer.takeVirtual(pkt.ts); t >= 0n; t = pacer.takeVirtual(pkt.ts)) this.send(t, emit);
    if (this.mode !== 'fixed-rate') this.sendFullPayloads(pkt.ts, emit);
    if (this.mode === 'on-demand' && this.maxDelayNs === 0n) this.sendDue(pkt.ts, emit);
  }

  tick(now: bigint, emit: Emit): void {
    this.lastNow = now;
    const pacer = this.pacer;
    // The schedule starts with the first tick or packet, whichever comes first: live, the tunnel runs
    // (all pad) before anything is sent through it.
    if (pacer && !pacer.started) pacer.start(now);
    if (pacer) {
      if (this.real) for (let n = pacer.takeReal(now); n > 0; n--) this.send(now, emit);
      // Slots strictly before now: packets stamped `now` may still come and belong in the slot at now.
      else
        for (let t = pacer.takeVirtualBefore(now); t >= 0n; t = pacer.takeVirtualBefore(now))
          this.send(t, emit);
    }
    if (this.mode === 'on-demand') this.sendDue(now, emit);
  }

  flush(emit: Emit): void {
    const pacer = this.pacer;
    if (pacer?.started && !this.real) {
      // At the slot times still to come, not all at once: the rate holds to the last packet.
      while (this.sender.pending) this.send(pacer.takeVirtual(FAR_FUTURE), emit);
    } else {
      while (this.sender.pending) this.send(this.lastNow, emit);
    }
  }

  stats(): StageStats {
    const sender = this.sender.stats();
    return {
      ...this.counters,
      innerPackets: sender.innerPackets,
      innerBytes: sender.innerBytes,
      padBytes: sender.padBytes,
      fragmentedPackets: sender.fragmentedPackets,
      dropped: { ...this.counters.dropped, ...sender.dropped },
      ...(this.pacer ? pacerStats(this.pacer) : {}),
    };
  }

  /** Whole payloads' worth queued go out now (min-rate extras, on-demand). */
  private sendFullPayloads(now: bigint, emit: Emit): void {
    while (this.sender.queuedBytes >= this.payloadSize) this.send(now, emit);
  }

  /** On demand: what waited max delay goes out, padded. */
  private sendDue(now: bigint, emit: Emit): void {
    while (this.sender.pending && now - this.pendingSince >= this.maxDelayNs) this.send(now, emit);
  }

  private send(ts: bigint, emit: Emit): void {
    const carried = this.sender.fill(this.payload, 0, ts);
    if (!this.sender.pending) this.pendingSince = -1n;
    const start = LINK_HEADROOM - this.linkHeaderLength;
    const n = encapsulateAggfrag(this.sa, this.payload, 0, this.payloadSize, this.out, LINK_HEADROOM);
    if (typeof n === 'string') {
      countDrop(this.counters, n);
      return;
    }
    this.counters.outerPackets = (this.counters.outerPackets as number) + 1;
    if (carried === 0) this.counters.allPadPackets = (this.counters.allPadPackets as number) + 1;
    this.counters.packetsOut++;
    const pkt: Packet = { data: this.out.subarray(start, LINK_HEADROOM + n), ts, link: this.link };
    if (this.ifIndex !== undefined) pkt.ifIndex = this.ifIndex;
    emit(pkt);
  }

  /** Outer packets go out behind the latest input's link header, announcing IPv4. */
  private keepLinkHeader(pkt: Packet, netOff: number): void {
    this.ifIndex = pkt.ifIndex;
    if (pkt.link === LinkType.RAW || pkt.link === LinkType.IPV4 || pkt.link === LinkType.IPV6) {
      this.link = pkt.link === LinkType.RAW ? LinkType.RAW : LinkType.IPV4;
      this.linkHeaderLength = 0;
      return;
    }
    const start = LINK_HEADROOM - netOff;
    this.out.set(pkt.data.subarray(0, netOff), start);
    this.linkHeaderLength = netOff;
    this.link =
      this.version.ip === 4 ? pkt.link : setNetworkVersion(this.out.subarray(start), pkt.link, netOff, 4);
  }
}

/** The pacer's figures as flat counters: achieved vs target rate and the gap error (ns) percentiles. */
function pacerStats(pacer: Pacer): Record<string, number> {
  const s = pacer.stats();
  return {
    slots: s.slots,
    missedSlots: s.missedSlots,
    achievedRateHz: s.achievedRateHz,
    targetRateHz: s.targetRateHz,
    gapErrorMeanNs: s.gapErrorNs.mean,
    gapErrorP50Ns: s.gapErrorNs.p50,
    gapErrorP99Ns: s.gapErrorNs.p99,
    gapErrorMaxNs: s.gapErrorNs.max,
  };
}

export interface IptfsDecapStageOptions extends IptfsReceiverOptions {
  name?: string;
}

/**
 * IP-TFS receiver: opens iptfs-mode ESP with the SAs given and reassembles the inner packets (RFC 9347
 * §2.2.3), emitting them in order with the timestamp of the outer packet that completed them, behind
 * that packet's link header. Frames that are not ESP pass unchanged; ESP that fails is dropped by the
 * decapsulation's reasons; ESP of a non-iptfs SA is dropped as 'not-iptfs'. One receiver per SPI.
 *
 * Inner packets are not copied out: the payload is decrypted IPTFS_HEADROOM bytes into the stage's
 * buffer, so every inner packet (there, or in the receiver's reassembly buffers) has room in front for
 * the link header, written over bytes already read.
 */
export class IptfsDecapStage implements Stage {
  readonly name: string;
  readonly sad: SecurityAssociationDatabase;
  private readonly receivers = new Map<SecurityAssociation, IptfsReceiver>();
  private readonly receiverOptions: IptfsReceiverOptions;
  private readonly payload = Buffer.alloc(IPTFS_HEADROOM + MAX_INNER);
  private readonly info: DecapInfo = newDecapInfo();
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private link: number = LinkType.IPV4;
  /** The latest outer packet's link header, written in front of each inner packet. */
  private readonly linkHeader = new Uint8Array(IPTFS_HEADROOM);
  private linkHeaderBytes = this.linkHeader.subarray(0, 0);
  private ifIndex: number | undefined;
  private emitTo: Emit | null = null;
  private readonly counters: StageStats = { ...emptyStats(), passedThrough: 0, outerPackets: 0 };
  // Every buffer the receiver emits from is a Buffer: this.payload, or its own reassembly buffers.
  private readonly emitInner = (buf: Uint8Array, off: number, len: number, ts: bigint): void =>
    this.deliver(buf as Buffer, off, len, ts);

  constructor(
    sas: SecurityAssociationDatabase | Iterable<SecurityAssociation>,
    options: IptfsDecapStageOptions = {},
  ) {
    this.sad = sas instanceof SecurityAssociationDatabase ? sas : new SecurityAssociationDatabase(sas);
    const { name, ...receiverOptions } = options;
    this.name = name ?? 'iptfs-decap';
    this.receiverOptions = receiverOptions;
    new IptfsReceiver(receiverOptions); // bad options throw here, at configuration time
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0 || netOff > IPTFS_HEADROOM || this.version.ip !== 4) {
      this.passThrough(pkt, emit);
      return;
    }
    const n = decapsulate(
      this.sad,
      data,
      netOff,
      data.length - netOff,
      this.payload,
      IPTFS_HEADROOM,
      this.info,
    );
    if (typeof n === 'string') {
      if (n === 'not-esp') this.passThrough(pkt, emit);
      else countDrop(this.counters, n);
      return;
    }
    const sa = this.info.sa!;
    if (sa.mode !== 'iptfs') {
      countDrop(this.counters, 'not-iptfs');
      return;
    }
    this.counters.outerPackets = (this.counters.outerPackets as number) + 1;
    this.keepLinkHeader(pkt, netOff);
    this.emitTo = emit;
    this.receiverOf(sa).receive(
      this.info.seqHi,
      this.info.seqLo,
      this.payload,
      IPTFS_HEADROOM,
      n,
      pkt.ts,
      this.emitInner,
    );
  }

  tick(now: bigint, emit: Emit): void {
    this.emitTo = emit;
    for (const r of this.receivers.values()) r.tick(now, this.emitInner);
  }

  flush(emit: Emit): void {
    this.emitTo = emit;
    for (const r of this.receivers.values()) r.flush(this.emitInner);
  }

  stats(): StageStats {
    const s: StageStats = { ...this.counters, dropped: { ...this.counters.dropped } };
    for (const r of this.receivers.values()) {
      const rs = r.stats();
      for (const [k, v] of Object.entries(rs)) {
        if (k === 'dropped') {
          for (const [reason, count] of Object.entries(v as Record<string, number>))
            countDrop(s, reason, count);
        } else if (typeof v === 'number') s[k] = ((s[k] as number | undefined) ?? 0) + v;
      }
    }
    return s;
  }

  private receiverOf(sa: SecurityAssociation): IptfsReceiver {
    let r = this.receivers.get(sa);
    if (r === undefined) {
      r = new IptfsReceiver(this.receiverOptions);
      this.receivers.set(sa, r);
    }
    return r;
  }

  /** An inner packet at buf[off, off + len) goes out behind the link header, written in its headroom. */
  private deliver(buf: Buffer, off: number, len: number, ts: bigint): void {
    const header = this.linkHeaderBytes;
    const start = off - header.length;
    buf.set(header, start);
    const frame = buf.subarray(start, off + len);
    const ip = buf[off]! >> 4 === 6 ? 6 : 4;
    let link = this.link;
    if (header.length > 0) link = setNetworkVersion(frame, this.link, header.length, ip);
    else if (link === LinkType.IPV4 && ip === 6) link = LinkType.IPV6;
    this.counters.packetsOut++;
    const pkt: Packet = { data: frame, ts, link };
    if (this.ifIndex !== undefined) pkt.ifIndex = this.ifIndex;
    this.emitTo!(pkt);
  }

  private keepLinkHeader(pkt: Packet, netOff: number): void {
    this.ifIndex = pkt.ifIndex;
    this.link = pkt.link;
    const header = this.linkHeader;
    const data = pkt.data;
    for (let i = 0; i < netOff; i++) header[i] = data[i]!;
    if (this.linkHeaderBytes.length !== netOff) this.linkHeaderBytes = header.subarray(0, netOff);
  }

  private passThrough(pkt: Packet, emit: Emit): void {
    this.counters.passedThrough = (this.counters.passedThrough as number) + 1;
    this.counters.packetsOut++;
    emit(pkt);
  }
}
