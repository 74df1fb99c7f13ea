import { networkOffset, setNetworkVersion } from '../codec/network-offset.js';
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { type DecapInfo, decapsulate, newDecapInfo } from './decapsulate.js';
import { encapsulateDummy } from './encapsulate.js';
import { writeNatKeepalive } from './natt-keepalive.js';
import { hexSpi, type SecurityAssociation } from './sa.js';
import { SecurityAssociationDatabase } from './sad.js';
import { TelescopeEncapsulator } from './telescope.js';

/** Longest link header kept in front of the network packet (Ethernet with 8 VLAN tags is 46). */
const LINK_HEADROOM = 64;
const DECAP_BUFFER_BYTES = LINK_HEADROOM + 65_535;

export interface EspEncapStageOptions {
  name?: string;
  /**
   * Per-packet TFC padding (RFC 4303 §2.7) of the original packet, inside the innermost SA (which must be
   * in tunnel mode): how long each inner packet should look, e.g. fixedSize, sizeBuckets or randomPadding
   * from pktveil's tfc module. Replaces that SA's fixed tfcPadTo.
   */
  padding?: { target(length: number): number };
}

/**
 * ESP-encapsulates every IPv4 packet in `sas`, innermost first (one SA: plain ESP; several: a telescope).
 * The link header is kept as it was. Frames without IPv4 pass unchanged (`stats().passedThrough`);
 * packets an SA refuses are dropped by reason (`sa-expired`, `malformed-inner`, `fragment`, `too-big`).
 * Emitted packets borrow the stage's buffer until the next call.
 */
export class EspEncapStage implements Stage {
  readonly name: string;
  private readonly telescope: TelescopeEncapsulator;
  private readonly counters: StageStats = { ...emptyStats(), passedThrough: 0, dummies: 0 };
  private readonly version: { ip: 4 | 6 } = { ip: 4 };

  private readonly padding: { target(length: number): number } | null;

