import { LinkType, type Packet } from '../packet.js';
import { AggfragView } from './aggfrag.js';
import { AnonView } from './anon.js';
import { ArpView } from './arp.js';
import { ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from './checksum.js';
import { type DecodeError, truncated, unsupported } from './decode-error.js';
import { classifyNattPayload, EspView } from './esp.js';
import { EthernetView } from './ethernet.js';
import { Icmpv4View, Icmpv6View } from './icmp.js';
import { Ipv4View } from './ipv4.js';
import { IPV6_HEADER_LENGTH, Ipv6View } from './ipv6.js';
import { Layer, LayerRegistry } from './registry.js';
import { Sll2View, SllView } from './sll.js';
import { TcpView } from './tcp.js';
import { UdpView } from './udp.js';

/** More layers than any frame pktveil meets carries (eth, ip, udp, esp … with room for tunnels). */
const MAX_LAYERS = 16;

/** What a UDP 4500 payload that is not ESP turned out to be (RFC 3948). */
export type NattKind = 'ike' | 'keepalive';

/**
 * Decodes frames into preallocated views, allocating nothing per packet (only a DecodeError when a frame
 * is bad). One parser serves any number of frames, one at a time: after `parse` the views of the layers
 * listed in `layers[0 … layerCount)` are bound to the frame and valid until the next `parse`.
 *
 * Decoding never throws on packet bytes: it stops at the first layer it cannot decode and leaves the
 * reason in `error`, with every layer before it still usable.
 */
export class PacketParser {
  readonly eth = new EthernetView();
  readonly sll = new SllView();
  readonly sll2 = new Sll2View();
  readonly arp = new ArpView();
  readonly ipv4 = new Ipv4View();
  readonly ipv6 = new Ipv6View();
  readonly tcp = new TcpView();
  readonly udp = new UdpView();
  readonly icmp = new Icmpv4View();
  readonly icmpv6 = new Icmpv6View();
  readonly esp = new EspView();
  readonly anon = new AnonView();
  readonly aggfrag = new AggfragView();

  /** Layers decoded, outermost first. */
  readonly layers = new Uint8Array(MAX_LAYERS);
  /** Offset of each decoded layer's header in the frame. */
  readonly offsets = new Uint32Array(MAX_LAYERS);
  layerCount = 0;
  error: DecodeError | null = null;
  /** Set when a UDP-encapsulation port carried something other than ESP. */
  nattKind: NattKind | null = null;
  /** The transport layer sits in an IP fragment: its checksum cannot be judged from this frame alone. */
  inFragment = false;
  /** Where the innermost IP header is, for transport pseudo-header sums (0 = none decoded). */
  private ipLayer: Layer | 0 = 0;
  private ipOffset = 0;
  private data: Buffer = Buffer.alloc(0);

  constructor(readonly registry: LayerRegistry = LayerRegistry.defaults()) {}

  /** Decodes a packet; returns the number of layers decoded. */
  parsePacket(pkt: Packet): number {
    return this.parse(pkt.data, pkt.link, pkt.origLen ?? pkt.data.length);
  }

  /**
   * Decodes `data`, a frame of link type `link` that was `wireLength` bytes on the wire (more than
   * data.length when the capture was cut to a snap length).
   */
  parse(data: Buffer, link: LinkType, wireLength = data.length): number {
    this.data = data;
    this.layerCount = 0;
    this.error = null;
    this.nattKind = null;
    this.inFragment = false;
    this.ipLayer = 0;

    let layer: number;
    switch (link) {
      case LinkType.ETHERNET:
        layer = Layer.eth;
        break;
      case LinkType.RAW:
        if (data.length < 1) return this.fail(truncated('ip', 0, 1, 0, 'version'));
        layer = data[0]! >> 4 === 6 ? Layer.ipv6 : Layer.ipv4;
        break;
      case LinkType.IPV4:
        layer = Layer.ipv4;
        break;
      case LinkType.IPV6:
        layer = Layer.ipv6;
        break;
      case LinkType.LINUX_SLL:
        layer = Layer.sll;
        break;
      case LinkType.LINUX_SLL2:
        layer = Layer.sll2;
        break;
      default:
        return this.fail(unsupported('link', 0, `link type ${link} is not decoded`));
    }

    this.cursor = 0;
    this.end = data.length;
    this.wire = wireLength;
    while (layer !== 0) {
      if (this.layerCount === MAX_LAYERS)
        return this.fail(unsupported('parser', this.cursor, `more than ${MAX_LAYERS} layers`));
      const at = this.cursor;
      // Each step binds one view, moves the cursor past its header and names the next layer (-1: error).
      // Steps are separate small methods so the JIT can inline each view's bind into its step.
      let next: number;
      switch (layer) {
        case Layer.eth:
          next = this.stepEthernet();
          break;
        case Layer.ipv4:
          next = this.stepIpv4();
          break;
        case Layer.tcp:
          next = this.stepLeaf(this.tcp.bind(data, at, this.end, this.wire));
          break;
        case Layer.udp:
          next = this.stepUdp();
          break;
        default:
          next = this.stepOther(layer);
      }
      if (next < 0) return this.layerCount;
      this.layers[this.layerCount] = layer;
      this.offsets[this.layerCount++] = at;
      layer = next;
    }
    return this.layerCount;
  }

  // Parse state shared by the steps: `cursor` is where the next header starts, `end` the end of the
  // captured bytes that belong to it, `wire` how long the enclosing layer says it is on the wire.
  private cursor = 0;
  private end = 0;
  private wire = 0;

  private stepEthernet(): number {
    const v = this.eth;
    const err = v.bind(this.data, this.cursor, this.end);
    if (err) return this.failStep(err);
    this.wire -= v.headerLength;
    this.cursor = v.payloadOffset;
    return this.registry.byEtherType(v.etherType);
  }

  private stepIpv4(): number {
    const v = this.ipv4;
    const err = v.bind(this.data, this.cursor, this.end, this.wire);
    if (err) return this.failStep(err);
    this.ipLayer = Layer.ipv4;
    this.ipOffset = this.cursor;
    // Bytes past the IP packet's length (Ethernet padding) are not part of it.
    this.end = v.capturedEnd;
    this.cursor = v.payloadOffset;
    this.wire = v.payloadLength;
    // A non-first fragment carries no upper-layer header; a first one carries a header whose lengths
    // describe the whole datagram, longer than this fragment.
    if (!v.isFragment) return this.registry.byIpProtocol(v.protocol);
    this.inFragment = true;
    this.wire = 0xffff;
    return v.fragOffset === 0 ? this.registry.byIpProtocol(v.protocol) : 0;
  }

  private stepIpv6(): number {
    const v = this.ipv6;
    const err = v.bind(this.data, this.cursor, this.end, this.wire);
    if (err) return this.failStep(err);
    this.ipLayer = Layer.ipv6;
    this.ipOffset = this.cursor;
    this.end = v.capturedEnd;
    this.cursor = v.upperOffset;
    this.wire = v.upperLength;
    if (!v.isFragment) return this.registry.byIpProtocol(v.upperProtocol);
    this.inFragment = true;
    this.wire = 0xffff;
    return v.fragmentOffset === 0 ? this.registry.byIpProtocol(v.upperProtocol) : 0;
  }

  private stepUdp(): number {
    const v = this.udp;
    const err = v.bind(this.data, this.cursor, this.end, this.wire);
    if (err) return this.failStep(err);
    this.cursor = v.payloadOffset;
    this.wire = v.payloadLength;
    const next = this.registry.byUdpPorts(v.srcPort, v.dstPort);
    if (next !== Layer.esp) return next;
    // A UDP-encapsulation port: ESP, or the non-ESP marker / keepalive of RFC 3948.
    const end = Math.min(this.end, v.off + v.length);
    const kind = classifyNattPayload(this.data, this.cursor, end - this.cursor);
    if (kind === 'esp') return Layer.esp;
    if (kind === 'truncated') return 0;
    this.nattKind = kind;
    return Layer.natt;
  }

  /** A layer after which the parser does not look further. */
  private stepLeaf(err: DecodeError | null): number {
    return err ? this.failStep(err) : 0;
  }

  private stepOther(layer: number): number {
    const { data, cursor, end, wire } = this;
    switch (layer) {
      case Layer.ipv6:
        return this.stepIpv6();
      case Layer.sll:
      case Layer.sll2: {
        const v = layer === Layer.sll ? this.sll : this.sll2;
        const err = v.bind(data, cursor, end);
        if (err) return this.failStep(err);
        this.wire -= v.headerLength;
        this.cursor = v.payloadOffset;
        return this.registry.byEtherType(v.protocol);
      }
      case Layer.arp:
        return this.stepLeaf(this.arp.bind(data, cursor, end));
      case Layer.icmp:
        return this.stepLeaf(this.icmp.bind(data, cursor, end, wire));
      case Layer.icmpv6:
        return this.stepLeaf(this.icmpv6.bind(data, cursor, end, wire));
      case Layer.esp:
        return this.stepLeaf(this.esp.bind(data, cursor, end, wire));
      case Layer.natt:
        return 0;
      case Layer.anon:
        return this.stepLeaf(this.anon.bind(data, cursor, end, wire));
      case Layer.aggfrag:
        return this.stepLeaf(this.aggfrag.bind(data, cursor, end, wire));
      default:
        return this.failStep(unsupported('parser', cursor, `no decoder for layer ${layer}`));
    }
  }

  private failStep(err: DecodeError): number {
    this.error = err;
    return -1;
  }

  /** True when `layer` was decoded in the last parse. */
  has(layer: Layer): boolean {
    for (let i = 0; i < this.layerCount; i++) if (this.layers[i] === layer) return true;
    return false;
  }

  /** TCP checksum verdict of the last frame: null when it cannot be judged (fragment, truncated capture). */
  tcpChecksumOk(): boolean | null {
    if (this.inFragment || this.ipLayer === 0) return null;
    return this.tcp.checksumOk(this.pseudoHeaderSum(6, this.ipPayloadEnd() - this.tcp.off));
  }

  /** UDP checksum verdict of the last frame: null for a zero checksum, a fragment or a truncated capture. */
  udpChecksumOk(): boolean | null {
    if (this.inFragment || this.ipLayer === 0) return null;
    return this.udp.checksumOk(this.pseudoHeaderSum(17, this.udp.length));
  }

  /** ICMPv6 checksum verdict (it covers an IPv6 pseudo-header); null when it cannot be judged. */
  icmpv6ChecksumOk(): boolean | null {
    if (this.inFragment || this.ipLayer !== Layer.ipv6) return null;
    return this.icmpv6.checksumOk(this.pseudoHeaderSum(58, this.ipPayloadEnd() - this.icmpv6.off));
  }

  private pseudoHeaderSum(protocol: number, upperLength: number): number {
    return this.ipLayer === Layer.ipv4
      ? ipv4PseudoHeaderSum(this.data, this.ipOffset, protocol, upperLength)
      : ipv6PseudoHeaderSum(this.data, this.ipOffset, protocol, upperLength);
  }

  /** End of the innermost IP packet on the wire (its length fields), for transport checksums. */
  private ipPayloadEnd(): number {
    return this.ipLayer === Layer.ipv4
      ? this.ipv4.off + this.ipv4.totalLength
      : this.ipv6.off + IPV6_HEADER_LENGTH + this.ipv6.payloadLength;
  }

  private fail(err: DecodeError): number {
    this.error = err;
    return this.layerCount;
  }
}
