import { checksumVerifies, internetChecksum, updateChecksum32 } from './checksum.js';
import { type DecodeError, malformed, truncated } from './decode-error.js';
import { readIpv4, writeIpv4 } from './ip-address.js';

export { ipv4String, parseIpv4 } from './ip-address.js';

/** The header without options (IHL 5). */
export const IPV4_HEADER_LENGTH = 20;
/** IHL 15: 20 bytes plus 40 of options. */
export const IPV4_MAX_HEADER_LENGTH = 60;

/** Bits of the 3-bit flags field: reserved (the "evil bit"), Don't Fragment, More Fragments. */
export const Ipv4Flags = { RESERVED: 0b100, DF: 0b010, MF: 0b001 } as const;

/**
 * Zero-copy view of an IPv4 packet (RFC 791) at `buf[off]`.
 * `bind` validates version, IHL and total length once; after it returns null every header getter
 * (options included) is safe without further bounds checks.
 */
export class Ipv4View {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /**
   * Bytes of this packet present in `buf`: what was captured, but never more than totalLength, because
   * bytes past it (Ethernet pads frames to 60 bytes) belong to no layer.
   */
  captured = 0;

  /**
   * Binds to the packet at buf[off, capturedEnd). `wireLength` is how many bytes the link layer says
   * the packet has (frame length minus link header, padding included); it defaults to everything
   * captured. A capture shorter than totalLength is a truncated capture (see `complete`), not an error;
   * a totalLength beyond `wireLength` is malformed.
   */
  bind(
    buf: Buffer,
    off: number,
    capturedEnd = buf.length,
    wireLength = capturedEnd - off,
  ): DecodeError | null {
    this.buf = buf;
    this.off = off;
    const captured = capturedEnd - off;
    // The common case in few bytecodes (so the JIT inlines bind into parsers); diagnose() says what failed.
    if (captured >= IPV4_HEADER_LENGTH) {
      const vihl = buf[off]!;
      const headerLength = (vihl & 0x0f) << 2;
      const totalLength = (buf[off + 2]! << 8) | buf[off + 3]!;
      if (
        vihl >>> 4 === 4 &&
        headerLength >= IPV4_HEADER_LENGTH &&
        captured >= headerLength &&
        totalLength >= headerLength &&
        totalLength <= wireLength
      ) {
        this.captured = captured > totalLength ? totalLength : captured;
        return null;
      }
    }
    this.captured = captured;
    return this.diagnose(wireLength);
  }

