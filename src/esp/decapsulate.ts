import { internetChecksum, updateChecksum16 } from '../codec/checksum.js';
import { classifyNattPayload, ESP_HEADER_LENGTH, ESP_PROTOCOL } from '../codec/esp.js';
import { readIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { UDP_HEADER_LENGTH, UDP_PROTOCOL } from '../codec/udp.js';
import {
  NEXT_HEADER_AGGFRAG,
  NEXT_HEADER_DUMMY,
  NEXT_HEADER_IPV4,
  NEXT_HEADER_IPV6,
  readU32,
  view,
  writeU16,
} from './esp-format.js';
import type { SecurityAssociation } from './sa.js';
import type { SecurityAssociationDatabase } from './sad.js';

/** Why an inbound packet was not delivered (counted by the stage as dropped.<reason>). */
export type DecapDrop =
  /** Not ESP at all (other protocols, IKE on the NAT-T port): a stage passes these on untouched. */
  | 'not-esp'
  /** The IP header or the ESP packet is shorter than its own fields say. */
  | 'truncated'
  /** Lengths that cannot be ESP for this SA's suite (e.g. CBC ciphertext not whole blocks). */
  | 'malformed'
  /** An outer fragment: reassemble before decapsulating. */
  | 'fragment'
  /** A NAT keepalive (RFC 3948 §2.3): expected, carries nothing. */
  | 'natt-keepalive'
  | 'unknown-spi'
  | 'sa-expired'
  /** Anti-replay (RFC 4303 §3.4.3): seen before, or left of the window. */
  | 'replayed'
  | 'too-old'
  /** Integrity check failed: forged, corrupted or the wrong key. */
  | 'icv'
  /** Authenticated, but the padding is not 1, 2, 3, ... or longer than the payload (RFC 4303 §2.4). */
  | 'bad-padding'
  /** Next Header 59 (RFC 4303 §2.6): authenticated, replay-checked, discarded. */
  | 'dummy'
  /** A Next Header the SA's mode cannot carry (e.g. TCP in tunnel mode). */
  | 'unexpected-next-header'
  /** The decrypted inner IP packet contradicts itself or the payload length. */
  | 'malformed-inner'
  /** RFC 6040: CE on the outer header of a packet whose inner header is Not-ECT must be dropped. */
  | 'ecn-not-ect'
  | 'too-big';

/** What the last successful decapsulation found; reused from packet to packet. */
export interface DecapInfo {
  sa: SecurityAssociation | null;
  nextHeader: number;
  seqHi: number;
  seqLo: number;
}

export function newDecapInfo(): DecapInfo {
  return { sa: null, nextHeader: 0, seqHi: 0, seqLo: 0 };
}

const ECN_NOT_ECT = 0;
const ECN_ECT1 = 1;
const ECN_ECT0 = 2;
const ECN_CE = 3;

/**
 * Removes one layer of ESP from the IPv4 packet at src[off, off+len), writing the result at out[outOff]:
 * the inner packet in tunnel mode (TFC padding stripped), the rebuilt IPv4 packet in transport mode, the
 * AGGFRAG payload in iptfs mode. Returns its length or why the packet was dropped; never throws on bytes.
 *
 * Order (DESIGN.md §7): SA lookup → replay check (SeqHi inferred) → ICV → decrypt → padding check →
 * replay window update → dummy discard → inner packet. The window moves only for authenticated packets, so
 * a forged packet cannot push it forward. src is never modified; src and out must not overlap.
 */
export function decapsulate(
  sad: SecurityAssociationDatabase,
  src: Uint8Array,
  off: number,
  len: number,
  out: Uint8Array,
  outOff: number,
  info: DecapInfo,
): number | DecapDrop {
  if (len < IPV4_HEADER_LENGTH || src[off]! >> 4 !== 4) return 'not-esp';
  const ihl = (src[off]! & 0x0f) * 4;
  const ipLength = (src[off + 2]! << 8) | src[off + 3]!;
  if (ihl < IPV4_HEADER_LENGTH || ipLength < ihl) return 'malformed';
  const protocol = src[off + 9]!;
  let espOff = off + ihl;
  if (protocol === UDP_PROTOCOL) {
    if (len < ihl + UDP_HEADER_LENGTH) return 'not-esp';
    const dstPort = (src[espOff + 2]! << 8) | src[espOff + 3]!;
    if (!sad.nattPorts.has(dstPort)) return 'not-esp';
    if (ipLength > len) return 'truncated';
    const kind = classifyNattPayload(src, espOff + UDP_HEADER_LENGTH, ipLength - ihl - UDP_HEADER_LENGTH);
    if (kind === 'keepalive') return 'natt-keepalive';
    if (kind !== 'esp') return 'not-esp';
    espOff += UDP_HEADER_LENGTH;
  } else if (protocol !== ESP_PROTOCOL) {
    return 'not-esp';
  }
  if (ipLength > len) return 'truncated';
  if (((src[off + 6]! << 8) | src[off + 7]!) & 0x3fff) return 'fragment';
  const espEnd = off + ipLength;
  if (espEnd - espOff < ESP_HEADER_LENGTH) return 'truncated';

  const sa = sad.lookup(readU32(src, espOff), readIpv4(src, off + 16));
  if (sa === undefined) return 'unknown-spi';
  if (sa.expired) return 'sa-expired';
  const suite = sa.suite;
  const keys = sa.keys;
  const ivOff = espOff + ESP_HEADER_LENGTH;
  const dataOff = ivOff + suite.ivLength;
  const icvOff = espEnd - suite.icvLength;
  const dataLength = icvOff - dataOff;
  if (dataLength < 2) return 'truncated';
  // CBC decrypts whole blocks only; AEAD and null suites align to 4 bytes, which receivers need not enforce.
  if (keys.cbc && dataLength % suite.blockSize !== 0) return 'malformed';

  const seqLo = readU32(src, espOff + 4);
  let seqHi = 0;
  const replay = sa.replay;
  if (replay) {
    const verdict = replay.check(seqLo);
    if (verdict !== 'ok') return verdict;
    seqHi = replay.inferredHi;
  }
  sa.setSequence(seqHi, seqLo);

  // Transport mode rebuilds the IP header in front of the payload, so the plaintext goes after its room.
  const headerRoom = sa.mode === 'transport' ? ihl : 0;
  const ptOff = outOff + headerRoom;
  // An AEAD opens ciphertext and ICV copied into the output, so there it needs room for the ICV too.
  if (ptOff + dataLength + (keys.aead ? suite.icvLength : 0) > out.length) return 'too-big';
  if (keys.aead) {
    // One copy of ciphertext and ICV into the output, then views of the output (reused packet after
    // packet) for the AEAD: a fresh view per argument costs more than the copy.
    out.set(view(src, dataOff, espEnd), ptOff);
    const nonce = sa.nonce;
    for (let i = 0; i < 8; i++) nonce[4 + i] = src[ivOff + i]!;
    const views = sa.views;
    const icv = views.view(out, ptOff + dataLength, suite.icvLength);
    if (!keys.aead.open(nonce, sa.aad, views.view(out, ptOff, dataLength), icv)) return 'icv';
  } else {
    const icv = view(src, icvOff, espEnd);
    if (keys.mac && !keys.mac.verify(view(src, espOff, icvOff), sa.macExtra, icv)) return 'icv';
    out.set(view(src, dataOff, icvOff), ptOff);
    if (keys.cbc) keys.cbc.decrypt(view(src, ivOff, dataOff), view(out, ptOff, ptOff + dataLength));
  }

  const trailerOff = ptOff + dataLength - 2;
  const padLength = out[trailerOff]!;
  const nextHeader = out[trailerOff + 1]!;
  if (padLength > dataLength - 2) return 'bad-padding';
  const padOff = trailerOff - padLength;
  for (let i = 0; i < padLength; i++) if (out[padOff + i] !== i + 1) return 'bad-padding';

  replay?.update(seqHi, seqLo);
  const payloadLength = padOff - ptOff;
  info.sa = sa;
  info.nextHeader = nextHeader;
  info.seqHi = seqHi;
  info.seqLo = seqLo;
  const result =
    nextHeader === NEXT_HEADER_DUMMY
      ? 'dummy'
      : deliver(sa, src, off, ihl, out, outOff, payloadLength, nextHeader);
  // Lifetimes count what the sender counted: the payload without TFC padding (the inner packet in tunnel mode).
  sa.account(typeof result === 'number' && sa.mode === 'tunnel' ? result : payloadLength);
  return result;
}

/** The decrypted payload as the SA's mode hands it on. */
function deliver(
  sa: SecurityAssociation,
  src: Uint8Array,
  off: number,
  ihl: number,
  out: Uint8Array,
  outOff: number,
  payloadLength: number,
  nextHeader: number,
): number | DecapDrop {
  switch (sa.mode) {
    case 'transport':
      if (nextHeader === NEXT_HEADER_IPV4 || nextHeader === NEXT_HEADER_IPV6) return 'unexpected-next-header';
      out.set(view(src, off, off + ihl), outOff);
      out[outOff + 9] = nextHeader;
      writeU16(out, outOff + 2, ihl + payloadLength);
      writeU16(out, outOff + 10, 0);
      writeU16(out, outOff + 10, internetChecksum(out, outOff, ihl));
      return ihl + payloadLength;
    case 'iptfs':
      return nextHeader === NEXT_HEADER_AGGFRAG ? payloadLength : 'unexpected-next-header';
    default:
      if (nextHeader === NEXT_HEADER_IPV4) return innerIpv4(out, outOff, payloadLength, src[off + 1]! & 3);
      if (nextHeader === NEXT_HEADER_IPV6) return innerIpv6(out, outOff, payloadLength, src[off + 1]! & 3);
      return 'unexpected-next-header';
  }
}

/** Length of the inner IPv4 packet (anything after it is TFC padding), with the ECN decapsulation applied. */
function innerIpv4(out: Uint8Array, off: number, available: number, outerEcn: number): number | DecapDrop {
  if (available < IPV4_HEADER_LENGTH || out[off]! >> 4 !== 4) return 'malformed-inner';
  const ihl = (out[off]! & 0x0f) * 4;
  const length = (out[off + 2]! << 8) | out[off + 3]!;
  if (ihl < IPV4_HEADER_LENGTH || length < ihl || length > available) return 'malformed-inner';
  const oldTos = out[off + 1]!;
  const ecn = decapsulatedEcn(oldTos & 3, outerEcn);
  if (ecn < 0) return 'ecn-not-ect';
  if (ecn !== (oldTos & 3)) {
    const newTos = (oldTos & 0xfc) | ecn;
    const oldWord = (out[off]! << 8) | oldTos;
    out[off + 1] = newTos;
    const sum = (out[off + 10]! << 8) | out[off + 11]!;
    writeU16(out, off + 10, updateChecksum16(sum, oldWord, (out[off]! << 8) | newTos));
  }
  return length;
}

function innerIpv6(out: Uint8Array, off: number, available: number, outerEcn: number): number | DecapDrop {
  if (available < 40 || out[off]! >> 4 !== 6) return 'malformed-inner';
  const length = 40 + ((out[off + 4]! << 8) | out[off + 5]!);
  if (length > available) return 'malformed-inner';
  // Traffic class straddles bytes 0 and 1; ECN is bits 4-5 of byte 1.
  const innerEcn = (out[off + 1]! >> 4) & 3;
  const ecn = decapsulatedEcn(innerEcn, outerEcn);
  if (ecn < 0) return 'ecn-not-ect';
  out[off + 1] = (out[off + 1]! & 0xcf) | (ecn << 4);
  return length;
}

/** RFC 6040 §4.2 Figure 4: the inner ECN after decapsulation, or -1 for drop. */
function decapsulatedEcn(inner: number, outer: number): number {
  if (inner === ECN_NOT_ECT) return outer === ECN_CE ? -1 : ECN_NOT_ECT;
  if (outer === ECN_CE) return ECN_CE;
  if (outer === ECN_ECT1 && inner === ECN_ECT0) return ECN_ECT1;
  return inner;
}
