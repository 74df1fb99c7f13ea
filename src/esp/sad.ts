import { ipv4String } from '../codec/ip-address.js';
import { hexSpi, type SecurityAssociation } from './sa.js';

/**
 * The inbound security association database: finds the SA of an arriving ESP packet by SPI and, where two
 * SAs share an SPI (each peer picks its own), by destination address (RFC 4301 §4.1). Adding and removing
 * are O(1) and safe between any two packets, so SAs can be rekeyed while traffic flows.
 */
export class SecurityAssociationDatabase {
  private readonly bySpi = new Map<number, SecurityAssociation | SecurityAssociation[]>();
  /** UDP destination ports that carry ESP (RFC 3948) for some SA. */
  readonly nattPorts = new Set<number>();

  constructor(sas: Iterable<SecurityAssociation> = []) {
    for (const sa of sas) this.add(sa);
  }

  /** Adds an SA; throws if one with the same SPI and destination is already there. */
  add(sa: SecurityAssociation): void {
    const existing = this.bySpi.get(sa.spi);
    if (existing === undefined) {
      this.bySpi.set(sa.spi, sa);
    } else {
      const list = Array.isArray(existing) ? existing : [existing];
      if (list.some((other) => other.tunnelDst === sa.tunnelDst))
        throw new Error(
          `an SA with SPI ${hexSpi(sa.spi)} and destination ${ipv4String(sa.tunnelDst)} is already in the database`,
        );
      this.bySpi.set(sa.spi, [...list, sa]);
    }
    if (sa.natt) this.nattPorts.add(sa.natt.dstPort);
  }

  /** Removes an SA; returns whether it was there. */
  remove(sa: SecurityAssociation): boolean {
    const existing = this.bySpi.get(sa.spi);
    if (existing === undefined) return false;
    if (existing === sa) {
      this.bySpi.delete(sa.spi);
    } else if (Array.isArray(existing) && existing.includes(sa)) {
      const rest = existing.filter((other) => other !== sa);
      this.bySpi.set(sa.spi, rest.length === 1 ? rest[0]! : rest);
    } else {
      return false;
    }
    this.rebuildNattPorts();
    return true;
  }

  /**
   * The SA for an arriving packet. With a single SA on the SPI the destination is not compared (it may
   * have been rewritten by NAT); with several, the one whose tunnel destination matches wins.
   */
  lookup(spi: number, dst: number): SecurityAssociation | undefined {
    const found = this.bySpi.get(spi);
    if (found === undefined || !Array.isArray(found)) return found;
    for (const sa of found) if (sa.tunnelDst === dst) return sa;
    return undefined;
  }

  get size(): number {
    let n = 0;
    for (const v of this.bySpi.values()) n += Array.isArray(v) ? v.length : 1;
    return n;
  }

  *[Symbol.iterator](): IterableIterator<SecurityAssociation> {
    for (const v of this.bySpi.values()) {
      if (Array.isArray(v)) yield* v;
      else yield v;
    }
  }

  private rebuildNattPorts(): void {
    this.nattPorts.clear();
    for (const sa of this) if (sa.natt) this.nattPorts.add(sa.natt.dstPort);
  }
}
