import { type DecodeError, malformed, truncated } from './decode-error.js';

/** SPI and sequence number: the part of an ESP packet readable without keys (RFC 4303 §2). */
export const ESP_HEADER_LENGTH = 8;
export const ESP_PROTOCOL = 50;
/** UDP port for IKE and ESP after NAT traversal (RFC 3948 §2). */
export const NATT_PORT = 4500;
/** Four zero bytes in front of IKE messages on port 4500, where an SPI can never be zero. */
export const NON_ESP_MARKER_LENGTH = 4;
/** The single byte a NAT-keepalive datagram carries (RFC 3948 §2.3). */
export const NATT_KEEPALIVE_BYTE = 0xff;

/**
 * Zero-copy view of an ESP packet (RFC 4303) at `buf[off]`: SPI and sequence number in clear, then the
 * opaque remainder (IV, ciphertext, ICV) that only the SA's keys can open. `bind` validates once; after it
 * returns null every getter is safe without further bounds checks.
 */
export class EspView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Packet length on the wire (header + remainder), as the enclosing layer gives it. */
  length = 0;
  /** Bytes of this packet present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  /**
   * Binds to the packet at buf[off, capturedEnd). `wireLength` is how many bytes the enclosing layer
   * (IP payload, or UDP payload under NAT-T) says the packet has; it defaults to everything captured.
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
    if (have < ESP_HEADER_LENGTH) return truncated('esp', off, ESP_HEADER_LENGTH, have);
    if (wireLength < ESP_HEADER_LENGTH)
      return malformed(
        'esp',
        off,
        `the enclosing layer carries ${wireLength} bytes, less than the 8-byte header`,
      );
    // RFC 4303 §2.1: SPI 0 is for local use and MUST NOT be sent.
    if (this.spi === 0) return malformed('esp', off, 'SPI 0 is reserved and never sent on the wire');
    return null;
  }

  get spi(): number {
    return this.u32(this.off);
  }
  set spi(v: number) {
    this.buf.writeUInt32BE(v, this.off);
  }
  /** The low 32 bits of the sequence number (the high half of an ESN never travels). */
  get seq(): number {
    return this.u32(this.off + 4);
  }
  set seq(v: number) {
    this.buf.writeUInt32BE(v, this.off + 4);
  }
  get headerLength(): number {
    return ESP_HEADER_LENGTH;
  }
  /** Offset of the opaque remainder: IV (if any), ciphertext, padding, trailer, ICV. */
  get payloadOffset(): number {
    return this.off + ESP_HEADER_LENGTH;
  }
  /** Length of the opaque remainder on the wire. */
  get payloadLength(): number {
    return this.length - ESP_HEADER_LENGTH;
  }
  /** True when the whole packet was captured. */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  toRepr(): EspRepr {
    return new EspRepr({ spi: this.spi, seq: this.seq, payloadLength: this.payloadLength });
  }

  private u32(i: number): number {
    const b = this.buf;
    return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  }
}

export interface EspFields {
  spi: number;
  /** Low 32 bits of the sequence number. */
  seq: number;
  /** Bytes after the header: IV, ciphertext, padding, trailer and ICV. */
  payloadLength: number;
}

/** Plain value of an ESP header, for building packets and for tests. */
export class EspRepr implements EspFields {
  spi: number;
  seq: number;
  payloadLength: number;

  constructor(fields: EspFields) {
    this.spi = fields.spi;
    this.seq = fields.seq;
    this.payloadLength = fields.payloadLength;
  }

  get encodedLength(): number {
    return ESP_HEADER_LENGTH;
  }

  /** Writes SPI and sequence number at buf[off] and returns the header length. */
  encodeInto(buf: Buffer, off: number): number {
    if (this.spi === 0)
      throw new RangeError('ESP SPI 0 is reserved (RFC 4303 §2.1): use an SPI from 1 to 2^32-1');
    buf.writeUInt32BE(this.spi, off);
    buf.writeUInt32BE(this.seq, off + 4);
    return ESP_HEADER_LENGTH;
  }
}

/**
 * What a UDP datagram on port 4500 carries (RFC 3948 §2): `esp` (a non-zero SPI first), `ike` (the
 * 4-byte non-ESP marker, then an IKE message), `keepalive` (exactly one 0xff byte) or `truncated` (too few
 * bytes to tell, either on the wire or in the capture).
 */
export type NattPayloadKind = 'esp' | 'ike' | 'keepalive' | 'truncated';

/**
 * Classifies the UDP payload at buf[off] whose length on the wire is `len` (from the UDP header). Reads
 * only bytes that are both on the wire and in `buf`. Never allocates.
 */
export function classifyNattPayload(buf: Uint8Array, off: number, len: number): NattPayloadKind {
  const have = Math.min(len, buf.length - off);
  if (len === 1) return have === 1 && buf[off] === NATT_KEEPALIVE_BYTE ? 'keepalive' : 'truncated';
  if (len < NON_ESP_MARKER_LENGTH || have < NON_ESP_MARKER_LENGTH) return 'truncated';
  const marker = buf[off]! | buf[off + 1]! | buf[off + 2]! | buf[off + 3]!;
  return marker === 0 ? 'ike' : 'esp';
}
