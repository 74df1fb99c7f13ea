/**
 * The IPv4 header the agents put around transport bytes: the outer header of an anonymity-layer packet
 * (source = the subnet's broadcast address, protocol 253), and the header of an inner packet handed to a
 * local stack after opening (source = the remote end, destination = this machine), whose TCP/UDP checksum
 * must then be recomputed: the sealed transport bytes carry the checksum the sender's stack computed over
 * its own pseudo-header (its own address, or the responder's virtual client address), which differs from
 * the receiving stack's. Integrity in between is the AEAD tag's job; the recomputed checksum only makes the
 * receiving stack accept the segment.
 *
 * Everything writes into the caller's buffer, the transport bytes already in place after the header: no
 * copy, no allocation.
 */
import { foldChecksum, internetChecksum, onesSum } from '../codec/checksum.js';
import { writeIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { TCP_HEADER_LENGTH, TCP_PROTOCOL } from '../codec/tcp.js';
import { UDP_HEADER_LENGTH, UDP_PROTOCOL } from '../codec/udp.js';

const DEFAULT_TTL = 64;

/**
 * Writes an IPv4 header (IHL 5, no options) at buf[off, off + 20) for a packet whose transportLength
 * transport bytes already sit at off + 20, with its header checksum. Returns the packet's total length.
 * A total length above 65535 is a programmer error: it throws.
 */
export function writeIpv4Header(
  buf: Uint8Array,
  off: number,
  transportLength: number,
  protocol: number,
  src: number,
  dst: number,
  id: number,
  ttl = DEFAULT_TTL,
): number {
  const total = IPV4_HEADER_LENGTH + transportLength;
  if (total > 0xffff)
    throw new RangeError(`IPv4 packet of ${total} bytes exceeds 65535; the transport part is too long`);
  buf[off] = 0x45;
  buf[off + 1] = 0;
  buf[off + 2] = total >>> 8;
  buf[off + 3] = total & 0xff;
  buf[off + 4] = (id >>> 8) & 0xff;
  buf[off + 5] = id & 0xff;
  buf[off + 6] = 0; // no flags: the anonymity layer's receivers do not reassemble, see the agents' docs
  buf[off + 7] = 0;
  buf[off + 8] = ttl;
  buf[off + 9] = protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  writeIpv4(buf, off + 12, src);
  writeIpv4(buf, off + 16, dst);
  const sum = internetChecksum(buf, off, IPV4_HEADER_LENGTH);
  buf[off + 10] = sum >>> 8;
  buf[off + 11] = sum & 0xff;
  return total;
}

/** 'ok', or why the transport checksum could not be set: the segment is shorter than its header. */
export type TransportChecksumResult = 'ok' | 'truncated';

/**
 * Recomputes the TCP or UDP checksum of the IPv4 packet at buf[ipOff, ipOff + total length) over its
 * pseudo-header (the addresses now in the header). Other protocols are left as they are: ICMP's checksum
 * covers no addresses. A UDP checksum of 0 ("none", RFC 768) stays 0; a computed 0 is sent as 0xffff.
 */
export function setTransportChecksum(buf: Uint8Array, ipOff: number): TransportChecksumResult {
  const headerLength = (buf[ipOff]! & 0x0f) << 2;
  const total = (buf[ipOff + 2]! << 8) | buf[ipOff + 3]!;
  const protocol = buf[ipOff + 9]!;
  const t = ipOff + headerLength;
  const length = total - headerLength;
  let field: number;
  if (protocol === TCP_PROTOCOL) {
    if (length < TCP_HEADER_LENGTH) return 'truncated';
    field = t + 16;
  } else if (protocol === UDP_PROTOCOL) {
    if (length < UDP_HEADER_LENGTH) return 'truncated';
    field = t + 6;
    if (buf[field] === 0 && buf[field + 1] === 0) return 'ok';
  } else return 'ok';
  buf[field] = 0;
  buf[field + 1] = 0;
  // Pseudo-header: both addresses, protocol, transport length.
  let sum = onesSum(buf, ipOff + 12, 8, protocol + length);
  sum = foldChecksum(onesSum(buf, t, length, sum));
  if (sum === 0 && protocol === UDP_PROTOCOL) sum = 0xffff;
  buf[field] = sum >>> 8;
  buf[field + 1] = sum & 0xff;
  return 'ok';
}
