/**
 * The unit every stage, source and sink handles: bytes plus the metadata a capture file keeps.
 *
 * `data` may be a subarray of a larger buffer, and a source may reuse that buffer for the next
 * packet (live capture does). A consumer that keeps a packet past the call that handed it over
 * must copy it (`clonePacket`).
 */
export interface Packet {
  /** Captured bytes, starting at the link-layer header named by `link`. */
  data: Buffer;
  /** Capture time in nanoseconds since the Unix epoch. */
  ts: bigint;
  /** Link-layer type (a LINKTYPE_* value from the pcap registry). */
  link: LinkType;
  /** Length of the packet on the wire; `data.length` when the capture was not truncated. */
  origLen?: number;
  /** Interface the packet was seen on (pcapng interface index); 0 when the source has one interface. */
  ifIndex?: number;
}

/** LINKTYPE_* values (https://www.tcpdump.org/linktypes.html) that pktveil decodes. */
export const LinkType = {
  ETHERNET: 1,
  /** DLT_RAW as written by most platforms: raw IPv4 or IPv6. */
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;
export type LinkType = number;

export function linkTypeName(link: LinkType): string {
  for (const [name, value] of Object.entries(LinkType)) if (value === link) return name;
  return `LINKTYPE_${link}`;
}

/** Wire length of a packet (its original length when it was captured truncated). */
export function wireLength(pkt: Packet): number {
  return pkt.origLen ?? pkt.data.length;
}

/** A copy that owns its bytes, for keeping a borrowed packet past the call that lent it. */
export function clonePacket(pkt: Packet): Packet {
  return { ...pkt, data: Buffer.from(pkt.data) };
}
