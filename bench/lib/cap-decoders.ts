/**
 * The baseline decoders: the `cap` addon's pure-JS `decoders` (an optional dependency). Loaded lazily
 * so a machine without libpcap still runs the rest of the suite.
 */
import { createRequire } from 'node:module';

/** What cap's decoders return (lib/Decoders.js in the cap package). */
export interface CapEthernet {
  info: {
    dstmac: string;
    srcmac: string;
    type?: number;
    vlan?: { priority: number; CFI: boolean; VID: number };
    length?: number;
  };
  offset: number;
}
export interface CapIpv4 {
  info: {
    hdrlen: number;
    dscp: number;
    ecn: number;
    totallen: number;
    id: number;
    flags: number;
    fragoffset: number;
    ttl: number;
    protocol: number;
    hdrchecksum: number;
    srcaddr: string;
    dstaddr: string;
  };
  hdrlen: number;
  offset: number;
}
export interface CapTcp {
  info: {
    srcport: number;
    dstport: number;
    seqno: number;
    /** Left undefined by cap when the ACK flag is clear. */
    ackno?: number;
    flags: number;
    window: number;
    checksum: number;
    /** Left undefined by cap when the URG flag is clear. */
    urgentptr?: number;
  };
  hdrlen: number;
  offset: number;
}
export interface CapUdp {
  /** `length` is the payload length (cap subtracts the 8-byte header). */
  info: { srcport: number; dstport: number; length: number; checksum: number };
  offset: number;
}
export interface CapDecoders {
  Ethernet(buf: Buffer, offset?: number): CapEthernet;
  IPV4(buf: Buffer, offset?: number): CapIpv4;
  TCP(buf: Buffer, offset?: number): CapTcp;
  UDP(buf: Buffer, offset?: number): CapUdp;
}

/** cap's decoders, or why they could not be loaded. */
export function loadCapDecoders(): { decoders: CapDecoders } | { reason: string } {
  const require = createRequire(import.meta.url);
  try {
    const cap = require('cap') as { decoders?: CapDecoders };
    if (!cap.decoders) return { reason: 'the cap package loaded but has no `decoders` export' };
    return { decoders: cap.decoders };
  } catch (e) {
    return {
      reason: `the optional package cap did not load (${(e as Error).message.split('\n')[0]}); install libpcap-dev, then npm install`,
    };
  }
}
