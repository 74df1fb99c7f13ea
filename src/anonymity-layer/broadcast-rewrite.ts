/**
 * The broadcast source rewrite (DESIGN.md §1, first row): a host of an IPv4 subnet sends with the subnet's
 * directed broadcast address as IP source, so outside the subnet all its hosts look alike; replies come back
 * to that broadcast address and each host keeps its own. The inverse puts the host's own address back as
 * destination of a reply before the local stack sees it.
 *
 * Checksums are updated for the one changed field (RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m')), never
 * recomputed, so the rewrite costs the same for any packet size and works on captures cut short:
 * - the IPv4 header checksum, always;
 * - the transport checksum of protocols whose checksum covers the IPv4 pseudo-header (TCP, UDP, UDP-Lite,
 *   DCCP), which includes both addresses. A UDP checksum of 0 means "none" and stays 0; a UDP or UDP-Lite
 *   checksum that comes out 0 is sent as 0xffff. Protocols without a pseudo-header (ICMP, SCTP, ESP, the
 *   anonymity layer 253 …) need only the IP checksum.
 * - Fragments: the transport checksum covers the whole datagram, so it changes by the same delta whichever
 *   fragment it travels in. Every fragment's IP header is rewritten; the one fragment whose payload holds
 *   the checksum field (normally the first, but a TCP datagram split after 8 bytes carries it in the
 *   second) gets the transport update. Fragment offsets are multiples of 8 and the field is 2 bytes at an
 *   even offset below 8 (UDP) or at 16 (TCP), so it never straddles two fragments.
 * - ICMP errors quote the packet they answer, addresses included: `rewriteIcmpQuotedAddress` rewrites an
 *   address in the quote, with the quote's own checksums and the ICMP checksum that covers them.
 *
 * The functions rewrite `buf` in place and never throw on packet bytes: they return 'ok' or why they left
 * the packet unchanged.
 */

import { updateChecksum16, updateChecksum32 } from '../codec/checksum.js';
import { ICMPV4_PROTOCOL, Icmpv4Type } from '../codec/icmp.js';
import { ipv4String, readIpv4, writeIpv4 } from '../codec/ip-address.js';
import { networkOffset } from '../codec/network-offset.js';
import { TCP_PROTOCOL } from '../codec/tcp.js';
import { UDP_PROTOCOL } from '../codec/udp.js';
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { BroadcastSubnet } from './broadcast-subnet.js';

/** 'ok', or why the packet was left unchanged: bytes missing from the capture, or a header that lies. */
export type RewriteResult = 'ok' | 'truncated' | 'malformed';

/** Offsets of the two addresses in the IPv4 header. */
export const IPV4_SOURCE_FIELD = 12;
export const IPV4_DESTINATION_FIELD = 16;

const PROTO_DCCP = 33;
const PROTO_UDPLITE = 136;
const ICMP_HEADER_LENGTH = 8;

/**
 * Offset of the transport checksum in the datagram for protocols whose checksum covers the IPv4
 * pseudo-header, or -1 for protocols that need no transport update.
 */
export function pseudoHeaderChecksumOffset(protocol: number): number {
  switch (protocol) {
    case TCP_PROTOCOL:
      return 16;
    case UDP_PROTOCOL:
    case PROTO_UDPLITE:
    case PROTO_DCCP:
      return 6;
    default:
      return -1;
  }
}

// The checksum words the last rewrite changed (old, new; -1 when none), for the ICMP checksum that covers a
// quoted header. Module scratch instead of a result object: no allocation per packet.
const changed = new Int32Array(4);
const IP_OLD = 0;
const IP_NEW = 1;
const TRANSPORT_OLD = 2;
const TRANSPORT_NEW = 3;

const TRUNCATED = -2;
const MALFORMED = -3;

/**
 * Checks that the IPv4 header at buf[ipOff] can have an address rewritten and finds its transport checksum:
 * returns the checksum's offset in `buf`, -1 when this packet carries none to update, or TRUNCATED /
 * MALFORMED. Writes nothing. `end` is where the captured bytes stop. `quoted`: the header is a quote
 * inside an ICMP error, whose transport part may be cut short by design; a transport checksum outside the
 * quote is then left alone instead of making the rewrite fail.
 */