  constructor(sas: readonly SecurityAssociation[], options: EspEncapStageOptions = {}) {
    this.telescope = new TelescopeEncapsulator(sas, LINK_HEADROOM);
    this.name = options.name ?? 'esp-encap';
    this.padding = options.padding ?? null;
    if (this.padding && sas[0]!.mode !== 'tunnel')
      throw new Error(
        `padding needs the innermost SA in tunnel mode; ${hexSpi(sas[0]!.spi)} is ${sas[0]!.mode}`,
      );
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0 || netOff > LINK_HEADROOM || this.version.ip !== 4) {
      passThrough(this.counters, pkt, emit);
      return;
    }
    const n = this.padding
      ? this.telescope.wrap(data, netOff, data.length - netOff, this.padding.target(ipv4Length(data, netOff)))
      : this.telescope.wrap(data, netOff, data.length - netOff);
    if (typeof n === 'string') {
      countDrop(this.counters, n);
      return;
    }
    const out = this.telescope.result;
    const start = LINK_HEADROOM - netOff;
    out.set(data.subarray(0, netOff), start);
    this.counters.packetsOut++;
    emit({ data: out.subarray(start, LINK_HEADROOM + n), ts: pkt.ts, link: pkt.link, ifIndex: pkt.ifIndex });
  }

  /**
   * Emits a dummy packet (Next Header 59, `length` random payload bytes) in the outermost SA, as a raw IPv4
   * packet (link type 228), for TFC: the receiver authenticates and discards it.
   */
  emitDummy(length: number, ts: bigint, emit: Emit): void {
    const sa = this.telescope.sas[this.telescope.sas.length - 1]!;
    const out = this.telescope.result;
    const n = encapsulateDummy(sa, length, out, LINK_HEADROOM);
    if (typeof n === 'string') {
      countDrop(this.counters, n);
      return;
    }
    this.counters.dummies = (this.counters.dummies as number) + 1;
    this.counters.packetsOut++;
    emit({ data: out.subarray(LINK_HEADROOM, LINK_HEADROOM + n), ts, link: 228 });
  }

  /** Emits a NAT keepalive (RFC 3948 §2.3) for the outermost SA as a raw IPv4 packet (link type 228). */
  emitNatKeepalive(ts: bigint, emit: Emit): void {
    const sa = this.telescope.sas[this.telescope.sas.length - 1]!;
    const out = this.telescope.result;
    const n = writeNatKeepalive(sa, out, LINK_HEADROOM);
    this.counters.packetsOut++;
    emit({ data: out.subarray(LINK_HEADROOM, LINK_HEADROOM + n), ts, link: 228 });
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

export interface EspDecapStageOptions {
  name?: string;
  /** Most ESP layers removed from one packet (default 8). */
  maxLayers?: number;
}

/**
 * Removes ESP layers while the outermost SPI is in the SA database: a telescope is peeled as far as this
 * node's SAs reach, and what is left (an inner packet, or ESP for the next node) is emitted. Frames that
 * are not ESP pass unchanged (`passedThrough`); failures are dropped by reason (`unknown-spi`, `replayed`,
 * `too-old`, `icv`, `bad-padding`, `truncated`, `malformed`, `dummy`, ...); IP-TFS payloads need
 * IptfsDecapStage and are dropped here as `iptfs-payload`. Emitted packets borrow the
 * stage's buffers until the next call.
 */
export class EspDecapStage implements Stage {
  readonly name: string;
  readonly sad: SecurityAssociationDatabase;
  private readonly maxLayers: number;
  private readonly buffers = [Buffer.alloc(DECAP_BUFFER_BYTES), Buffer.alloc(DECAP_BUFFER_BYTES)] as const;
  private readonly info: DecapInfo = newDecapInfo();
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private readonly counters: StageStats = { ...emptyStats(), passedThrough: 0, layersRemoved: 0 };

  constructor(
    sas: SecurityAssociationDatabase | Iterable<SecurityAssociation>,
    options: EspDecapStageOptions = {},
  ) {
    this.sad = sas instanceof SecurityAssociationDatabase ? sas : new SecurityAssociationDatabase(sas);
    this.maxLayers = options.maxLayers ?? 8;
    if (!Number.isInteger(this.maxLayers) || this.maxLayers < 1)
      throw new Error(`maxLayers must be a positive integer, got ${options.maxLayers}`);
    this.name = options.name ?? 'esp-decap';
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0 || netOff > LINK_HEADROOM || this.version.ip !== 4) {
      passThrough(this.counters, pkt, emit);
      return;
    }
    let src: Uint8Array = data;
    let off = netOff;
    let len = data.length - netOff;
    let layers = 0;
    let out: Buffer = this.buffers[0];
    while (layers < this.maxLayers) {
      const dst = this.buffers[layers & 1]!;
      const n = decapsulate(this.sad, src, off, len, dst, LINK_HEADROOM, this.info);
      if (typeof n === 'number') {
        if (this.info.sa!.mode === 'iptfs') {
          // An AGGFRAG payload is not a packet: IptfsDecapStage reassembles the inner packets.
          countDrop(this.counters, 'iptfs-payload');
          return;
        }
        layers++;
        src = out = dst;
        off = LINK_HEADROOM;
        len = n;
        continue;
      }
      // What this node cannot open is the next node's business once a layer came off.
      if (layers > 0 && (n === 'not-esp' || n === 'unknown-spi')) break;
      if (n === 'not-esp') passThrough(this.counters, pkt, emit);
      else countDrop(this.counters, n);
      return;
    }
    this.counters.layersRemoved = (this.counters.layersRemoved as number) + layers;
    const start = LINK_HEADROOM - netOff;
    out.set(data.subarray(0, netOff), start);
    const ip = out[LINK_HEADROOM]! >> 4 === 6 ? 6 : 4;
    const frame = out.subarray(start, LINK_HEADROOM + len);
    const link = ip === 4 ? pkt.link : setNetworkVersion(frame, pkt.link, netOff, ip);
    this.counters.packetsOut++;
    emit({ data: frame, ts: pkt.ts, link, ifIndex: pkt.ifIndex });
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/** The IPv4 total length at data[off] (what padding policies size; encapsulate checks it against the bytes). */
function ipv4Length(data: Uint8Array, off: number): number {
  return data.length - off < 4 ? 0 : (data[off + 2]! << 8) | data[off + 3]!;
}

/** Hands on a frame the stage does not touch, counted as passedThrough. */
function passThrough(counters: StageStats, pkt: Packet, emit: Emit): void {
  counters.passedThrough = (counters.passedThrough as number) + 1;
  counters.packetsOut++;
  emit(pkt);
}
