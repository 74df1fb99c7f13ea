import { type DecodeError, truncated } from './decode-error.js';

/** Hardware type, protocol type, the two address lengths and the operation, before the addresses. */
export const ARP_FIXED_LENGTH = 8;

export const ArpOperation = { REQUEST: 1, REPLY: 2 } as const;
/** ARP hardware type of Ethernet (htype). */
export const ARP_HTYPE_ETHERNET = 1;

/**
 * Zero-copy view of an ARP packet (RFC 826) at `buf[off]`: the fixed 8 bytes, then sender hardware,
 * sender protocol, target hardware and target protocol addresses, their lengths given by hlen and plen.
 * `bind` checks that all four addresses are captured; address getters return offsets into `buf`.
 */
export class ArpView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Bytes present in `buf` from `off` (Ethernet padding after the addresses included). */
  captured = 0;

  /** Binds to the packet at buf[off, capturedEnd). ARP carries no length field, so `wireLength` is unused. */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    if (this.captured < ARP_FIXED_LENGTH)
      return truncated('arp', off, ARP_FIXED_LENGTH, Math.max(0, this.captured));
    const length = this.length;
    if (this.captured < length)
      return truncated(
        'arp',
        off,
        length,
        this.captured,
        `packet with ${this.hlen}-byte and ${this.plen}-byte addresses`,
      );
    return null;
  }

  /** Hardware type (1 = Ethernet). */
  get htype(): number {
    return (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
  }
  set htype(v: number) {
    this.buf.writeUInt16BE(v, this.off);
  }
  /** Protocol type, an EtherType (0x0800 = IPv4). */
  get ptype(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set ptype(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  /** Hardware address length in bytes. */
  get hlen(): number {
    return this.buf[this.off + 4]!;
  }
  /** Protocol address length in bytes. */
  get plen(): number {
    return this.buf[this.off + 5]!;
  }
  /** Operation (1 request, 2 reply). */
  get oper(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  set oper(v: number) {
    this.buf.writeUInt16BE(v, this.off + 6);
  }
  /** Offset of the sender hardware address (hlen bytes). */
  get senderHwOffset(): number {
    return this.off + ARP_FIXED_LENGTH;
  }
  /** Offset of the sender protocol address (plen bytes). */
  get senderProtoOffset(): number {
    return this.off + ARP_FIXED_LENGTH + this.hlen;
  }
  /** Offset of the target hardware address (hlen bytes). */
  get targetHwOffset(): number {
    return this.off + ARP_FIXED_LENGTH + this.hlen + this.plen;
  }
  /** Offset of the target protocol address (plen bytes). */
  get targetProtoOffset(): number {
    return this.off + ARP_FIXED_LENGTH + 2 * this.hlen + this.plen;
  }
  /** Length of the ARP packet: fixed part and the four addresses (padding after it is not ARP's). */
  get length(): number {
    return ARP_FIXED_LENGTH + 2 * (this.hlen + this.plen);
  }

  toRepr(): ArpRepr {
    const copy = (at: number, len: number) => Buffer.from(this.buf.subarray(at, at + len));
    return new ArpRepr({
      htype: this.htype,
      ptype: this.ptype,
      oper: this.oper,
      senderHw: copy(this.senderHwOffset, this.hlen),
      senderProto: copy(this.senderProtoOffset, this.plen),
      targetHw: copy(this.targetHwOffset, this.hlen),
      targetProto: copy(this.targetProtoOffset, this.plen),
    });
  }
}

export interface ArpFields {
  htype: number;
  ptype: number;
  oper: number;
  /** Addresses as bytes; hlen and plen are their lengths, so both hardware (and both protocol) addresses must match. */
  senderHw: Buffer;
  senderProto: Buffer;
  targetHw: Buffer;
  targetProto: Buffer;
}

/** Plain value of an ARP packet, for building packets and for tests. */
export class ArpRepr implements ArpFields {
  htype: number;
  ptype: number;
  oper: number;
  senderHw: Buffer;
  senderProto: Buffer;
  targetHw: Buffer;
  targetProto: Buffer;

  /** Throws (a programmer error) when sender and target addresses differ in length or exceed 255 bytes. */
  constructor(fields: ArpFields) {
    if (fields.senderHw.length !== fields.targetHw.length || fields.senderHw.length > 255)
      throw new Error(
        'ARP sender and target hardware addresses must have the same length, at most 255 bytes',
      );
    if (fields.senderProto.length !== fields.targetProto.length || fields.senderProto.length > 255)
      throw new Error(
        'ARP sender and target protocol addresses must have the same length, at most 255 bytes',
      );
    this.htype = fields.htype;
    this.ptype = fields.ptype;
    this.oper = fields.oper;
    this.senderHw = fields.senderHw;
    this.senderProto = fields.senderProto;
    this.targetHw = fields.targetHw;
    this.targetProto = fields.targetProto;
  }

  get encodedLength(): number {
    return ARP_FIXED_LENGTH + 2 * (this.senderHw.length + this.senderProto.length);
  }

  /** Writes the packet at buf[off] and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt16BE(this.htype, off);
    buf.writeUInt16BE(this.ptype, off + 2);
    buf[off + 4] = this.senderHw.length;
    buf[off + 5] = this.senderProto.length;
    buf.writeUInt16BE(this.oper, off + 6);
    let at = off + ARP_FIXED_LENGTH;
    for (const addr of [this.senderHw, this.senderProto, this.targetHw, this.targetProto]) {
      buf.set(addr, at);
      at += addr.length;
    }
    return at - off;
  }
}