function planRewrite(buf: Uint8Array, ipOff: number, end: number, quoted: boolean): number {
  if (end - ipOff < 20) return TRUNCATED;
  const vihl = buf[ipOff]!;
  const headerLength = (vihl & 0x0f) << 2;
  if (vihl >>> 4 !== 4 || headerLength < 20) return MALFORMED;
  if (end - ipOff < headerLength) return TRUNCATED;
  const totalLength = (buf[ipOff + 2]! << 8) | buf[ipOff + 3]!;
  if (totalLength < headerLength) return MALFORMED;
  const checksumAt = pseudoHeaderChecksumOffset(buf[ipOff + 9]!);
  if (checksumAt < 0) return -1;
  const fragStart = (((buf[ipOff + 6]! & 0x1f) << 8) | buf[ipOff + 7]!) << 3;
  const fragEnd = fragStart + totalLength - headerLength;
  if (checksumAt < fragStart || checksumAt >= fragEnd) return -1; // another fragment carries it
  if (checksumAt + 2 > fragEnd) return MALFORMED;
  const transportOff = ipOff + headerLength + checksumAt - fragStart;
  if (transportOff + 2 > end) return quoted ? -1 : TRUNCATED;
  return transportOff;
}

function planError(plan: number): RewriteResult {
  return plan === TRUNCATED ? 'truncated' : 'malformed';
}

/**
 * Writes `addr` at `field` (IPV4_SOURCE_FIELD or IPV4_DESTINATION_FIELD) of the IPv4 header at buf[ipOff],
 * updating the header checksum and, at `transportOff` (from planRewrite; -1 for none), the transport
 * checksum, and records the checksum words it changed in `changed`.
 */
function applyRewrite(
  buf: Uint8Array,
  ipOff: number,
  field: number,
  addr: number,
  transportOff: number,
): void {
  const old = readIpv4(buf, ipOff + field);
  const ipChecksum = (buf[ipOff + 10]! << 8) | buf[ipOff + 11]!;
  const newIpChecksum = updateChecksum32(ipChecksum, old, addr);
  buf[ipOff + 10] = newIpChecksum >>> 8;
  buf[ipOff + 11] = newIpChecksum & 0xff;
  changed[IP_OLD] = ipChecksum;
  changed[IP_NEW] = newIpChecksum;
  changed[TRANSPORT_OLD] = -1;
  changed[TRANSPORT_NEW] = -1;
  if (transportOff >= 0) {
    const protocol = buf[ipOff + 9]!;
    const checksum = (buf[transportOff]! << 8) | buf[transportOff + 1]!;
    // UDP over IPv4: 0 is "no checksum" and stays so.
    if (!(protocol === UDP_PROTOCOL && checksum === 0)) {
      let next = updateChecksum32(checksum, old, addr);
      if (next === 0 && (protocol === UDP_PROTOCOL || protocol === PROTO_UDPLITE)) next = 0xffff;
      buf[transportOff] = next >>> 8;
      buf[transportOff + 1] = next & 0xff;
      changed[TRANSPORT_OLD] = checksum;
      changed[TRANSPORT_NEW] = next;
    }
  }
  writeIpv4(buf, ipOff + field, addr);
}

function rewriteAddress(
  buf: Uint8Array,
  ipOff: number,
  end: number,
  field: number,
  addr: number,
  quoted: boolean,
): RewriteResult {
  const plan = planRewrite(buf, ipOff, end, quoted);
  if (plan < -1) return planError(plan);
  applyRewrite(buf, ipOff, field, addr, plan);
  return 'ok';
}

/**
 * Rewrites the source of the IPv4 packet at buf[ipOff, end) to `addr` in place (the broadcast rewrite),
 * with its IP and transport checksums. `end`: where the captured bytes stop (default: end of `buf`).
 */
export function rewriteIpv4Source(
  buf: Uint8Array,
  ipOff: number,
  addr: number,
  end = buf.length,
): RewriteResult {
  return rewriteAddress(buf, ipOff, end, IPV4_SOURCE_FIELD, addr, false);
}

/**
 * Rewrites the destination of the IPv4 packet at buf[ipOff, end) to `addr` in place, with its IP and
 * transport checksums: the inverse, turning a reply sent to the broadcast address into one for the host.
 */
export function rewriteIpv4Destination(
  buf: Uint8Array,
  ipOff: number,
  addr: number,
  end = buf.length,
): RewriteResult {
  return rewriteAddress(buf, ipOff, end, IPV4_DESTINATION_FIELD, addr, false);
}

