/**
 * IPv4 packets for the broadcast-scheme tests (rewrite, tuple matcher, prefilter, guard), built with our
 * codecs into junk-filled buffers with every checksum computed in full, plus fragmentation, framing and
 * full checksum recomputation to judge incremental updates against.
 */
import { foldChecksum, internetChecksum, ipv4PseudoHeaderSum, onesSum } from '../../src/codec/checksum.js';
import { Icmpv4Repr } from '../../src/codec/icmp.js';
import { Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { TcpRepr } from '../../src/codec/tcp.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { hex, junk } from '../helpers/bytes.js';

export const TCP = 6;
export const UDP = 17;
export const ICMP = 1;
export const ANON = 253;

export interface IpFields {
  src: number | string;
  dst: number | string;
  id?: number;
  ttl?: number;
  /** IPv4 flags (DF 0b010 by default). */
  flags?: number;
  /** Raw option bytes (a multiple of 4). */
  options?: Buffer;
}

function addr(a: number | string): number {
  return typeof a === 'string' ? parseIpv4(a) : a >>> 0;
}

/** An IPv4 packet carrying `payload` as protocol `protocol`; `fill` writes the transport header in place. */
export function ipv4Packet(
  ip: IpFields,
  protocol: number,
  payload: Buffer,
  fill?: (buf: Buffer, off: number) => void,
): Buffer {
  const repr = new Ipv4Repr({
    id: ip.id ?? 0x4d2e,
    flags: ip.flags ?? 0b010,
    ttl: ip.ttl ?? 64,
    protocol,
    src: addr(ip.src),
    dst: addr(ip.dst),
    payloadLength: payload.length,
    ...(ip.options ? { options: ip.options } : {}),
  });
  const buf = junk(repr.encodedLength + payload.length);
  const ihl = repr.encodeInto(buf, 0);
  payload.copy(buf, ihl);
  fill?.(buf, ihl);
  return buf;
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  /** TcpFlags bits; ACK by default. */
  flags?: number;
  seq?: number;
  ack?: number;
  payload?: Buffer;
}

export function tcpPacket(ip: IpFields, tcp: TcpFields): Buffer {
  const data = tcp.payload ?? Buffer.alloc(0);
  const repr = new TcpRepr({
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    seq: tcp.seq ?? 0x01020304,
    ack: tcp.ack ?? 0x0a0b0c0d,
    flags: tcp.flags ?? 0x010,
    window: 64240,
    urgent: 0,
    payloadLength: data.length,
  });
  const segment = Buffer.concat([junk(repr.encodedLength), data]);
  return ipv4Packet(ip, TCP, segment, (buf, off) =>
    repr.encodeInto(buf, off, ipv4PseudoHeaderSum(buf, 0, TCP, segment.length)),
  );
}

export interface UdpFields {
  srcPort: number;
  dstPort: number;
  payload?: Buffer;
  /** Send checksum 0 ("none"). */
  noChecksum?: boolean;
}

export function udpPacket(ip: IpFields, udp: UdpFields): Buffer {
  const data = udp.payload ?? Buffer.alloc(0);
  const repr = new UdpRepr({ srcPort: udp.srcPort, dstPort: udp.dstPort, payloadLength: data.length });
  if (udp.noChecksum) repr.checksum = 0;
  const datagram = Buffer.concat([junk(8), data]);
  return ipv4Packet(ip, UDP, datagram, (buf, off) =>
    repr.encodeInto(buf, off, ipv4PseudoHeaderSum(buf, 0, UDP, datagram.length)),
  );
}

export function icmpPacket(
  ip: IpFields,
  icmp: { type: number; code: number; rest?: number; body: Buffer },
): Buffer {
  const repr = new Icmpv4Repr({
    type: icmp.type,
    code: icmp.code,
    rest: icmp.rest ?? 0,
    payloadLength: icmp.body.length,
  });
  const message = Buffer.concat([junk(8), icmp.body]);
  return ipv4Packet(ip, ICMP, message, (buf, off) => repr.encodeInto(buf, off));
}

/**
 * An anonymity-layer packet (protocol 253 unless given): current SID (hi, lo), a sequence number and
 * `sealedLength` bytes standing for the sealed part and tag (the prefilter and guard never open it).
 */
export function anonPacket(ip: IpFields, sidHi: number, sidLo: number, sealedLength = 41, protocol = ANON) {
  const body = junk(16 + sealedLength);
  body.writeUInt32BE(sidHi >>> 0, 0);
  body.writeUInt32BE(sidLo >>> 0, 4);
  body.writeUInt32BE(0, 8);
  body.writeUInt32BE(7, 12);
  return ipv4Packet(ip, protocol, body);
}

/**
 * Splits an unfragmented IPv4 packet into fragments whose payloads are `sizes` bytes (multiples of 8 but
 * the last; the remainder goes into a last fragment), each with its own header and checksum.
 */
export function fragment(packet: Buffer, sizes: number[]): Buffer[] {
  const ihl = (packet[0]! & 0x0f) << 2;
  const payload = packet.subarray(ihl);
  const out: Buffer[] = [];
  let at = 0;
  const cuts = [...sizes];
  while (at < payload.length) {
    const size = Math.min(cuts.shift() ?? payload.length - at, payload.length - at);
    const last = at + size >= payload.length;
    const frag = Buffer.concat([packet.subarray(0, ihl), payload.subarray(at, at + size)]);
    frag.writeUInt16BE(ihl + size, 2);
    frag.writeUInt16BE(((last ? 0 : 0x2000) | (at >> 3)) & 0xffff, 6);
    frag.writeUInt16BE(0, 10);
    frag.writeUInt16BE(internetChecksum(frag, 0, ihl), 10);
    out.push(frag);
    at += size;
  }
  return out;
}

/** Puts fragments (in any order) back together into one unfragmented packet. */
export function reassemble(fragments: Buffer[]): Buffer {
  const ihl = (fragments[0]![0]! & 0x0f) << 2;
  const sorted = [...fragments].sort((a, b) => (a.readUInt16BE(6) & 0x1fff) - (b.readUInt16BE(6) & 0x1fff));
  const payload = Buffer.concat(sorted.map((f) => f.subarray(ihl, f.readUInt16BE(2))));
  const whole = Buffer.concat([sorted[0]!.subarray(0, ihl), payload]);
  whole.writeUInt16BE(ihl + payload.length, 2);
  whole.writeUInt16BE(0, 6);
  return whole;
}

/** The checksums a full computation gives for an unfragmented IPv4 packet, from scratch. */
export function recomputedChecksums(packet: Buffer): { ip: number; transport: number | null } {
  const b = Buffer.from(packet);
  const ihl = (b[0]! & 0x0f) << 2;
  b.writeUInt16BE(0, 10);
  const ip = internetChecksum(b, 0, ihl);
  const protocol = b[9]!;
  const length = b.readUInt16BE(2) - ihl;
  const at = protocol === TCP ? 16 : protocol === UDP ? 6 : -1;
  if (at < 0) return { ip, transport: null };
  if (protocol === UDP && b.readUInt16BE(ihl + 6) === 0) return { ip, transport: 0 };
  b.writeUInt16BE(0, ihl + at);
  const sum = foldChecksum(onesSum(b, ihl, length, ipv4PseudoHeaderSum(b, 0, protocol, length)));
  return { ip, transport: protocol === UDP ? sum || 0xffff : sum };
}

/** The checksums the packet carries, in the shape recomputedChecksums returns. */
export function carriedChecksums(packet: Buffer): { ip: number; transport: number | null } {
  const ihl = (packet[0]! & 0x0f) << 2;
  const protocol = packet[9]!;
  const at = protocol === TCP ? 16 : protocol === UDP ? 6 : -1;
  return { ip: packet.readUInt16BE(10), transport: at < 0 ? null : packet.readUInt16BE(ihl + at) };
}

const MACS = hex('0e2fdfd27da7 a2da45295ec8');

/** An Ethernet frame around an IPv4 packet. */
export function ethernet(packet: Buffer): Buffer {
  return Buffer.concat([MACS, hex('0800'), packet]);
}

/** Packets as Ethernet frames, 1 ms apart, for a capture file. */
export function framesOf(packets: Buffer[], startNs = 1_700_000_000_000_000_000n): Packet[] {
  return packets.map((p, i) => ({
    data: ethernet(p),
    ts: startNs + BigInt(i) * 1_000_000n,
    link: LinkType.ETHERNET,
  }));
}
