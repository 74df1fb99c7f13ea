import { type DecodeError, truncated } from './decode-error.js';

/**
 * The broadcast anonymity layer on the wire (DESIGN.md §6), carried directly over IPv4:
 *
 *   current SID (8, clear) | sequence (8, clear) | sealed{ next SID (8) | protocol (1) | transport } | tag (16)
 *
 * The clear part is what a host's filter decides on at line rate, before any decryption; the sealed part
 * and the tag belong to the AEAD (AAD = current SID ‖ sequence).
 */

/** IP protocol number of the anonymity layer unless configured otherwise (RFC 3692 experimental). */
export const ANON_DEFAULT_PROTOCOL = 253;
export const ANON_SID_LENGTH = 8;
/** Current SID and sequence: the bytes readable without keys. */
export const ANON_CLEAR_LENGTH = 16;
/** Next SID and protocol: the fixed start of the sealed part. */
export const ANON_SEALED_HEADER_LENGTH = 9;
export const ANON_TAG_LENGTH = 16;
/** Shortest packet: clear part, sealed header with no transport bytes, tag. */
export const ANON_MIN_LENGTH = ANON_CLEAR_LENGTH + ANON_SEALED_HEADER_LENGTH + ANON_TAG_LENGTH;

const U64_MAX = (1n << 64n) - 1n;

function u32(b: Buffer, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

function u64(b: Buffer, i: number): bigint {
  return (BigInt(u32(b, i)) << 32n) | BigInt(u32(b, i + 4));
}

function checkU64(what: string, v: bigint): bigint {
  if (v < 0n || v > U64_MAX) throw new RangeError(`${what} must be an unsigned 64-bit value, got ${v}`);
  return v;
}

/**
 * Zero-copy view of an anonymity-layer packet at `buf[off]`. `bind` validates once; after it returns null
 * every getter is safe. The hot path reads the SIDs as two uint32 halves (`sidHi`/`sidLo`); the bigint and
 * hex forms allocate and are meant for slow paths (logs, tables keyed by strings, JSON).
 */
export class AnonView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Packet length on the wire (clear part + sealed part + tag), as the IP layer gives it. */
  length = 0;
  /** Bytes of this packet present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  /**
   * Binds to the packet at buf[off, capturedEnd). `wireLength` is how many bytes the IP layer says the
   * packet has; it defaults to everything captured. A packet whose clear part was captured binds even if
   * the rest was cut short (the filter needs only the clear part); `complete` says whether it all is here.
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
    const clear = this.captured;
    if (clear < ANON_SID_LENGTH) return truncated('anon', off, ANON_SID_LENGTH, clear, 'current session ID');
    if (clear < ANON_CLEAR_LENGTH) return truncated('anon', off, ANON_CLEAR_LENGTH, clear, 'sequence number');
    if (wireLength < ANON_CLEAR_LENGTH + ANON_SEALED_HEADER_LENGTH)
      return truncated('anon', off, 25, wireLength, 'sealed next session ID and protocol');
    if (wireLength < ANON_MIN_LENGTH)
      return truncated('anon', off, ANON_MIN_LENGTH, wireLength, 'authentication tag');
    return null;
  }

  /** High 32 bits of the current session ID. */
  get sidHi(): number {
    return u32(this.buf, this.off);
  }
  set sidHi(v: number) {
    this.buf.writeUInt32BE(v, this.off);
  }
  /** Low 32 bits of the current session ID. */
  get sidLo(): number {
    return u32(this.buf, this.off + 4);
  }
  set sidLo(v: number) {
    this.buf.writeUInt32BE(v, this.off + 4);
  }
  /** The current session ID (allocates a bigint). */
  get currentSid(): bigint {
    return u64(this.buf, this.off);
  }
  set currentSid(v: bigint) {
    this.buf.writeBigUInt64BE(checkU64('currentSid', v), this.off);
  }
  /** The current session ID as 16 lowercase hex characters (allocates a string). */
  get currentSidHex(): string {
    return this.buf.toString('hex', this.off, this.off + ANON_SID_LENGTH);
  }
  get sequenceHi(): number {
    return u32(this.buf, this.off + 8);
  }
  set sequenceHi(v: number) {
    this.buf.writeUInt32BE(v, this.off + 8);
  }
  get sequenceLo(): number {
    return u32(this.buf, this.off + 12);
  }
  set sequenceLo(v: number) {
    this.buf.writeUInt32BE(v, this.off + 12);
  }
  /** The 64-bit sequence number (allocates a bigint). */
  get sequence(): bigint {
    return u64(this.buf, this.off + 8);
  }
  set sequence(v: bigint) {
    this.buf.writeBigUInt64BE(checkU64('sequence', v), this.off + 8);
  }
  /** Length of the clear header (current SID and sequence). */
  get headerLength(): number {
    return ANON_CLEAR_LENGTH;
  }
  /** Offset of everything after the clear header (sealed part, then tag). */
  get payloadOffset(): number {
    return this.off + ANON_CLEAR_LENGTH;
  }
  /** Bytes after the clear header on the wire: sealed part plus tag. */
  get payloadLength(): number {
    return this.length - ANON_CLEAR_LENGTH;
  }
  /** Offset of the ciphertext (next SID, protocol, transport). */
  get sealedOffset(): number {
    return this.off + ANON_CLEAR_LENGTH;
  }
  /** Length of the ciphertext, tag excluded. */
  get sealedLength(): number {
    return this.length - ANON_CLEAR_LENGTH - ANON_TAG_LENGTH;
  }
  /** Offset of the 16-byte authentication tag (the last bytes on the wire). */
  get tagOffset(): number {
    return this.off + this.length - ANON_TAG_LENGTH;
  }
  /** True when the whole packet was captured (needed before it can be opened). */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  toRepr(): AnonRepr {
    return new AnonRepr({
      currentSid: this.currentSid,
      sequence: this.sequence,
      payloadLength: this.payloadLength,
    });
  }
}

