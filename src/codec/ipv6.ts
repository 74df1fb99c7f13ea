import { type DecodeError, malformed, truncated, unsupported } from './decode-error.js';
import { ipv6String, writeIpv6 } from './ip-address.js';

export { ipv6String, parseIpv6 } from './ip-address.js';

export const IPV6_HEADER_LENGTH = 40;
/** Longer chains of extension headers are refused as unsupported (a bound on work per packet). */
export const MAX_IPV6_EXTENSION_HEADERS = 16;
export const IPV6_FRAGMENT_HEADER_LENGTH = 8;

/** Next Header values that `bind` walks past or stops at. */
export const Ipv6NextHeader = {
  HOP_BY_HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
} as const;

function extensionName(nextHeader: number): string {
  switch (nextHeader) {
    case Ipv6NextHeader.HOP_BY_HOP:
      return 'hop-by-hop options header';
    case Ipv6NextHeader.ROUTING:
      return 'routing header';
    case Ipv6NextHeader.FRAGMENT:
      return 'fragment header';
    case Ipv6NextHeader.AH:
      return 'authentication header';
    default:
      return 'destination options header';
  }
}

/**
 * Zero-copy view of an IPv6 packet (RFC 8200) at `buf[off]`.
 *
 * `bind` checks the fixed header and walks the extension headers it knows (hop-by-hop, routing,
 * fragment, destination options, AH), storing where the upper layer starts in plain fields (no
 * allocation). The walk ends at the first other Next Header value: an upper-layer protocol, ESP (50)
 * or No Next Header (59), whose header is then not checked here. It also ends after the fragment
 * header of a non-first fragment, whose remaining bytes are the middle of someone else's payload.
 */
export class Ipv6View {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Bytes of this packet present in `buf`, never more than 40 + payloadLength (the rest is link padding). */
  captured = 0;
  /** Next Header value after the walk: the upper-layer protocol (or 50 ESP, 59 No Next Header). */
  upperProtocol = 0;
  /** Offset in `buf` where the upper layer (or, in a non-first fragment, the fragment data) starts. */
  upperOffset = 0;
  /** Extension headers walked past. */
  extensionCount = 0;
  /** Offset of the fragment header in `buf`, or -1 when there is none. */
  fragmentHeaderOffset = -1;
  /** Fragment offset in 8-byte units, as on the wire (0 without a fragment header). */
  fragmentOffset = 0;
  /** The M flag of the fragment header (false without one). */
  moreFragments = false;
  /** Identification of the fragment header (0 without one). */
  fragmentId = 0;