/** True for the ICMPv4 types that quote the packet they answer (RFC 792, RFC 1812 §4.3.2.3). */
export function isIcmpError(type: number): boolean {
  return (
    type === Icmpv4Type.DEST_UNREACHABLE ||
    type === 4 || // source quench (deprecated by RFC 6633, still quotes)
    type === Icmpv4Type.REDIRECT ||
    type === Icmpv4Type.TIME_EXCEEDED ||
    type === Icmpv4Type.PARAMETER_PROBLEM
  );
}

/**
 * In the ICMP error message at buf[icmpOff, end), rewrites the address at `field` of the quoted IPv4
 * header to `addr`: the quote's header checksum, its transport checksum when the quote reaches it, and the
 * ICMP checksum, which covers the quote as plain data. The caller checks that this is an ICMP error (see
 * isIcmpError) and that the ICMP header is in this fragment.
 */
export function rewriteIcmpQuotedAddress(
  buf: Uint8Array,
  icmpOff: number,
  field: number,
  addr: number,
  end = buf.length,
): RewriteResult {
  const quoteOff = icmpOff + ICMP_HEADER_LENGTH;
  if (end - quoteOff < 20) return 'truncated';
  const old = readIpv4(buf, quoteOff + field);
  const result = rewriteAddress(buf, quoteOff, end, field, addr, true);
  if (result !== 'ok') return result;
  let icmpChecksum = (buf[icmpOff + 2]! << 8) | buf[icmpOff + 3]!;
  icmpChecksum = updateChecksum32(icmpChecksum, old, addr);
  icmpChecksum = updateChecksum16(icmpChecksum, changed[IP_OLD]!, changed[IP_NEW]!);
  if (changed[TRANSPORT_OLD]! >= 0)
    icmpChecksum = updateChecksum16(icmpChecksum, changed[TRANSPORT_OLD]!, changed[TRANSPORT_NEW]!);
  buf[icmpOff + 2] = icmpChecksum >>> 8;
  buf[icmpOff + 3] = icmpChecksum & 0xff;
  return 'ok';
}

/**
 * True when the IPv4 options of the header at buf[ipOff] record or route by address (Record Route,
 * Timestamp, Loose and Strict Source Route): the host's own address would travel in them, whatever the
 * source field says. Returns null when the options are malformed. The header must be captured whole.
 */
export function optionsCarryAddresses(buf: Uint8Array, ipOff: number): boolean | null {
  const end = ipOff + ((buf[ipOff]! & 0x0f) << 2);
  let i = ipOff + 20;
  while (i < end) {
    const type = buf[i]!;
    if (type === 0) return false; // End of Options List
    if (type === 1) {
      i++; // No Operation
      continue;
    }
    if (i + 1 >= end) return null;
    const length = buf[i + 1]!;
    if (length < 2 || i + length > end) return null;
    if (type === 7 || type === 68 || type === 131 || type === 137) return true;
    i += length;
  }
  return false;
}

/** Which quoted address an ICMP error gets rewritten, in a packet whose own address is rewritten. */
interface QuoteRule {
  /** IPV4_SOURCE_FIELD or IPV4_DESTINATION_FIELD of the quoted header. */
  field: number;
  /** Whether the quoted address there is one to replace. */
  matches(addr: number): boolean;
  /** What replaces it. */
  addr: number;
}

/**
 * The stages' rewrite of one packet at buf[ipOff, end): the quote of an ICMP error first (by `quote`), then
 * the packet's own `field`. Either both happen or, when something is missing or malformed, neither:
 * returns 'quoted' (both), 'ok' (no quote to rewrite) or why nothing changed.
 */
function rewritePacket(
  buf: Uint8Array,
  ipOff: number,
  end: number,
  field: number,
  addr: number,
  quote: QuoteRule,
): RewriteResult | 'quoted' {
  const plan = planRewrite(buf, ipOff, end, false);
  if (plan < -1) return planError(plan);
  let quoted = false;
  const fragmentOffset = ((buf[ipOff + 6]! & 0x1f) << 8) | buf[ipOff + 7]!;
  if (buf[ipOff + 9] === ICMPV4_PROTOCOL && fragmentOffset === 0) {
    const icmpOff = ipOff + ((buf[ipOff]! & 0x0f) << 2);
    if (icmpOff + ICMP_HEADER_LENGTH > end) return 'truncated';
    if (isIcmpError(buf[icmpOff]!)) {
      const quoteOff = icmpOff + ICMP_HEADER_LENGTH;
      if (quoteOff + 20 > end) return 'truncated';
      if (quote.matches(readIpv4(buf, quoteOff + quote.field))) {
        // Writes nothing unless it succeeds; ICMP has no pseudo-header, so the order does not matter.
        const result = rewriteIcmpQuotedAddress(buf, icmpOff, quote.field, quote.addr, end);
        if (result !== 'ok') return result;
        quoted = true;
      }
    }
  }
  applyRewrite(buf, ipOff, field, addr, plan);
  return quoted ? 'quoted' : 'ok';
}

