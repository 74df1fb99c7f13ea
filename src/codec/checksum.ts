/**
 * The Internet checksum (RFC 1071): full computation, verification, pseudo-header sums for TCP/UDP,
 * and incremental update when one field changes (RFC 1624, eqn. 3).
 *
 * Sums are kept unfolded (plain numbers below 2^31) so pieces can be added together before one fold.
 */

/** Adds the 16-bit big-endian words of buf[off, off+len) to `sum`; an odd last byte is padded with zero. */
export function onesSum(buf: Uint8Array, off: number, len: number, sum = 0): number {
  const evenEnd = off + (len & ~1);
  let i = off;
  while (i < evenEnd) {
    // Fold every 32k words so the accumulator stays below 2^32 (where `>>>` is exact).
    const chunkEnd = Math.min(evenEnd, i + 65536);
    for (; i < chunkEnd; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (len & 1) sum += buf[evenEnd]! << 8;
  return sum;
}

/** Folds carries into 16 bits and complements: the value that goes into a checksum field. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Checksum of a byte range (with the checksum field itself zeroed by the caller when computing). */
export function internetChecksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return foldChecksum(onesSum(buf, off, len, initial));
}

/** True when a range that includes its checksum field sums to 0xffff, i.e. the checksum is right. */
export function checksumVerifies(buf: Uint8Array, off: number, len: number, initial = 0): boolean {
  return foldChecksum(onesSum(buf, off, len, initial)) === 0;
}

/**
 * Unfolded sum of the IPv4 pseudo-header (RFC 793/768): source and destination addresses, protocol and
 * upper-layer length. `ipOff` is the offset of the IPv4 header in `buf`.
 */
export function ipv4PseudoHeaderSum(
  buf: Uint8Array,
  ipOff: number,
  protocol: number,
  upperLength: number,
): number {
  return onesSum(buf, ipOff + 12, 8, protocol + upperLength);
}

/** Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1). `ipOff` is the offset of the IPv6 header. */
export function ipv6PseudoHeaderSum(
  buf: Uint8Array,
  ipOff: number,
  nextHeader: number,
  upperLength: number,
): number {
  return onesSum(buf, ipOff + 8, 32, nextHeader + (upperLength >>> 16) + (upperLength & 0xffff));
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word covered by it changes from `oldWord` to
 * `newWord`, without touching the rest of the data: HC' = ~(~HC + ~m + m').
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return foldChecksum(sum);
}

/** As updateChecksum16 for a 32-bit field (an IPv4 address): both halves in one update. */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const sum =
    (~checksum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    (newValue >>> 16) +
    (newValue & 0xffff);
  return foldChecksum(sum);
}
