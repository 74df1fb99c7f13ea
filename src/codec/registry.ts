/**
 * Which decoder handles the bytes after a header (gopacket's NextLayerType, scapy's bind_layers):
 * ethertype → layer, IP protocol → layer, UDP port → layer. Lookups on the hot path are array reads.
 */

/** The layers the parser knows, as small integers so a parsed packet is a Uint8Array of them. */
export const Layer = {
  eth: 1,
  sll: 2,
  sll2: 3,
  arp: 4,
  ipv4: 5,
  ipv6: 6,
  tcp: 7,
  udp: 8,
  icmp: 9,
  icmpv6: 10,
  esp: 11,
  /** UDP 4500 payload that is not ESP: the non-ESP marker (IKE) or a NAT keepalive (RFC 3948). */
  natt: 12,
  anon: 13,
  aggfrag: 14,
} as const;
export type Layer = (typeof Layer)[keyof typeof Layer];

export const layerNames: Record<Layer, string> = {
  [Layer.eth]: 'eth',
  [Layer.sll]: 'sll',
  [Layer.sll2]: 'sll2',
  [Layer.arp]: 'arp',
  [Layer.ipv4]: 'ipv4',
  [Layer.ipv6]: 'ipv6',
  [Layer.tcp]: 'tcp',
  [Layer.udp]: 'udp',
  [Layer.icmp]: 'icmp',
  [Layer.icmpv6]: 'icmpv6',
  [Layer.esp]: 'esp',
  [Layer.natt]: 'natt',
  [Layer.anon]: 'anon',
  [Layer.aggfrag]: 'aggfrag',
};

/** 0 in the tables below means "no decoder: the bytes are payload". */
const NONE = 0;

export class LayerRegistry {
  private readonly etherTypes = new Uint8Array(0x10000);
  private readonly ipProtocols = new Uint8Array(256);
  private readonly udpPorts = new Uint8Array(0x10000);

  /** The bindings pktveil uses by default; `anonProtocol` is the anonymity layer's IP protocol number. */
  static defaults(anonProtocol = 253): LayerRegistry {
    return new LayerRegistry()
      .bindEtherType(0x0800, Layer.ipv4)
      .bindEtherType(0x86dd, Layer.ipv6)
      .bindEtherType(0x0806, Layer.arp)
      .bindIpProtocol(1, Layer.icmp)
      .bindIpProtocol(6, Layer.tcp)
      .bindIpProtocol(17, Layer.udp)
      .bindIpProtocol(50, Layer.esp)
      .bindIpProtocol(58, Layer.icmpv6)
      .bindIpProtocol(144, Layer.aggfrag)
      .bindIpProtocol(anonProtocol, Layer.anon)
      .bindUdpPort(4500, Layer.esp);
  }

  bindEtherType(etherType: number, layer: Layer | typeof NONE): this {
    this.etherTypes[checkRange('ethertype', etherType, 0xffff)] = layer;
    return this;
  }
  bindIpProtocol(protocol: number, layer: Layer | typeof NONE): this {
    this.ipProtocols[checkRange('IP protocol', protocol, 255)] = layer;
    return this;
  }
  /** A UDP port whose datagrams (either direction) carry `layer`; UDP 4500 → ESP means NAT-T (RFC 3948). */
  bindUdpPort(port: number, layer: Layer | typeof NONE): this {
    this.udpPorts[checkRange('UDP port', port, 0xffff)] = layer;
    return this;
  }

  byEtherType(etherType: number): Layer | typeof NONE {
    return this.etherTypes[etherType] as Layer | typeof NONE;
  }
  byIpProtocol(protocol: number): Layer | typeof NONE {
    return this.ipProtocols[protocol] as Layer | typeof NONE;
  }
  /** Destination port first, then source port (replies come from the well-known port). */
  byUdpPorts(srcPort: number, dstPort: number): Layer | typeof NONE {
    return (this.udpPorts[dstPort] || this.udpPorts[srcPort]) as Layer | typeof NONE;
  }
}

function checkRange(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new RangeError(`${what} must be an integer from 0 to ${max}, got ${value}`);
  return value;
}