/** Longest frame a stage copies: a link header (Ethernet with 8 VLAN tags is 46) and a 64 KiB packet. */
const MAX_FRAME_BYTES = 64 + 65_535;

export interface BroadcastSourceStageOptions {
  /** The host's subnet, "198.18.5.0/24" or parsed. */
  subnet: string | BroadcastSubnet;
  /**
   * Rewrite the borrowed packet's bytes and emit it as it is (no copy, no allocation): only for sources
   * whose buffers the pipeline owns. Default false: the packet is copied into the stage's own buffer.
   */
  inPlace?: boolean;
  /** Pass IPv6 packets unchanged instead of dropping them (default false: they would show the host). */
  passIpv6?: boolean;
  name?: string;
}

/**
 * The host's outbound side of the broadcast scheme: IPv4 packets from a host of `subnet` leave with the
 * subnet's broadcast address as source (checksums updated incrementally, see the file comment).
 *
 * - Frames without IP (ARP …) pass unchanged (`passedThrough`). IPv6 is dropped (`ipv6`) unless `passIpv6`.
 * - Packets to a destination inside the subnet pass unchanged (`local`): they never cross the router, and
 *   a Linux host drops a packet whose source is its own subnet's broadcast address as a martian.
 * - Packets already sent from the broadcast address pass unchanged (`alreadyBroadcast`).
 * - ICMP errors the host sends quote the packet they answer, whose destination is the host: that quoted
 *   address becomes the broadcast address too (`quotesRewritten`).
 * - Drops, by reason: `source-outside-subnet` (not a host of this subnet: its replies would go nowhere),
 *   `address-in-ip-options` (Record Route, Timestamp or Source Route options would still carry the host's
 *   address), `truncated`, `malformed`, `ipv6`.
 *
 * Emitted packets borrow the stage's buffer until the next call (or are the input itself with `inPlace`).
 */
export class BroadcastSourceStage implements Stage {
  readonly name: string;
  readonly subnet: BroadcastSubnet;
  private readonly inPlace: boolean;
  private readonly passIpv6: boolean;
  private readonly buffer: Buffer;
  private readonly quote: QuoteRule;
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private readonly counters: StageStats = {
    ...emptyStats(),
    rewritten: 0,
    quotesRewritten: 0,
    passedThrough: 0,
    local: 0,
    alreadyBroadcast: 0,
  };

