import { type DecodeError, malformed, truncated, unsupported } from './decode-error.js';

/**
 * The AGGFRAG_PAYLOAD header of IP-TFS (RFC 9347 §6.1): the first bytes of an ESP payload whose Next
 * Header is 144. Sub-type 0 is a 4-byte header; sub-type 1 adds congestion-control fields (24 bytes):
 *
 *   0: | Sub-type (0) | Reserved (8)      | BlockOffset (16) |
 *   1: | Sub-type (1) | Reserved (6) |P|E| BlockOffset (16) |
 *      | LossEventRate (32)                                 |
 *      | RTT (22) | Echo Delay (21) | Transmit Delay (21)   |   one 64-bit big-endian word
 *      | TVal (32)                                          |
 *      | TEcho (32)                                         |
 *
 * Data blocks (inner packets and padding) follow the header; this module only codes the header.
 */

/** IP protocol number / ESP Next Header of AGGFRAG_PAYLOAD (RFC 9347 §7.1). */
export const AGGFRAG_PROTOCOL = 144;
export const AGGFRAG_BASIC_HEADER_LENGTH = 4;
export const AGGFRAG_CC_HEADER_LENGTH = 24;

export const AggfragSubType = {
  BASIC: 0,
  CONGESTION_CONTROL: 1,
} as const;

/** Flag bits of the congestion-control header's second octet. */
export const AggfragFlags = {
  /** E: CE marks were counted in LossEventRate. */
  ECN: 0x01,
  /** P: PLMTUD probing in progress. */
  PROBE: 0x02,
} as const;

/** RTT saturates at this value (22 bits) and the two delays at AGGFRAG_DELAY_MAX (21 bits). */
export const AGGFRAG_RTT_MAX = 0x3fffff;
export const AGGFRAG_DELAY_MAX = 0x1fffff;

