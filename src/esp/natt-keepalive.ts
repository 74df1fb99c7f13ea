import { internetChecksum } from '../codec/checksum.js';
import { NATT_KEEPALIVE_BYTE } from '../codec/esp.js';
import { writeIpv4 } from '../codec/ip-address.js';
import { writeU16 } from './esp-format.js';
import type { SecurityAssociation } from './sa.js';

/** IPv4 (20) + UDP (8) + the single 0xff byte. */
export const NATT_KEEPALIVE_LENGTH = 29;

/**
 * Writes a NAT-keepalive (RFC 3948 §2.3: one 0xff byte in UDP on the SA's NAT-T ports) from the SA's
 * tunnel source to its destination at out[off], so a NAT keeps the mapping open while no ESP flows.
 * Returns its length. Throws when the SA has no NAT-T ports or endpoints (a configuration error).
 */
export function writeNatKeepalive(sa: SecurityAssociation, out: Uint8Array, off: number): number {
  if (!sa.natt || sa.tunnelDst === 0)
    throw new Error('NAT keepalives need an SA with "natt" ports and "tunnel" endpoints');
  out[off] = 0x45;
  out[off + 1] = 0;
  writeU16(out, off + 2, NATT_KEEPALIVE_LENGTH);
  writeU16(out, off + 4, sa.ipId);
  sa.ipId = (sa.ipId + 1) & 0xffff;
  writeU16(out, off + 6, 0);
  out[off + 8] = sa.ttl;
  out[off + 9] = 17;
  writeU16(out, off + 10, 0);
  writeIpv4(out, off + 12, sa.tunnelSrc);
  writeIpv4(out, off + 16, sa.tunnelDst);
  writeU16(out, off + 10, internetChecksum(out, off, 20));
  writeU16(out, off + 20, sa.natt.srcPort);
  writeU16(out, off + 22, sa.natt.dstPort);
  writeU16(out, off + 24, 9);
  // A zero UDP checksum: RFC 3948 §2.3 allows it, and the one byte carries nothing to protect.
  writeU16(out, off + 26, 0);
  out[off + 28] = NATT_KEEPALIVE_BYTE;
  return NATT_KEEPALIVE_LENGTH;
}