  constructor(options: BroadcastSourceStageOptions) {
    const subnet = BroadcastSubnet.from(options.subnet);
    this.subnet = subnet;
    this.inPlace = options.inPlace ?? false;
    this.passIpv6 = options.passIpv6 ?? false;
    this.buffer = this.inPlace ? Buffer.alloc(0) : Buffer.allocUnsafe(MAX_FRAME_BYTES);
    this.quote = {
      field: IPV4_DESTINATION_FIELD,
      matches: (addr) => subnet.isHost(addr),
      addr: subnet.broadcast,
    };
    this.name = options.name ?? 'broadcast-source';
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0 || (this.version.ip === 6 && this.passIpv6)) {
      pass(c, 'passedThrough', pkt, emit);
      return;
    }
    if (this.version.ip === 6) {
      countDrop(c, 'ipv6');
      return;
    }
    const end = data.length;
    if (end - netOff < 20) {
      countDrop(c, 'truncated');
      return;
    }
    const src = readIpv4(data, netOff + IPV4_SOURCE_FIELD);
    const subnet = this.subnet;
    if (src === subnet.broadcast) {
      pass(c, 'alreadyBroadcast', pkt, emit);
      return;
    }
    if (!subnet.isHost(src)) {
      countDrop(c, 'source-outside-subnet');
      return;
    }
    if (subnet.contains(readIpv4(data, netOff + IPV4_DESTINATION_FIELD))) {
      pass(c, 'local', pkt, emit);
      return;
    }
    const headerLength = (data[netOff]! & 0x0f) << 2;
    if (headerLength > 20 && end - netOff >= headerLength) {
      const carry = optionsCarryAddresses(data, netOff);
      if (carry !== false) {
        countDrop(c, carry === null ? 'malformed' : 'address-in-ip-options');
        return;
      }
    }
    const buf = this.inPlace ? data : copyInto(this.buffer, data);
    if (buf === null) {
      countDrop(c, 'malformed');
      return;
    }
    const result = rewritePacket(buf, netOff, end, IPV4_SOURCE_FIELD, subnet.broadcast, this.quote);
    emitRewritten(c, result, pkt, this.inPlace ? pkt.data : buf.subarray(0, end), emit);
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

export interface BroadcastReplyStageOptions {
  /** The host's subnet, "198.18.5.0/24" or parsed. */
  subnet: string | BroadcastSubnet;
  /** This host's own address in the subnet as a number (parseIpv4("198.18.5.7")). */
  hostAddress: number;
  /** As in BroadcastSourceStageOptions. */
  inPlace?: boolean;
  name?: string;
}

/**
 * The host's inbound side: a reply the host's filter kept (the filter decides which broadcast replies are
 * this host's; this stage does not) gets the host's own address as destination, so the local stack delivers
 * it to the socket that sent the request. In an ICMP error quoting the host's packet, the quote's source
 * (the broadcast address) becomes the host's address again, so the stack finds the socket it concerns
 * (`quotesRewritten`).
 *
 * Packets not addressed to the subnet's broadcast address, IPv6 and frames without IP pass unchanged
 * (`passedThrough`). Drops: `truncated`, `malformed`.
 */
export class BroadcastReplyStage implements Stage {
  readonly name: string;
  readonly subnet: BroadcastSubnet;
  readonly hostAddress: number;
  private readonly inPlace: boolean;
  private readonly buffer: Buffer;
  private readonly quote: QuoteRule;
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private readonly counters: StageStats = {
    ...emptyStats(),
    rewritten: 0,
    quotesRewritten: 0,
    passedThrough: 0,
  };

  constructor(options: BroadcastReplyStageOptions) {
    const subnet = BroadcastSubnet.from(options.subnet);
    if (!subnet.isHost(options.hostAddress))
      throw new Error(
        `hostAddress ${ipv4String(options.hostAddress >>> 0)} is not a host address of ${subnet}: give this host's own address in the subnet`,
      );
    this.subnet = subnet;
    this.hostAddress = options.hostAddress >>> 0;
    this.inPlace = options.inPlace ?? false;
    this.buffer = this.inPlace ? Buffer.alloc(0) : Buffer.allocUnsafe(MAX_FRAME_BYTES);
    this.quote = {
      field: IPV4_SOURCE_FIELD,
      matches: (addr) => addr === subnet.broadcast,
      addr: this.hostAddress,
    };
    this.name = options.name ?? 'broadcast-reply';
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    const end = data.length;
    if (
      netOff < 0 ||
      this.version.ip === 6 ||
      end - netOff < 20 ||
      readIpv4(data, netOff + IPV4_DESTINATION_FIELD) !== this.subnet.broadcast
    ) {
      pass(c, 'passedThrough', pkt, emit);
      return;
    }
    const buf = this.inPlace ? data : copyInto(this.buffer, data);
    if (buf === null) {
      countDrop(c, 'malformed');
      return;
    }
    const result = rewritePacket(buf, netOff, end, IPV4_DESTINATION_FIELD, this.hostAddress, this.quote);
    emitRewritten(c, result, pkt, this.inPlace ? pkt.data : buf.subarray(0, end), emit);
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }
}

/** Copies a frame into the stage's buffer; null when it is longer than any IPv4 frame can be. */
function copyInto(buffer: Buffer, data: Buffer): Buffer | null {
  if (data.length > buffer.length) return null;
  buffer.set(data, 0);
  return buffer;
}

/** Counts and emits a rewritten packet, or counts why it was dropped. */
function emitRewritten(
  c: StageStats,
  result: RewriteResult | 'quoted',
  pkt: Packet,
  data: Buffer,
  emit: Emit,
): void {
  if (result === 'truncated' || result === 'malformed') {
    countDrop(c, result);
    return;
  }
  if (result === 'quoted') c.quotesRewritten = (c.quotesRewritten as number) + 1;
  c.rewritten = (c.rewritten as number) + 1;
  c.packetsOut++;
  emit(data === pkt.data ? pkt : { ...pkt, data });
}

/** Hands on a packet unchanged, counted under `counter`. */
function pass(c: StageStats, counter: string, pkt: Packet, emit: Emit): void {
  c[counter] = (c[counter] as number) + 1;
  c.packetsOut++;
  emit(pkt);
}
