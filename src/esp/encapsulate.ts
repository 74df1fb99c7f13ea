import { randomFillSync } from 'node:crypto';
import { internetChecksum } from '../codec/checksum.js';
import { ESP_HEADER_LENGTH, ESP_PROTOCOL } from '../codec/esp.js';
import { writeIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { UDP_HEADER_LENGTH, UDP_PROTOCOL } from '../codec/udp.js';
import {
  NEXT_HEADER_AGGFRAG,
  NEXT_HEADER_DUMMY,
  NEXT_HEADER_IPV4,
  NEXT_HEADER_IPV6,
  view,
  writeU16,
  writeU32,
} from './esp-format.js';
import { hexSpi, type SecurityAssociation } from './sa.js';

/** Why an outbound packet was not encapsulated (counted by the stage as dropped.<reason>). */
export type EncapDrop =
  /** The SA reached a hard lifetime or its sequence numbers ran out: rekey. */
  | 'sa-expired'
  /** Not an IPv4 packet (or, in tunnel mode, not IPv6 either). */
  | 'not-ip'
  /** The inner IP header contradicts itself or the bytes given (length fields, IHL). */
  | 'malformed-inner'
  /** Transport mode protects whole datagrams; a fragment has to be reassembled first. */
  | 'fragment'
  /** The ESP packet would exceed 65535 bytes or the output buffer. */
  | 'too-big';

const IPV4_DF = 0x4000;

/**
 * ESP-encapsulates (RFC 4303 §3.1) the IP packet at src[off, off+len) with `sa` and writes the result, an
 * IPv4 packet, at out[outOff]. Returns the bytes written or why it refused. src and out must not overlap.
 *
 * Tunnel mode wraps the whole packet behind a new outer IPv4 header (DSCP copied, ECN copied per RFC 6040
 * normal mode, DF per the SA's policy). Transport mode inserts ESP after the IPv4 header (options kept) and
 * fixes its protocol, length and checksum. Trailing bytes beyond the IP total length (Ethernet padding)
 * are not part of the packet and are left out. `tfcPadTo` (tunnel mode only; default the SA's) pads the
 * inner packet to that many bytes with TFC padding (RFC 4303 §2.7), per packet.
 */
export function encapsulate(
  sa: SecurityAssociation,
  src: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
  outOff: number,
  tfcPadTo = sa.tfcPadTo,
): number | EncapDrop {
  if (sa.expired) return 'sa-expired';
  if (len < 1) return 'not-ip';
  const version = src[off]! >> 4;
  let ipLength: number;
  let ihl = 0;
  let tos: number;
  if (version === 4) {
    if (len < IPV4_HEADER_LENGTH) return 'malformed-inner';
    ihl = (src[off]! & 0x0f) * 4;
    ipLength = (src[off + 2]! << 8) | src[off + 3]!;
    if (ihl < IPV4_HEADER_LENGTH || ipLength < ihl || ipLength > len) return 'malformed-inner';
    tos = src[off + 1]!;
  } else if (version === 6 && sa.mode === 'tunnel') {
    if (len < 40) return 'malformed-inner';
    ipLength = 40 + ((src[off + 4]! << 8) | src[off + 5]!);
    if (ipLength > len) return 'malformed-inner';
    tos = ((src[off]! & 0x0f) << 4) | (src[off + 1]! >> 4);
  } else {
    return 'not-ip';
  }

  const transport = sa.mode === 'transport';
  let payloadOff: number;
  let payloadLength: number;
  let nextHeader: number;
  if (transport) {
    if (((src[off + 6]! << 8) | src[off + 7]!) & 0x3fff) return 'fragment';
    payloadOff = off + ihl;
    payloadLength = ipLength - ihl;
    nextHeader = src[off + 9]!;
  } else {
    payloadOff = off;
    payloadLength = ipLength;
    nextHeader = version === 4 ? NEXT_HEADER_IPV4 : NEXT_HEADER_IPV6;
  }
  // The receiver strips TFC padding by the inner IP length, which only tunnel mode has.
  const tfcLength = !transport && tfcPadTo > payloadLength ? tfcPadTo - payloadLength : 0;
  const n = writeEsp(
    sa,
    src,
    payloadOff,
    payloadLength,
    tfcLength,
    nextHeader,
    out,
    outOff,
    transport ? ihl : 0,
  );
  if (typeof n === 'string') return n;
  if (transport) {
    // The original header, options and all, now announcing ESP (or UDP for NAT-T) and the new length.
    out.set(view(src, off, off + ihl), outOff);
    out[outOff + 9] = sa.natt ? UDP_PROTOCOL : ESP_PROTOCOL;
    writeU16(out, outOff + 2, n);
    writeU16(out, outOff + 10, 0);
    writeU16(out, outOff + 10, internetChecksum(out, outOff, ihl));
  } else if (version === 4) {
    const dfBit =
      sa.df === 'set' ? IPV4_DF : sa.df === 'clear' ? 0 : ((src[off + 6]! << 8) | src[off + 7]!) & IPV4_DF;
    writeOuterIpv4(sa, out, outOff, n, tos, dfBit);
  } else {
    writeOuterIpv4(sa, out, outOff, n, tos, sa.df === 'set' ? IPV4_DF : 0);
  }
  return n;
}

/**
 * A dummy packet (RFC 4303 §2.6, Next Header 59) carrying `length` random bytes, from the SA's tunnel
 * endpoints. The receiver authenticates and replay-checks it, then discards it.
 */
export function encapsulateDummy(
  sa: SecurityAssociation,
  length: number,
  out: Uint8Array,
  outOff: number,
): number | EncapDrop {
  if (sa.expired) return 'sa-expired';
  if (sa.tunnelDst === 0)
    throw new Error('dummy packets need the SA\'s "tunnel" endpoints for their IP header');
  const headerLength =
    IPV4_HEADER_LENGTH + (sa.natt ? UDP_HEADER_LENGTH : 0) + ESP_HEADER_LENGTH + sa.suite.ivLength;
  const payloadOff = outOff + headerLength;
  if (payloadOff + length > out.length) return 'too-big';
  randomFillSync(out, payloadOff, length);
  // writeEsp copies the payload from src; copying a region onto itself is a no-op.
  const n = writeEsp(sa, out, payloadOff, length, 0, NEXT_HEADER_DUMMY, out, outOff, 0);
  if (typeof n === 'string') return n;
  writeOuterIpv4(sa, out, outOff, n, 0, sa.df === 'set' ? IPV4_DF : 0);
  return n;
}

/**
 * IP-TFS (RFC 9347): ESP-encapsulates the AGGFRAG payload at src[off, off+len) (Next Header 144, built by
 * the caller) with an iptfs-mode SA behind the SA's outer IPv4 header. DF is set only when the SA's policy
 * says 'set': an outer packet has no inner header to copy DF from.
 */
export function encapsulateAggfrag(
  sa: SecurityAssociation,
  src: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
  outOff: number,
): number | EncapDrop {
  if (sa.expired) return 'sa-expired';
  if (sa.mode !== 'iptfs')
    throw new Error(`SA ${hexSpi(sa.spi)} is in ${sa.mode} mode; AGGFRAG payloads need iptfs`);
  const n = writeEsp(sa, src, off, len, 0, NEXT_HEADER_AGGFRAG, out, outOff, 0);
  if (typeof n === 'string') return n;
  writeOuterIpv4(sa, out, outOff, n, 0, sa.df === 'set' ? IPV4_DF : 0);
  return n;
}

/**
 * Writes [UDP] ESP header, IV, payload, TFC padding, padding, trailer and ICV behind `ipHeaderLength` bytes
 * left for the caller's IPv4 header at out[outOff]; returns the total length including that header.
 */
function writeEsp(
  sa: SecurityAssociation,
  src: Uint8Array,
  payloadOff: number,
  payloadLength: number,
  tfcLength: number,
  nextHeader: number,
  out: Uint8Array,
  outOff: number,
  transportIhl: number,
): number | EncapDrop {
  const suite = sa.suite;
  const ipHeaderLength = transportIhl || IPV4_HEADER_LENGTH;
  const udpLength = sa.natt ? UDP_HEADER_LENGTH : 0;
  const espOff = outOff + ipHeaderLength + udpLength;
  const ivOff = espOff + ESP_HEADER_LENGTH;
  const dataOff = ivOff + suite.ivLength;
  const unpadded = payloadLength + tfcLength + 2;
  const padLength = (suite.blockSize - (unpadded % suite.blockSize)) % suite.blockSize;
  const dataLength = unpadded + padLength;
  const total = dataOff + dataLength + suite.icvLength - outOff;
  if (total > 0xffff || outOff + total > out.length) return 'too-big';

  if (sa.natt) {
    const udpOff = outOff + ipHeaderLength;
    writeU16(out, udpOff, sa.natt.srcPort);
    writeU16(out, udpOff + 2, sa.natt.dstPort);
    writeU16(out, udpOff + 4, total - ipHeaderLength);
    // RFC 3948 §2.1: the UDP checksum is zero over IPv4 (ESP carries its own integrity check).
    writeU16(out, udpOff + 6, 0);
  }
  const seqHi = sa.seqHi;
  const seqLo = sa.seqLo;
  writeU32(out, espOff, sa.spi);
  writeU32(out, espOff + 4, seqLo);
  sa.writeIv(out, ivOff);
  if (src !== out || payloadOff !== dataOff)
    out.set(view(src, payloadOff, payloadOff + payloadLength), dataOff);
  let p = dataOff + payloadLength;
  if (tfcLength > 0) {
    out.fill(0, p, p + tfcLength);
    p += tfcLength;
  }
  // RFC 4303 §2.4: monotonically increasing padding bytes 1, 2, 3, ...
  for (let i = 1; i <= padLength; i++) out[p++] = i;
  out[p++] = padLength;
  out[p++] = nextHeader;

  sa.setSequence(seqHi, seqLo);
  const keys = sa.keys;
  const icvOff = dataOff + dataLength;
  const views = sa.views;
  if (keys.aead) {
    keys.aead.seal(
      sa.nonce,
      sa.aad,
      views.view(out, dataOff, dataLength),
      views.view(out, icvOff, suite.icvLength),
    );
  } else {
    if (keys.cbc)
      keys.cbc.encrypt(views.view(out, ivOff, suite.ivLength), views.view(out, dataOff, dataLength));
    if (keys.mac)
      keys.mac.compute(
        views.view(out, espOff, icvOff - espOff),
        sa.macExtra,
        views.view(out, icvOff, suite.icvLength),
      );
  }
  sa.advanceSeq();
  sa.account(payloadLength);
  return total;
}

function writeOuterIpv4(
  sa: SecurityAssociation,
  out: Uint8Array,
  off: number,
  totalLength: number,
  innerTos: number,
  flagsAndOffset: number,
): void {
  out[off] = 0x45;
  // DSCP copied (RFC 4301 §5.1.2.1); ECN copied too, CE included: RFC 6040 §4.1 normal mode.
  out[off + 1] = innerTos;
  writeU16(out, off + 2, totalLength);
  writeU16(out, off + 4, sa.ipId);
  sa.ipId = (sa.ipId + 1) & 0xffff;
  writeU16(out, off + 6, flagsAndOffset);
  out[off + 8] = sa.ttl;
  out[off + 9] = sa.natt ? UDP_PROTOCOL : ESP_PROTOCOL;
  writeU16(out, off + 10, 0);
  writeIpv4(out, off + 12, sa.tunnelSrc);
  writeIpv4(out, off + 16, sa.tunnelDst);
  writeU16(out, off + 10, internetChecksum(out, off, IPV4_HEADER_LENGTH));
}
