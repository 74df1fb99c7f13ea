import { foldChecksum, onesSum } from './checksum.js';
import { type DecodeError, malformed, truncated } from './decode-error.js';

/** Type, code, checksum and the 4-byte rest of header: the same 8 bytes in ICMPv4 and ICMPv6. */
export const ICMP_HEADER_LENGTH = 8;
export const ICMPV4_PROTOCOL = 1;
export const ICMPV6_NEXT_HEADER = 58;

/** Common ICMPv4 types (RFC 792 and the IANA registry). */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Common ICMPv6 types (RFC 4443, RFC 4861). */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
} as const;

/**
 * The 8-byte header both ICMP versions share, as a zero-copy view at `buf[off]`. `bind` validates once;
 * after it returns null every getter is safe without further bounds checks.
 */
abstract class IcmpHeaderView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Message length on the wire (header + body), as the IP layer gives it. */
  length = 0;
  /** Bytes of this message present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  protected abstract readonly layer: 'icmp' | 'icmpv6';

  /**
   * Binds to the message at buf[off, capturedEnd). `wireLength` is how many bytes the IP layer says the
   * message has; it defaults to everything captured.
   */
  bind(
    buf: Buffer,
    off: number,
    capturedEnd = buf.length,
    wireLength = capturedEnd - off,
  ): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.length = wireLength;
    const have = Math.max(0, capturedEnd - off);
    this.captured = Math.min(have, wireLength);
    if (have < ICMP_HEADER_LENGTH) return truncated(this.layer, off, ICMP_HEADER_LENGTH, have);
    if (wireLength < ICMP_HEADER_LENGTH)
      return malformed(
        this.layer,
        off,
        `the IP layer carries ${wireLength} bytes, less than the 8-byte header`,
      );
    return null;
  }

  get type(): number {
    return this.buf[this.off]!;
  }
  set type(v: number) {
    this.buf.writeUInt8(v, this.off);
  }
  get code(): number {
    return this.buf[this.off + 1]!;
  }
  set code(v: number) {
    this.buf.writeUInt8(v, this.off + 1);
  }
  get checksum(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  /** Bytes 4–7 as one unsigned 32-bit number (identifier/sequence, MTU, pointer, unused …). */
  get rest(): number {
    const b = this.buf;
    const i = this.off + 4;
    return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  }
  set rest(v: number) {
    this.buf.writeUInt32BE(v, this.off + 4);
  }
  /** Echo identifier (bytes 4–5); meaningful for echo request and reply. */
  get identifier(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  set identifier(v: number) {
    this.buf.writeUInt16BE(v, this.off + 4);
  }
  /** Echo sequence number (bytes 6–7); meaningful for echo request and reply. */
  get sequence(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set sequence(v: number) {
    this.buf.writeUInt16BE(v, this.off + 6);
  }
  get headerLength(): number {
    return ICMP_HEADER_LENGTH;
  }
  get payloadOffset(): number {
    return this.off + ICMP_HEADER_LENGTH;
  }
  /** Body length on the wire (after the 8-byte header). */
  get payloadLength(): number {
    return this.length - ICMP_HEADER_LENGTH;
  }
  /** True when the whole message was captured. */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  protected verify(initial: number): boolean | null {
    if (!this.complete) return null;
    return foldChecksum(onesSum(this.buf, this.off, this.length, initial)) === 0;
  }

  protected fill(initial: number): boolean {
    if (!this.complete) return false;
    this.checksum = 0;
    this.checksum = foldChecksum(onesSum(this.buf, this.off, this.length, initial));
    return true;
  }

  protected fields(): IcmpFields {
    return {
      type: this.type,
      code: this.code,
      rest: this.rest,
      payloadLength: this.payloadLength,
      checksum: this.checksum,
    };
  }
}

/** ICMPv4 (RFC 792): the checksum covers the whole message and nothing else. */
export class Icmpv4View extends IcmpHeaderView {
  protected readonly layer = 'icmp';

  /** True for echo request and reply, whose rest of header is identifier and sequence. */
  get isEcho(): boolean {
    return this.type === Icmpv4Type.ECHO_REQUEST || this.type === Icmpv4Type.ECHO_REPLY;
  }
  /** Checksum verdict over the whole message; null when it was not fully captured. */
  checksumOk(): boolean | null {
    return this.verify(0);
  }
  /** Computes and writes the checksum; false (nothing written) when the message was not fully captured. */
  fillChecksum(): boolean {
    return this.fill(0);
  }
  toRepr(): Icmpv4Repr {
    return new Icmpv4Repr(this.fields());
  }
}

/** ICMPv6 (RFC 4443 §2.3): the checksum also covers the IPv6 pseudo-header (checksum.ts). */
export class Icmpv6View extends IcmpHeaderView {
  protected readonly layer = 'icmpv6';

  get isEcho(): boolean {
    return this.type === Icmpv6Type.ECHO_REQUEST || this.type === Icmpv6Type.ECHO_REPLY;
  }
  /** Checksum verdict given the unfolded IPv6 pseudo-header sum; null when not fully captured. */
  checksumOk(pseudoHeaderSum: number): boolean | null {
    return this.verify(pseudoHeaderSum);
  }
  /** Computes and writes the checksum; false (nothing written) when the message was not fully captured. */
  fillChecksum(pseudoHeaderSum: number): boolean {
    return this.fill(pseudoHeaderSum);
  }
  toRepr(): Icmpv6Repr {
    return new Icmpv6Repr(this.fields());
  }
}

export interface IcmpFields {
  type: number;
  code: number;
  /** Bytes 4–7 of the header as an unsigned 32-bit number; `echoRest(id, seq)` builds it for echo. */
  rest: number;
  payloadLength: number;
  /** Written as given; leave undefined to have encodeInto compute it. */
  checksum?: number;
}

/** The rest-of-header word of an echo request or reply. */
export function echoRest(identifier: number, sequence: number): number {
  return (((identifier & 0xffff) << 16) | (sequence & 0xffff)) >>> 0;
}

abstract class IcmpRepr implements IcmpFields {
  type: number;
  code: number;
  rest: number;
  payloadLength: number;
  checksum?: number;

  constructor(fields: IcmpFields) {
    this.type = fields.type;
    this.code = fields.code;
    this.rest = fields.rest;
    this.payloadLength = fields.payloadLength;
    if (fields.checksum !== undefined) this.checksum = fields.checksum;
  }

  get encodedLength(): number {
    return ICMP_HEADER_LENGTH;
  }
  /** Echo identifier: the high half of `rest`. */
  get identifier(): number {
    return this.rest >>> 16;
  }
  /** Echo sequence number: the low half of `rest`. */
  get sequence(): number {
    return this.rest & 0xffff;
  }

  protected write(buf: Buffer, off: number, initial: number | undefined): number {
    buf.writeUInt8(this.type, off);
    buf.writeUInt8(this.code, off + 1);
    buf.writeUInt16BE(0, off + 2);
    buf.writeUInt32BE(this.rest, off + 4);
    if (this.checksum !== undefined) buf.writeUInt16BE(this.checksum, off + 2);
    else {
      const sum = onesSum(buf, off, ICMP_HEADER_LENGTH + this.payloadLength, initial);
      buf.writeUInt16BE(foldChecksum(sum), off + 2);
    }
    return ICMP_HEADER_LENGTH;
  }
}

/** Plain value of an ICMPv4 header, for building packets and for tests. */
export class Icmpv4Repr extends IcmpRepr {
  /**
   * Writes the header at buf[off] and returns its length. When `checksum` is undefined it is computed
   * over the header and the `payloadLength` bytes that must already follow it.
   */
  encodeInto(buf: Buffer, off: number): number {
    return this.write(buf, off, 0);
  }
}

/** Plain value of an ICMPv6 header, for building packets and for tests. */
export class Icmpv6Repr extends IcmpRepr {
  /**
   * Writes the header at buf[off] and returns its length. When `checksum` is undefined it is computed,
   * which needs the body in place after the header and the IPv6 pseudo-header sum (checksum.ts).
   */
  encodeInto(buf: Buffer, off: number, pseudoHeaderSum?: number): number {
    if (this.checksum === undefined && pseudoHeaderSum === undefined)
      throw new Error(
        'Icmpv6Repr.encodeInto: give the IPv6 pseudo-header sum, or set `checksum` to write it as is',
      );
    return this.write(buf, off, pseudoHeaderSum);
  }
}
