/**
 * What the ESP engine tests share: an SA config per suite (fixed keys, so runs repeat), sender/receiver
 * pairs, inner packets built with the project's codecs, and one-call wrappers around encapsulate and
 * decapsulate that return owned bytes.
 */
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { UdpRepr } from '../../src/codec/udp.js';
import { type DecapDrop, type DecapInfo, decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { type EncapDrop, encapsulate } from '../../src/esp/encapsulate.js';
import { type EspMode, type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import type { Packet } from '../../src/packet.js';
import type { Stage } from '../../src/stages/stage.js';

export const SUITE_NAMES = Object.keys(SUITES) as SuiteName[];
/** Suites with an integrity check: every change to the ESP part of a packet must be caught. */
export const AUTHENTICATED_SUITES = SUITE_NAMES.filter((s) => SUITES[s].icvLength > 0);
/** Suites without one (RFC 2410 null, RFC 3602's confidentiality-only CBC): tampering can go unseen. */
export const UNAUTHENTICATED_SUITES = SUITE_NAMES.filter((s) => SUITES[s].icvLength === 0);
export const MODES: readonly EspMode[] = ['tunnel', 'transport'];

export const TUNNEL = { src: '198.18.0.1', dst: '198.18.0.2' } as const;
export const INNER = { src: '198.18.1.1', dst: '198.18.2.2' } as const;

/** Key material of the right length for a suite: a byte pattern offset by `seed`, so SAs differ. */
export function keysFor(suite: SuiteName, seed = 0): { encKey: Uint8Array; authKey: Uint8Array } {
  const s = SUITES[suite];
  const pattern = (n: number, start: number) =>
    Uint8Array.from({ length: n }, (_, i) => (start + i * 7) & 0xff);
  const encLength = s.encKeyLengths.length === 0 ? 0 : s.encKeyLengths[0]! + s.saltLength;
  const authLength = s.hmac === 'sha1' ? 20 : s.hmac === 'sha256' ? 32 : 0;
  return { encKey: pattern(encLength, 0x10 + seed), authKey: pattern(authLength, 0x80 + seed) };
}

/** An SA config for `suite` in `mode` (tunnel endpoints TUNNEL), with `overrides` on top. */
export function saConfig(suite: SuiteName, mode: EspMode, overrides: Partial<SaConfig> = {}): SaConfig {
  return {
    spi: 0x0000a5f8,
    mode,
    suite,
    ...keysFor(suite),
    tunnel: mode === 'transport' ? null : { ...TUNNEL },
    ...overrides,
  };
}

/** A sender and a receiver made from the same config (an SA is one-way: each side keeps its own state). */
export function saPair(config: SaConfig): { tx: SecurityAssociation; rx: SecurityAssociation } {
  return { tx: new SecurityAssociation(config), rx: new SecurityAssociation(config) };
}

export interface UdpPacketOptions {
  payload?: Uint8Array;
  /** TOS byte: DSCP << 2 | ECN. */
  tos?: number;
  id?: number;
  /** The 3-bit flags field. */
  flags?: number;
  fragOffset?: number;
  ttl?: number;
  options?: Buffer;
  src?: string;
  dst?: string;
}

/** An IPv4/UDP packet with valid checksums, built with the project's codecs. */
export function udpPacket(o: UdpPacketOptions = {}): Buffer {
  const payload = Buffer.from(o.payload ?? Buffer.from('pktveil esp engine test payload'));
  const ip = new Ipv4Repr({
    dscp: (o.tos ?? 0) >> 2,
    ecn: (o.tos ?? 0) & 3,
    id: o.id ?? 0x1234,
    flags: o.flags ?? 0b010,
    fragOffset: o.fragOffset ?? 0,
    ttl: o.ttl ?? 64,
    protocol: 17,
    src: parseIpv4(o.src ?? INNER.src),
    dst: parseIpv4(o.dst ?? INNER.dst),
    payloadLength: 8 + payload.length,
    ...(o.options ? { options: o.options } : {}),
  });
  const buf = Buffer.alloc(ip.encodedLength + 8 + payload.length);
  const ihl = ip.encodeInto(buf, 0);
  payload.copy(buf, ihl + 8);
  new UdpRepr({ srcPort: 40000, dstPort: 5353, payloadLength: payload.length }).encodeInto(
    buf,
    ihl,
    ipv4PseudoHeaderSum(buf, 0, 17, 8 + payload.length),
  );
  return buf;
}

/** An IPv6/UDP packet (UDP checksum left 0: only the tunnel carries it here) with traffic class `tc`. */
export function ipv6Packet(payloadLength = 24, tc = 0): Buffer {
  const buf = Buffer.alloc(40 + 8 + payloadLength);
  buf.writeUInt32BE(((6 << 28) | (tc << 20) | 0x12345) >>> 0, 0);
  buf.writeUInt16BE(8 + payloadLength, 4);
  buf[6] = 17;
  buf[7] = 64;
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(buf, 8);
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(buf, 24);
  buf.writeUInt16BE(40001, 40);
  buf.writeUInt16BE(5353, 42);
  buf.writeUInt16BE(8 + payloadLength, 44);
  for (let i = 0; i < payloadLength; i++) buf[48 + i] = i & 0xff;
  return buf;
}

/** Encapsulates `inner` with `sa`; returns the ESP packet as bytes of its own, or why it was refused. */
export function seal(sa: SecurityAssociation, inner: Uint8Array): Buffer | EncapDrop {
  const out = Buffer.alloc(inner.length + 512);
  const n = encapsulate(sa, inner, 0, inner.length, out, 0);
  return typeof n === 'string' ? n : Buffer.from(out.subarray(0, n));
}

/** As seal, for tests that know the SA accepts the packet. */
export function mustSeal(sa: SecurityAssociation, inner: Uint8Array): Buffer {
  const r = seal(sa, inner);
  if (typeof r === 'string') throw new Error(`encapsulate refused the packet: ${r}`);
  return r;
}

/** Decapsulates `pkt` with the SAs in `sad`; returns the result as bytes of its own, or why it was dropped. */
export function open(
  sad: SecurityAssociationDatabase,
  pkt: Uint8Array,
  info: DecapInfo = newDecapInfo(),
): Buffer | DecapDrop {
  const out = Buffer.alloc(pkt.length + 64);
  const n = decapsulate(sad, pkt, 0, pkt.length, out, 0, info);
  return typeof n === 'string' ? n : Buffer.from(out.subarray(0, n));
}

/** A database holding just these SAs. */
export function sadOf(...sas: SecurityAssociation[]): SecurityAssociationDatabase {
  return new SecurityAssociationDatabase(sas);
}

/** The 32-bit value at buf[off] (big-endian). */
export function u32(buf: Uint8Array, off: number): number {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readUInt32BE(off);
}

/** Length of the outer IPv4 header in front of ESP (and UDP under NAT-T). */
export function espOffset(pkt: Uint8Array): number {
  const ihl = (pkt[0]! & 0x0f) * 4;
  return pkt[9] === 17 ? ihl + 8 : ihl;
}

/** What a stage did with one packet: the frames it emitted (copied) and the drop counters that rose. */
export function runOnce(stage: Stage, pkt: Packet): { emitted: Packet[]; dropped: string[] } {
  const before = stage.stats().dropped;
  const emitted: Packet[] = [];
  stage.process(pkt, (p) => emitted.push({ ...p, data: Buffer.from(p.data) }));
  const after = stage.stats().dropped;
  const dropped: string[] = [];
  for (const [reason, n] of Object.entries(after))
    for (let i = before[reason] ?? 0; i < n; i++) dropped.push(reason);
  return { emitted, dropped };
}

/** A raw IPv4 packet (LINKTYPE_IPV4) as a stage input. */
export function rawPacket(data: Uint8Array, ts = 0n): Packet {
  return { data: Buffer.from(data), ts, link: 228 };
}