  /** The exact reason bind refused the header (cold path). */
  private diagnose(wireLength: number): DecodeError {
    const off = this.off;
    if (this.captured < IPV4_HEADER_LENGTH)
      return truncated('ipv4', off, IPV4_HEADER_LENGTH, Math.max(0, this.captured));
    const version = this.version;
    if (version !== 4) return malformed('ipv4', off, `version field ${version} is not 4`);
    const headerLength = this.headerLength;
    if (headerLength < IPV4_HEADER_LENGTH)
      return malformed('ipv4', off, `IHL ${this.ihl} is below the minimum of 5 (20 bytes)`);
    if (this.captured < headerLength)
      return truncated(
        'ipv4',
        off,
        headerLength,
        this.captured,
        `header with ${headerLength - 20} bytes of options`,
      );
    const totalLength = this.totalLength;
    if (totalLength < headerLength)
      return malformed('ipv4', off, `total length ${totalLength} is below the ${headerLength}-byte header`);
    return malformed(
      'ipv4',
      off,
      `total length ${totalLength} exceeds the ${wireLength} bytes the link layer carries`,
    );
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  /** Header length in 32-bit words. */
  get ihl(): number {
    return this.buf[this.off]! & 0x0f;
  }
  /** Header length in bytes (IHL·4). */
  get headerLength(): number {
    return (this.buf[this.off]! & 0x0f) << 2;
  }
  get dscp(): number {
    return this.buf[this.off + 1]! >>> 2;
  }
  set dscp(v: number) {
    this.buf[this.off + 1] = ((v & 0x3f) << 2) | (this.buf[this.off + 1]! & 3);
  }
  get ecn(): number {
    return this.buf[this.off + 1]! & 3;
  }
  set ecn(v: number) {
    this.buf[this.off + 1] = (this.buf[this.off + 1]! & 0xfc) | (v & 3);
  }
  /** Header plus payload, in bytes. */
  get totalLength(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set totalLength(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  get id(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set id(v: number) {
    this.buf.writeUInt16BE(v, this.off + 4);
  }
  /** The 3-bit flags field (see Ipv4Flags). */
  get flags(): number {
    return this.buf[this.off + 6]! >>> 5;
  }
  set flags(v: number) {
    this.buf[this.off + 6] = ((v & 7) << 5) | (this.buf[this.off + 6]! & 0x1f);
  }
  get dontFragment(): boolean {
    return (this.buf[this.off + 6]! & 0x40) !== 0;
  }
  set dontFragment(v: boolean) {
    this.buf[this.off + 6] = (this.buf[this.off + 6]! & ~0x40) | (v ? 0x40 : 0);
  }
  get moreFragments(): boolean {
    return (this.buf[this.off + 6]! & 0x20) !== 0;
  }
  set moreFragments(v: boolean) {
    this.buf[this.off + 6] = (this.buf[this.off + 6]! & ~0x20) | (v ? 0x20 : 0);
  }
  /** Fragment offset in 8-byte units, as on the wire. */
  get fragOffset(): number {
    return ((this.buf[this.off + 6]! & 0x1f) << 8) | this.buf[this.off + 7]!;
  }
  set fragOffset(v: number) {
    this.buf[this.off + 6] = (this.buf[this.off + 6]! & 0xe0) | ((v >>> 8) & 0x1f);
    this.buf[this.off + 7] = v & 0xff;
  }
  /** True for any fragment of a larger packet: More Fragments set or a non-zero offset. */
  get isFragment(): boolean {
    return (this.buf[this.off + 6]! & 0x3f) !== 0 || this.buf[this.off + 7] !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + 8]!;
  }
  set ttl(v: number) {
    this.buf[this.off + 8] = v;
  }
  get protocol(): number {
    return this.buf[this.off + 9]!;
  }
  set protocol(v: number) {
    this.buf[this.off + 9] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + 10]! << 8) | this.buf[this.off + 11]!;
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, this.off + 10);
  }
  /** Source address as an unsigned 32-bit number (ipv4String formats it). */
  get src(): number {
    return readIpv4(this.buf, this.off + 12);
  }
  /** Writes the source address without touching the checksum (see setSrcIncremental). */
  set src(v: number) {
    writeIpv4(this.buf, this.off + 12, v);
  }
  get dst(): number {
    return readIpv4(this.buf, this.off + 16);
  }
  set dst(v: number) {
    writeIpv4(this.buf, this.off + 16, v);
  }
  /** Offset of the options in `buf` (they run to the end of the header). */
  get optionsOffset(): number {
    return this.off + IPV4_HEADER_LENGTH;
  }
  get optionsLength(): number {
    return this.headerLength - IPV4_HEADER_LENGTH;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  /** Payload length on the wire, from totalLength (not what was captured). */
  get payloadLength(): number {
    return this.totalLength - this.headerLength;
  }
  /** End in `buf` of this packet's captured bytes: the capturedEnd to bind the payload with. */
  get capturedEnd(): number {
    return this.off + this.captured;
  }
  /** True when the whole packet (totalLength bytes) was captured. */
  get complete(): boolean {
    return this.captured >= this.totalLength;
  }

  /** Header checksum verdict; null when the header itself is not all in the captured bytes. */
  checksumOk(): boolean | null {
    const headerLength = this.headerLength;
    if (this.captured < headerLength) return null;
    return checksumVerifies(this.buf, this.off, headerLength);
  }

  /** Computes and writes the header checksum. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.headerLength);
  }

  /** Rewrites the source address and updates the checksum for that change alone (RFC 1624). */
  setSrcIncremental(addr: number): void {
    this.checksum = updateChecksum32(this.checksum, this.src, addr);
    writeIpv4(this.buf, this.off + 12, addr);
  }

  /** Rewrites the destination address and updates the checksum for that change alone (RFC 1624). */
  setDstIncremental(addr: number): void {
    this.checksum = updateChecksum32(this.checksum, this.dst, addr);
    writeIpv4(this.buf, this.off + 16, addr);
  }

  toRepr(): Ipv4Repr {
    const optionsOffset = this.optionsOffset;
    return new Ipv4Repr({
      dscp: this.dscp,
      ecn: this.ecn,
      id: this.id,
      flags: this.flags,
      fragOffset: this.fragOffset,
      ttl: this.ttl,
      protocol: this.protocol,
      src: this.src,
      dst: this.dst,
      options: Buffer.from(this.buf.subarray(optionsOffset, optionsOffset + this.optionsLength)),
      payloadLength: this.payloadLength,
      checksum: this.checksum,
    });
  }
}

export interface Ipv4Fields {
  /** 0 when omitted. */
  dscp?: number;
  /** 0 when omitted. */
  ecn?: number;
  id: number;
  /** The 3-bit flags field (Ipv4Flags.DF etc.); 0 when omitted. */
  flags?: number;
  /** In 8-byte units as on the wire; 0 when omitted. */
  fragOffset?: number;
  ttl: number;
  protocol: number;
  /** Addresses as unsigned 32-bit numbers (parseIpv4 turns text into one). */
  src: number;
  dst: number;
  /** Raw option bytes, a multiple of 4 and at most 40 (pad with End of Options); none when omitted. */
  options?: Buffer;
  /** Bytes after the header; totalLength is the header plus this. */
  payloadLength: number;
  /** Written as given; leave undefined to have encodeInto compute it. */
  checksum?: number;
}

/** Plain value of an IPv4 header, for building packets and for tests. */
export class Ipv4Repr implements Ipv4Fields {
  dscp: number;
  ecn: number;
  id: number;
  flags: number;
  fragOffset: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
  options: Buffer;
  payloadLength: number;
  checksum?: number;