function u32(b: Buffer, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

/** RFC 9347 §6.1.2: a value at or above the field's maximum MUST be sent as the maximum. */
function saturate(what: string, v: number, max: number): number {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer, got ${v}`);
  return Math.min(v, max);
}

/**
 * Zero-copy view of an AGGFRAG payload header at `buf[off]`. `bind` validates once; after it returns null
 * every getter is safe without further bounds checks. The congestion-control getters read 0 on a
 * sub-type 0 header, which has no such fields.
 */
export class AggfragView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Payload length on the wire (header + data blocks), as the enclosing layer gives it. */
  length = 0;
  /** Bytes of this payload present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  /**
   * Binds to the payload at buf[off, capturedEnd). `wireLength` is how many bytes the enclosing layer
   * (the decrypted ESP payload, or the IP payload) says it has; it defaults to everything captured.
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
    if (have < 1) return truncated('aggfrag', off, AGGFRAG_BASIC_HEADER_LENGTH, have);
    const subType = buf[off]!;
    if (subType > AggfragSubType.CONGESTION_CONTROL)
      return unsupported('aggfrag', off, `sub-type ${subType} is not defined (RFC 9347 defines 0 and 1)`);
    const headerLength = subType === 0 ? AGGFRAG_BASIC_HEADER_LENGTH : AGGFRAG_CC_HEADER_LENGTH;
    if (wireLength < headerLength)
      return malformed(
        'aggfrag',
        off,
        `sub-type ${subType} header needs ${headerLength} bytes, the enclosing layer carries ${wireLength}`,
      );
    if (have < headerLength) return truncated('aggfrag', off, headerLength, have);
    return null;
  }

  get subType(): number {
    return this.buf[this.off]!;
  }
  /** Second octet: reserved in sub-type 0; reserved bits and the P/E flags in sub-type 1. */
  get flags(): number {
    return this.buf[this.off + 1]!;
  }
  set flags(v: number) {
    this.buf.writeUInt8(v, this.off + 1);
  }
  get isCongestionControl(): boolean {
    return this.buf[this.off] === AggfragSubType.CONGESTION_CONTROL;
  }
  /** P bit (sub-type 1): PLMTUD probing in progress. */
  get probe(): boolean {
    return this.isCongestionControl && (this.buf[this.off + 1]! & AggfragFlags.PROBE) !== 0;
  }
  /** E bit (sub-type 1): the loss event rate counts ECN CE marks. */
  get ecn(): boolean {
    return this.isCongestionControl && (this.buf[this.off + 1]! & AggfragFlags.ECN) !== 0;
  }
  /** Octets of data-block bytes (counted across payloads) before the next data block starts. */
  get blockOffset(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set blockOffset(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  /** Inverse of the loss event rate; 0 means no loss. */
  get lossEventRate(): number {
    return this.isCongestionControl ? u32(this.buf, this.off + 4) : 0;
  }
  set lossEventRate(v: number) {
    if (this.isCongestionControl) this.buf.writeUInt32BE(v, this.off + 4);
  }
  /** Sender's RTT estimate in µs (22 bits, saturating). */
  get rtt(): number {
    return this.isCongestionControl ? u32(this.buf, this.off + 8) >>> 10 : 0;
  }
  /** µs between the receiver first seeing TVal and echoing it (21 bits). */
  get echoDelay(): number {
    if (!this.isCongestionControl) return 0;
    return ((u32(this.buf, this.off + 8) & 0x3ff) << 11) | (u32(this.buf, this.off + 12) >>> 21);
  }
  /** The receiver's transmit delay in µs (21 bits). */
  get transmitDelay(): number {
    return this.isCongestionControl ? u32(this.buf, this.off + 12) & AGGFRAG_DELAY_MAX : 0;
  }
  /** Writes RTT, echo delay and transmit delay together (they share one 64-bit word), saturating each. */
  setDelays(rtt: number, echoDelay: number, transmitDelay: number): void {
    if (this.isCongestionControl) writeDelays(this.buf, this.off + 8, rtt, echoDelay, transmitDelay);
  }
  get tval(): number {
    return this.isCongestionControl ? u32(this.buf, this.off + 16) : 0;
  }
  set tval(v: number) {
    if (this.isCongestionControl) this.buf.writeUInt32BE(v, this.off + 16);
  }
  get techo(): number {
    return this.isCongestionControl ? u32(this.buf, this.off + 20) : 0;
  }
  set techo(v: number) {
    if (this.isCongestionControl) this.buf.writeUInt32BE(v, this.off + 20);
  }
  get headerLength(): number {
    return this.isCongestionControl ? AGGFRAG_CC_HEADER_LENGTH : AGGFRAG_BASIC_HEADER_LENGTH;
  }
  /** Offset of the first data-block byte. */
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  /** Data-block bytes on the wire. */
  get payloadLength(): number {
    return this.length - this.headerLength;
  }
  /** True when the whole payload was captured. */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  toRepr(): AggfragRepr {
    const fields: AggfragFields = { blockOffset: this.blockOffset, payloadLength: this.payloadLength };
    if (this.isCongestionControl)
      fields.cc = {
        probe: this.probe,
        ecn: this.ecn,
        lossEventRate: this.lossEventRate,
        rtt: this.rtt,
        echoDelay: this.echoDelay,
        transmitDelay: this.transmitDelay,
        tval: this.tval,
        techo: this.techo,
      };
    return new AggfragRepr(fields);
  }
}

function writeDelays(buf: Buffer, at: number, rtt: number, echoDelay: number, transmitDelay: number): void {
  const r = saturate('rtt', rtt, AGGFRAG_RTT_MAX);
  const e = saturate('echoDelay', echoDelay, AGGFRAG_DELAY_MAX);
  const t = saturate('transmitDelay', transmitDelay, AGGFRAG_DELAY_MAX);
  // 22 + 21 + 21 bits: the high word holds RTT and the top 10 bits of the echo delay.
  buf.writeUInt32BE(((r << 10) | (e >>> 11)) >>> 0, at);
  buf.writeUInt32BE((((e & 0x7ff) << 21) | t) >>> 0, at + 4);
}

/** The congestion-control fields of a sub-type 1 header. */
export interface AggfragCongestionControl {
  probe: boolean;
  ecn: boolean;
  lossEventRate: number;
  /** µs; values ≥ 0x3fffff are sent as 0x3fffff. */
  rtt: number;
  /** µs; values ≥ 0x1fffff are sent as 0x1fffff. */
  echoDelay: number;
  /** µs; values ≥ 0x1fffff are sent as 0x1fffff. */
  transmitDelay: number;
  tval: number;
  techo: number;
}

export interface AggfragFields {
  blockOffset: number;
  /** Data-block bytes after the header. */
  payloadLength: number;
  /** Present for a sub-type 1 (congestion-control) header, absent for sub-type 0. */
  cc?: AggfragCongestionControl;
}

/** Plain value of an AGGFRAG payload header, for building packets and for tests. */
export class AggfragRepr implements AggfragFields {
  blockOffset: number;
  payloadLength: number;
  cc?: AggfragCongestionControl;

  constructor(fields: AggfragFields) {
    this.blockOffset = fields.blockOffset;
    this.payloadLength = fields.payloadLength;
    if (fields.cc !== undefined) this.cc = { ...fields.cc };
  }

  get subType(): number {
    return this.cc ? AggfragSubType.CONGESTION_CONTROL : AggfragSubType.BASIC;
  }

  get encodedLength(): number {
    return this.cc ? AGGFRAG_CC_HEADER_LENGTH : AGGFRAG_BASIC_HEADER_LENGTH;
  }

  /** Writes the header at buf[off] (reserved bits zero) and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    const cc = this.cc;
    buf.writeUInt8(this.subType, off);
    buf.writeUInt8(cc ? (cc.probe ? AggfragFlags.PROBE : 0) | (cc.ecn ? AggfragFlags.ECN : 0) : 0, off + 1);
    buf.writeUInt16BE(this.blockOffset, off + 2);
    if (!cc) return AGGFRAG_BASIC_HEADER_LENGTH;
    buf.writeUInt32BE(cc.lossEventRate, off + 4);
    writeDelays(buf, off + 8, cc.rtt, cc.echoDelay, cc.transmitDelay);
    buf.writeUInt32BE(cc.tval, off + 16);
    buf.writeUInt32BE(cc.techo, off + 20);
    return AGGFRAG_CC_HEADER_LENGTH;
  }
}