export interface AnonFields {
  currentSid: bigint;
  sequence: bigint;
  /** Bytes after the clear header: sealed part (≥ 9) plus the 16-byte tag. */
  payloadLength: number;
}

/** Plain value of the clear header, for building packets and for tests. Sealing writes the rest. */
export class AnonRepr implements AnonFields {
  currentSid: bigint;
  sequence: bigint;
  payloadLength: number;

  constructor(fields: AnonFields) {
    this.currentSid = fields.currentSid;
    this.sequence = fields.sequence;
    this.payloadLength = fields.payloadLength;
  }

  get encodedLength(): number {
    return ANON_CLEAR_LENGTH;
  }

  /** Writes current SID and sequence at buf[off] and returns 16. */
  encodeInto(buf: Buffer, off: number): number {
    const minPayload = ANON_SEALED_HEADER_LENGTH + ANON_TAG_LENGTH;
    if (!Number.isInteger(this.payloadLength) || this.payloadLength < minPayload)
      throw new RangeError(
        `payloadLength must be at least ${minPayload} (sealed header + tag), got ${this.payloadLength}`,
      );
    buf.writeBigUInt64BE(checkU64('currentSid', this.currentSid), off);
    buf.writeBigUInt64BE(checkU64('sequence', this.sequence), off + 8);
    return ANON_CLEAR_LENGTH;
  }
}

/**
 * View of the sealed part once opened: next SID (8) | protocol (1) | transport header and data. `buf`
 * holds plaintext here (the output of the AEAD), so this is not what the wire shows.
 */
export class AnonSealedView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Plaintext length: 9 + transport. */
  length = 0;

  bind(buf: Buffer, off: number, end = buf.length): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.length = Math.max(0, end - off);
    if (this.length < ANON_SEALED_HEADER_LENGTH)
      return truncated(
        'anon',
        off,
        ANON_SEALED_HEADER_LENGTH,
        this.length,
        'opened next session ID and protocol',
      );
    return null;
  }

  get nextSidHi(): number {
    return u32(this.buf, this.off);
  }
  get nextSidLo(): number {
    return u32(this.buf, this.off + 4);
  }
  /** The announced next session ID (allocates a bigint). */
  get nextSid(): bigint {
    return u64(this.buf, this.off);
  }
  get nextSidHex(): string {
    return this.buf.toString('hex', this.off, this.off + ANON_SID_LENGTH);
  }
  /** IP protocol number of the transport header that follows (6 TCP, 17 UDP, …). */
  get protocol(): number {
    return this.buf[this.off + ANON_SID_LENGTH]!;
  }
  get transportOffset(): number {
    return this.off + ANON_SEALED_HEADER_LENGTH;
  }
  get transportLength(): number {
    return this.length - ANON_SEALED_HEADER_LENGTH;
  }

  toRepr(): AnonSealedRepr {
    return new AnonSealedRepr({ nextSid: this.nextSid, protocol: this.protocol });
  }
}

export interface AnonSealedFields {
  nextSid: bigint;
  protocol: number;
}

/** Plain value of the sealed header (plaintext side), written before sealing. */
export class AnonSealedRepr implements AnonSealedFields {
  nextSid: bigint;
  protocol: number;

  constructor(fields: AnonSealedFields) {
    this.nextSid = fields.nextSid;
    this.protocol = fields.protocol;
  }

  get encodedLength(): number {
    return ANON_SEALED_HEADER_LENGTH;
  }

  encodeInto(buf: Buffer, off: number): number {
    buf.writeBigUInt64BE(checkU64('nextSid', this.nextSid), off);
    buf.writeUInt8(this.protocol, off + ANON_SID_LENGTH);
    return ANON_SEALED_HEADER_LENGTH;
  }
}