  /**
   * Throws (a programmer error) when a bit field is out of range, the options are not a multiple of 4
   * bytes up to 40, or the packet exceeds 65535 bytes. Byte and word fields are range-checked when written.
   */
  constructor(fields: Ipv4Fields) {
    const options = fields.options ?? Buffer.alloc(0);
    if (options.length % 4 !== 0 || options.length > IPV4_MAX_HEADER_LENGTH - IPV4_HEADER_LENGTH)
      throw new Error(`IPv4 options are ${options.length} bytes: pad them to a multiple of 4, at most 40`);
    if (IPV4_HEADER_LENGTH + options.length + fields.payloadLength > 0xffff)
      throw new Error(
        `IPv4 packet of ${IPV4_HEADER_LENGTH + options.length + fields.payloadLength} bytes exceeds 65535`,
      );
    checkRange('dscp', fields.dscp ?? 0, 0x3f);
    checkRange('ecn', fields.ecn ?? 0, 3);
    checkRange('flags', fields.flags ?? 0, 7);
    checkRange('fragOffset', fields.fragOffset ?? 0, 0x1fff);
    this.dscp = fields.dscp ?? 0;
    this.ecn = fields.ecn ?? 0;
    this.id = fields.id;
    this.flags = fields.flags ?? 0;
    this.fragOffset = fields.fragOffset ?? 0;
    this.ttl = fields.ttl;
    this.protocol = fields.protocol;
    this.src = fields.src;
    this.dst = fields.dst;
    this.options = options;
    this.payloadLength = fields.payloadLength;
    if (fields.checksum !== undefined) this.checksum = fields.checksum;
  }

  get encodedLength(): number {
    return IPV4_HEADER_LENGTH + this.options.length;
  }

  /** Writes the header at buf[off] and returns its length; computes the checksum when it is undefined. */
  encodeInto(buf: Buffer, off: number): number {
    const headerLength = IPV4_HEADER_LENGTH + this.options.length;
    buf[off] = 0x40 | (headerLength >>> 2);
    buf[off + 1] = ((this.dscp & 0x3f) << 2) | (this.ecn & 3);
    buf.writeUInt16BE(headerLength + this.payloadLength, off + 2);
    buf.writeUInt16BE(this.id, off + 4);
    buf.writeUInt16BE(((this.flags & 7) << 13) | (this.fragOffset & 0x1fff), off + 6);
    buf.writeUInt8(this.ttl, off + 8);
    buf.writeUInt8(this.protocol, off + 9);
    buf.writeUInt16BE(0, off + 10);
    writeIpv4(buf, off + 12, this.src);
    writeIpv4(buf, off + 16, this.dst);
    buf.set(this.options, off + IPV4_HEADER_LENGTH);
    buf.writeUInt16BE(this.checksum ?? internetChecksum(buf, off, headerLength), off + 10);
    return headerLength;
  }
}

function checkRange(name: string, value: number, max: number): void {
  if (!(Number.isInteger(value) && value >= 0 && value <= max))
    throw new Error(`IPv4 ${name} ${value} is out of range 0–${max}`);
}