  /**
   * Binds to the packet at buf[off, capturedEnd). `wireLength` is how many bytes the link layer says
   * the packet has; it defaults to everything captured. 40 + payloadLength beyond it is malformed; a
   * capture that ends inside the extension headers is truncated; one that ends after them is a
   * truncated capture (see `complete`), not an error.
   */
  bind(
    buf: Buffer,
    off: number,
    capturedEnd = buf.length,
    wireLength = capturedEnd - off,
  ): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    this.extensionCount = 0;
    this.fragmentHeaderOffset = -1;
    this.fragmentOffset = 0;
    this.moreFragments = false;
    this.fragmentId = 0;
    if (this.captured < IPV6_HEADER_LENGTH)
      return truncated('ipv6', off, IPV6_HEADER_LENGTH, Math.max(0, this.captured));
    const version = this.version;
    if (version !== 6) return malformed('ipv6', off, `version field ${version} is not 6`);
    const payloadLength = this.payloadLength;
    let nextHeader = this.nextHeader;
    if (payloadLength === 0 && nextHeader === Ipv6NextHeader.HOP_BY_HOP)
      return unsupported(
        'ipv6',
        off,
        'payload length 0 with hop-by-hop options: jumbograms (RFC 2675) are not supported',
      );
    const totalLength = IPV6_HEADER_LENGTH + payloadLength;
    if (totalLength > wireLength)
      return malformed(
        'ipv6',
        off,
        `payload length ${payloadLength} plus the 40-byte header exceeds the ${wireLength} bytes the link layer carries`,
      );
    if (this.captured > totalLength) this.captured = totalLength;
    const end = off + totalLength;
    const have = off + this.captured;
    let at = off + IPV6_HEADER_LENGTH;
    for (;;) {
      const isExtension =
        nextHeader === Ipv6NextHeader.HOP_BY_HOP ||
        nextHeader === Ipv6NextHeader.ROUTING ||
        nextHeader === Ipv6NextHeader.FRAGMENT ||
        nextHeader === Ipv6NextHeader.DESTINATION_OPTIONS ||
        nextHeader === Ipv6NextHeader.AH;
      if (!isExtension) break;
      if (this.extensionCount === MAX_IPV6_EXTENSION_HEADERS)
        return unsupported('ipv6', at, `more than ${MAX_IPV6_EXTENSION_HEADERS} extension headers`);
      // Every header here is at least 8 bytes; its length byte is the second.
      const name = extensionName(nextHeader);
      if (end - at < 8)
        return malformed('ipv6', at, `${name} needs 8 bytes, the payload length leaves ${end - at}`);
      if (have - at < 8) return truncated('ipv6', at, 8, have - at, name);
      const length =
        nextHeader === Ipv6NextHeader.FRAGMENT
          ? IPV6_FRAGMENT_HEADER_LENGTH
          : nextHeader === Ipv6NextHeader.AH
            ? (buf[at + 1]! + 2) << 2
            : (buf[at + 1]! + 1) << 3;
      if (length > end - at)
        return malformed(
          'ipv6',
          at,
          `${name} of ${length} bytes exceeds the ${end - at} the payload length leaves`,
        );
      if (length > have - at) return truncated('ipv6', at, length, have - at, name);
      this.extensionCount++;
      const isFragmentHeader = nextHeader === Ipv6NextHeader.FRAGMENT;
      if (isFragmentHeader) {
        this.fragmentHeaderOffset = at;
        this.fragmentOffset = (buf[at + 2]! << 5) | (buf[at + 3]! >>> 3);
        this.moreFragments = (buf[at + 3]! & 1) !== 0;
        this.fragmentId =
          ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
      }
      nextHeader = buf[at]!;
      at += length;
      // A non-first fragment carries the middle of the fragmentable part: nothing after here is a header.
      if (isFragmentHeader && this.fragmentOffset !== 0) break;
    }
    this.upperProtocol = nextHeader;
    this.upperOffset = at;
    return null;
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  get trafficClass(): number {
    return ((this.buf[this.off]! & 0x0f) << 4) | (this.buf[this.off + 1]! >>> 4);
  }
  set trafficClass(v: number) {
    this.buf[this.off] = 0x60 | ((v >>> 4) & 0x0f);
    this.buf[this.off + 1] = ((v & 0x0f) << 4) | (this.buf[this.off + 1]! & 0x0f);
  }
  /** 20-bit flow label. */
  get flowLabel(): number {
    return (
      ((this.buf[this.off + 1]! & 0x0f) << 16) | (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!
    );
  }
  set flowLabel(v: number) {
    this.buf[this.off + 1] = (this.buf[this.off + 1]! & 0xf0) | ((v >>> 16) & 0x0f);
    this.buf[this.off + 2] = (v >>> 8) & 0xff;
    this.buf[this.off + 3] = v & 0xff;
  }
  /** Bytes after the fixed header: extension headers and upper layer. */
  get payloadLength(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set payloadLength(v: number) {
    this.buf.writeUInt16BE(v, this.off + 4);
  }
  /** Next Header of the fixed header (the first extension header, if any). */
  get nextHeader(): number {
    return this.buf[this.off + 6]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off + 6] = v;
  }
  get hopLimit(): number {
    return this.buf[this.off + 7]!;
  }
  set hopLimit(v: number) {
    this.buf[this.off + 7] = v;
  }
  /** Offset in `buf` of the 16-byte source address (format with ipv6String). */
  get src(): number {
    return this.off + 8;
  }
  /** Offset in `buf` of the 16-byte destination address. */
  get dst(): number {
    return this.off + 24;
  }
  get payloadOffset(): number {
    return this.off + IPV6_HEADER_LENGTH;
  }
  /** Upper-layer bytes on the wire (from payloadLength), after the extension headers. */
  get upperLength(): number {
    return this.off + IPV6_HEADER_LENGTH + this.payloadLength - this.upperOffset;
  }
  /** True when a fragment header marks this as part of a larger packet (M set or a non-zero offset). */
  get isFragment(): boolean {
    return this.moreFragments || this.fragmentOffset !== 0;
  }
  /** End in `buf` of this packet's captured bytes: the capturedEnd to bind the upper layer with. */
  get capturedEnd(): number {
    return this.off + this.captured;
  }
  /** True when the whole packet (40 + payloadLength bytes) was captured. */
  get complete(): boolean {
    return this.captured >= IPV6_HEADER_LENGTH + this.payloadLength;
  }

  toRepr(): Ipv6Repr {
    return new Ipv6Repr({
      trafficClass: this.trafficClass,
      flowLabel: this.flowLabel,
      payloadLength: this.payloadLength,
      nextHeader: this.nextHeader,
      hopLimit: this.hopLimit,
      src: ipv6String(this.buf, this.src),
      dst: ipv6String(this.buf, this.dst),
    });
  }
}

export interface Ipv6Fields {
  /** 0 when omitted. */
  trafficClass?: number;
  /** 0 when omitted. */
  flowLabel?: number;
  /** Bytes after the fixed header, extension headers included. */
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  /** Addresses as text (any RFC 4291 form; toRepr gives RFC 5952 form), checked when the repr is built. */
  src: string;
  dst: string;
}

/**
 * Plain value of the IPv6 fixed header, for building packets and for tests. Extension headers are
 * part of the payload as far as this repr is concerned: write them after it and count them in payloadLength.
 */
export class Ipv6Repr implements Ipv6Fields {
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: string;
  dst: string;

