/**
 * An IPv4 subnet as the broadcast anonymity layer sees it: the network its hosts share and the directed
 * broadcast address they all send from (DESIGN.md §1, first row). Parsed once from configuration text
 * ("198.18.5.0/24"); `contains` and `isBroadcast` are plain integer tests for the per-packet paths.
 */
import { ipv4String, parseIpv4 } from '../codec/ip-address.js';

export class BroadcastSubnet {
  /** Network address (host bits zero) as an unsigned 32-bit number. */
  readonly network: number;
  readonly prefixLength: number;
  /** Netmask as an unsigned 32-bit number. */
  readonly mask: number;
  /** Directed broadcast address (host bits all ones). */
  readonly broadcast: number;

  /**
   * `network` and `prefixLength` as numbers; host bits must be zero. Prefixes /31 and /32 are refused:
   * they have no broadcast address (RFC 3021), so the scheme cannot work there.
   */
  constructor(network: number, prefixLength: number) {
    if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > 30)
      throw new Error(
        `subnet prefix length /${prefixLength} cannot carry the broadcast scheme: use /1 to /30 (a /31 or /32 has no broadcast address)`,
      );
    if (!Number.isInteger(network) || network < 0 || network > 0xffffffff)
      throw new Error(`subnet network ${network} is not an unsigned 32-bit IPv4 address`);
    const mask = (0xffffffff << (32 - prefixLength)) >>> 0;
    if ((network & ~mask) >>> 0 !== 0)
      throw new Error(
        `subnet ${ipv4String(network)}/${prefixLength} has host bits set: write ${ipv4String((network & mask) >>> 0)}/${prefixLength}`,
      );
    this.network = network >>> 0;
    this.prefixLength = prefixLength;
    this.mask = mask;
    this.broadcast = (network | ~mask) >>> 0;
  }

  /** Parses "a.b.c.d/len" (the form `ip addr` prints). */
  static parse(text: string): BroadcastSubnet {
    const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(text.trim());
    if (!m) throw new Error(`not an IPv4 subnet in a.b.c.d/len form: ${JSON.stringify(text)}`);
    return new BroadcastSubnet(parseIpv4(m[1]!), Number(m[2]));
  }

  /** A subnet given as text or already parsed (for options that accept both). */
  static from(subnet: string | BroadcastSubnet): BroadcastSubnet {
    return typeof subnet === 'string' ? BroadcastSubnet.parse(subnet) : subnet;
  }

  /** True when `addr` lies in the subnet (network and broadcast addresses included). */
  contains(addr: number): boolean {
    return (addr & this.mask) >>> 0 === this.network;
  }

  /** True for a host address of the subnet: inside it, and neither the network nor the broadcast address. */
  isHost(addr: number): boolean {
    return (addr & this.mask) >>> 0 === this.network && addr !== this.network && addr !== this.broadcast;
  }

  toString(): string {
    return `${ipv4String(this.network)}/${this.prefixLength}`;
  }
}
