/**
 * AGGFRAG data blocks (RFC 9347 §2.2.1, §6.1.3): the type nibble that starts every block and the inner
 * packet length read from the IPv4 Total Length or the IPv6 Payload Length (+ 40). The sender checks inner
 * packets with it before queueing them; the receiver finds where each block ends with it.
 */

/** Type nibble of a pad block: the padding runs to the end of the payload. */
export const BLOCK_TYPE_PAD = 0x0;
export const BLOCK_TYPE_IPV4 = 0x4;
export const BLOCK_TYPE_IPV6 = 0x6;

export const IPV4_MIN_LENGTH = 20;
export const IPV6_HEADER_LENGTH = 40;
/** Largest inner packet: an IPv6 packet whose Payload Length is 65535. */
export const INNER_MAX_LENGTH = 0xffff + IPV6_HEADER_LENGTH;

/**
 * Bytes of a block needed before its length is known, from its first byte: 4 for IPv4 (Total Length is
 * bytes 2–3), 6 for IPv6 (Payload Length is bytes 4–5), 0 for any other type (pad or not an inner packet).
 */
export function lengthFieldEnd(firstByte: number): number {
  const type = firstByte >> 4;
  if (type === BLOCK_TYPE_IPV4) return 4;
  if (type === BLOCK_TYPE_IPV6) return 6;
  return 0;
}

/**
 * Length of the inner packet whose first lengthFieldEnd(b[i]) bytes are at b[i]; -1 when that length is
 * impossible (an IPv4 header length below 20 bytes or above the Total Length). IPv6 lengths are always
 * possible: Payload Length + 40 is at least the fixed header.
 */
export function innerPacketLength(b: Uint8Array, i: number): number {
  const first = b[i]!;
  if (first >> 4 === BLOCK_TYPE_IPV6) return ((b[i + 4]! << 8) | b[i + 5]!) + IPV6_HEADER_LENGTH;
  const totalLength = (b[i + 2]! << 8) | b[i + 3]!;
  const headerLength = (first & 0x0f) * 4;
  return headerLength < IPV4_MIN_LENGTH || headerLength > totalLength ? -1 : totalLength;
}