  /** Throws (a programmer error) on a bad address text or a traffic class / flow label out of range. */
  constructor(fields: Ipv6Fields) {
    const trafficClass = fields.trafficClass ?? 0;
    const flowLabel = fields.flowLabel ?? 0;
    if (!(Number.isInteger(trafficClass) && trafficClass >= 0 && trafficClass <= 0xff))
      throw new Error(`IPv6 traffic class ${trafficClass} is out of range 0–255`);
    if (!(Number.isInteger(flowLabel) && flowLabel >= 0 && flowLabel <= 0xfffff))
      throw new Error(`IPv6 flow label ${flowLabel} is out of range 0–1048575`);
    writeIpv6(Buffer.alloc(16), 0, fields.src);
    writeIpv6(Buffer.alloc(16), 0, fields.dst);
    this.trafficClass = trafficClass;
    this.flowLabel = flowLabel;
    this.payloadLength = fields.payloadLength;
    this.nextHeader = fields.nextHeader;
    this.hopLimit = fields.hopLimit;
    this.src = fields.src;
    this.dst = fields.dst;
  }

  get encodedLength(): number {
    return IPV6_HEADER_LENGTH;
  }

  /** Writes the fixed header at buf[off] and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt32BE(((6 << 28) | (this.trafficClass << 20) | this.flowLabel) >>> 0, off);
    buf.writeUInt16BE(this.payloadLength, off + 4);
    buf.writeUInt8(this.nextHeader, off + 6);
    buf.writeUInt8(this.hopLimit, off + 7);
    writeIpv6(buf, off + 8, this.src);
    writeIpv6(buf, off + 24, this.dst);
    return IPV6_HEADER_LENGTH;
  }
}
