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
import { Ipv6View } from './ipv6.js';
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

    // `off` is where the next header starts, `end` the end of the captured bytes that belong to it, and
    // `wire` how long the enclosing layer says it is on the wire.
    let off = 0;
    let end = data.length;
    let wire = wireLength;
    while (layer !== 0) {
      if (this.layerCount === MAX_LAYERS)
        return this.fail(unsupported('parser', off, `more than ${MAX_LAYERS} layers`));
      let err: DecodeError | null;
      let next = 0;
      switch (layer) {
        case Layer.eth: {
          const v = this.eth;
          err = v.bind(data, off, end);
          if (err) break;
          next = this.registry.byEtherType(v.etherType);
          wire -= v.headerLength;
          break;
        }
        case Layer.sll:
        case Layer.sll2: {
          const v = layer === Layer.sll ? this.sll : this.sll2;
          err = v.bind(data, off, end);
          if (err) break;
          next = this.registry.byEtherType(v.protocol);
          wire -= v.headerLength;
          break;
        }
        case Layer.arp:
          err = this.arp.bind(data, off, end);
          break;
        case Layer.ipv4: {
          const v = this.ipv4;
          err = v.bind(data, off, end, wire);
          if (err) break;
          this.ipLayer = Layer.ipv4;
          this.ipOffset = off;
          wire = v.payloadLength;
          // A non-first fragment carries no upper-layer header; a first one carries a header whose lengths
          // describe the whole datagram, longer than this fragment.
          if (v.fragOffset === 0) next = this.registry.byIpProtocol(v.protocol);
          if (v.isFragment) {
            this.inFragment = true;
            wire = 0xffff;
          }
          break;
        }
        case Layer.ipv6: {
          const v = this.ipv6;
          err = v.bind(data, off, end, wire);
          if (err) break;
          this.ipLayer = Layer.ipv6;
          this.ipOffset = off;
          wire = v.upperLength;
          if (!v.isFragment || v.fragmentOffset === 0) next = this.registry.byIpProtocol(v.upperProtocol);
          if (v.isFragment) {
            this.inFragment = true;
            wire = 0xffff;
          }
          break;
        }
        case Layer.tcp:
          err = this.tcp.bind(data, off, end, wire);
          break;
        case Layer.udp: {
          const v = this.udp;
          err = v.bind(data, off, end, wire);
          if (err) break;
          wire = v.payloadLength;
          next = this.registry.byUdpPorts(v.srcPort, v.dstPort);
          if (next === Layer.esp) {
            const kind = classifyNattPayload(
              data,
              v.payloadOffset,
              Math.min(end, v.off + v.length) - v.payloadOffset,
            );
            if (kind === 'ike' || kind === 'keepalive') {
              this.nattKind = kind;
              next = Layer.natt;
            } else if (kind === 'truncated') next = 0;
          }
          break;
        }
        case Layer.natt:
          err = null;
          break;
        case Layer.icmp:
          err = this.icmp.bind(data, off, end, wire);
          break;
        case Layer.icmpv6:
          err = this.icmpv6.bind(data, off, end, wire);
          break;
        case Layer.esp:
          err = this.esp.bind(data, off, end, wire);
          break;
        case Layer.anon:
          err = this.anon.bind(data, off, end, wire);
          break;
        case Layer.aggfrag:
          err = this.aggfrag.bind(data, off, end, wire);
          break;
        default:
          err = unsupported('parser', off, `no decoder for layer ${layer}`);
      }
      if (err) return this.fail(err);
      this.layers[this.layerCount] = layer;
      this.offsets[this.layerCount++] = off;
      if (next === 0) break;
      const payloadOffset = this.payloadOffsetOf(layer);
      // Bytes past an IP packet's length (Ethernet padding) are not part of it.
      if (layer === Layer.ipv4 || layer === Layer.ipv6) end = Math.min(end, this.ipEnd(layer));
      off = payloadOffset;
      layer = next;
    }
    return this.layerCount;
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

  private ipPayloadEnd(): number {
    return this.ipEnd(this.ipLayer as Layer);
  }

  private ipEnd(layer: Layer): number {
    return layer === Layer.ipv4
      ? this.ipv4.off + this.ipv4.totalLength
      : this.ipv6.off + 40 + this.ipv6.payloadLength;
  }

  private payloadOffsetOf(layer: number): number {
    switch (layer) {
      case Layer.eth:
        return this.eth.payloadOffset;
      case Layer.sll:
        return this.sll.payloadOffset;
      case Layer.sll2:
        return this.sll2.payloadOffset;
      case Layer.ipv4:
        return this.ipv4.payloadOffset;
      case Layer.ipv6:
        return this.ipv6.upperOffset;
      case Layer.udp:
        return this.udp.payloadOffset;
      default:
        return 0;
    }
  }

  private fail(err: DecodeError): number {
    this.error = err;
    return this.layerCount;
  }
}
