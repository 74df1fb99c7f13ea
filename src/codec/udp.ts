import { foldChecksum, onesSum } from './checksum.js';
import { type DecodeError, malformed, truncated } from './decode-error.js';

export const UDP_HEADER_LENGTH = 8;
/** IANA protocol number of UDP. */
export const UDP_PROTOCOL = 17;

/**
 * Zero-copy view of a UDP datagram (RFC 768) at `buf[off]`.
 * `bind` validates once; after it returns null every getter is safe without further bounds checks.
 */
export class UdpView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Bytes of this datagram present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  /**
   * Binds to the datagram at buf[off, capturedEnd). `wireLength` is how many bytes the enclosing
   * layer says the datagram has (the IP payload length); it defaults to everything captured.
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
    // The common case in few bytecodes (so the JIT inlines bind into parsers); diagnose() says what failed.
    if (this.captured >= UDP_HEADER_LENGTH) {
      const length = (buf[off + 4]! << 8) | buf[off + 5]!;
      if (length >= UDP_HEADER_LENGTH && length <= wireLength) return null;
    }
    return this.diagnose(wireLength);
  }

  /** The exact reason bind refused the header (cold path). */
  private diagnose(wireLength: number): DecodeError {
    const off = this.off;
    if (this.captured < UDP_HEADER_LENGTH)
      return truncated('udp', off, UDP_HEADER_LENGTH, Math.max(0, this.captured));
    const length = this.length;
    if (length < UDP_HEADER_LENGTH)
      return malformed('udp', off, `length field ${length} is below the 8-byte header`);
    return malformed(
      'udp',
      off,
      `length field ${length} exceeds the ${wireLength} bytes the IP layer carries`,
    );
  }

  get srcPort(): number {
    return (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
  }
  set srcPort(v: number) {
    this.buf.writeUInt16BE(v, this.off);
  }
  get dstPort(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set dstPort(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  /** The length field: header plus payload. */
  get length(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set length(v: number) {
    this.buf.writeUInt16BE(v, this.off + 4);
  }
  get checksum(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, this.off + 6);
  }
  get payloadOffset(): number {
    return this.off + UDP_HEADER_LENGTH;
  }
  /** Payload length on the wire, from the length field. */
  get payloadLength(): number {
    return this.length - UDP_HEADER_LENGTH;
  }
  /** True when the whole datagram was captured. */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  /**
   * Checksum verdict given the unfolded pseudo-header sum (checksum.ts): null when it cannot be judged
   * (a zero checksum means "none" over IPv4; a truncated capture lacks bytes).
   */
  checksumOk(pseudoHeaderSum: number): boolean | null {
    if (this.checksum === 0 || !this.complete) return null;
    return foldChecksum(onesSum(this.buf, this.off, this.length, pseudoHeaderSum)) === 0;
  }

  /** Computes and writes the checksum over header and payload; a computed 0 is sent as 0xffff. */
  fillChecksum(pseudoHeaderSum: number): void {
    this.checksum = 0;
    this.checksum = foldChecksum(onesSum(this.buf, this.off, this.length, pseudoHeaderSum)) || 0xffff;
  }

  toRepr(): UdpRepr {
    return new UdpRepr({
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      payloadLength: this.payloadLength,
      checksum: this.checksum,
    });
  }
}

export interface UdpFields {
  srcPort: number;
  dstPort: number;
  payloadLength: number;
  /** Written as given; leave undefined to have encodeInto compute it (needs the pseudo-header sum). */
  checksum?: number;
}

/** Plain value of a UDP header, for building packets and for tests. */
export class UdpRepr implements UdpFields {
  srcPort: number;
  dstPort: number;
  payloadLength: number;
  checksum?: number;

  constructor(fields: UdpFields) {
    this.srcPort = fields.srcPort;
    this.dstPort = fields.dstPort;
    this.payloadLength = fields.payloadLength;
    if (fields.checksum !== undefined) this.checksum = fields.checksum;
  }

  get encodedLength(): number {
    return UDP_HEADER_LENGTH;
  }

  /**
   * Writes the header at buf[off] and returns its length. When `checksum` is undefined it is computed,
   * which needs the payload already in place after the header and the pseudo-header sum; without a
   * pseudo-header sum the checksum is 0 ("none", IPv4 only).
   */
  encodeInto(buf: Buffer, off: number, pseudoHeaderSum?: number): number {
    buf.writeUInt16BE(this.srcPort, off);
    buf.writeUInt16BE(this.dstPort, off + 2);
    buf.writeUInt16BE(UDP_HEADER_LENGTH + this.payloadLength, off + 4);
    buf.writeUInt16BE(0, off + 6);
    if (this.checksum !== undefined) buf.writeUInt16BE(this.checksum, off + 6);
    else if (pseudoHeaderSum !== undefined) {
      const sum = onesSum(buf, off, UDP_HEADER_LENGTH + this.payloadLength, pseudoHeaderSum);
      buf.writeUInt16BE(foldChecksum(sum) || 0xffff, off + 6);
    }
    return UDP_HEADER_LENGTH;
  }
}
