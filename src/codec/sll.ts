import { type DecodeError, truncated } from './decode-error.js';

/** LINKTYPE_LINUX_SLL (113) header length. */
export const SLL_HEADER_LENGTH = 16;
/** LINKTYPE_LINUX_SLL2 (276) header length. */
export const SLL2_HEADER_LENGTH = 20;
/** Bytes the header keeps of the link-layer address; longer addresses are cut to these. */
export const SLL_ADDRESS_FIELD_LENGTH = 8;

/** Packet type: who the packet was for, as the kernel saw it (PACKET_* in linux/if_packet.h). */
export const SllPacketType = { HOST: 0, BROADCAST: 1, MULTICAST: 2, OTHERHOST: 3, OUTGOING: 4 } as const;

/**
 * Protocol values below 0x0600 that are not EtherTypes (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html):
 * the payload is then a Novell 802.3 frame, an 802.2 LLC frame, CAN, and so on.
 */
export const SllProtocol = { NOVELL_802_3: 0x0001, LLC_802_2: 0x0004, CAN: 0x000c, CANFD: 0x000d } as const;

/**
 * Zero-copy view of a Linux cooked capture v1 header (LINKTYPE_LINUX_SLL, 113) at `buf[off]`:
 * packet type (2), ARPHRD type (2), address length (2), address (8, zero-padded or cut), protocol (2).
 */
export class SllView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  captured = 0;

  /** Binds to the header at buf[off, capturedEnd). The header carries no length, so `wireLength` is unused. */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    if (this.captured < SLL_HEADER_LENGTH)
      return truncated('sll', off, SLL_HEADER_LENGTH, Math.max(0, this.captured));
    return null;
  }

  /** SllPacketType value. */
  get packetType(): number {
    return (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
  }
  set packetType(v: number) {
    this.buf.writeUInt16BE(v, this.off);
  }
  /** ARPHRD_* device type (1 Ethernet, 772 loopback, 776 SIT, 65534 none …). */
  get arphrdType(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set arphrdType(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  /** Length of the sender's link-layer address; may exceed the 8 bytes stored. */
  get addressLength(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  /** Address bytes actually stored in the header: min(addressLength, 8). */
  get storedAddressLength(): number {
    return Math.min(this.addressLength, SLL_ADDRESS_FIELD_LENGTH);
  }
  /** Offset in `buf` of the address field (8 bytes; the first storedAddressLength are the address). */
  get addressOffset(): number {
    return this.off + 6;
  }
  /** The EtherType of the payload (or an SllProtocol value below 0x0600). */
  get protocol(): number {
    return (this.buf[this.off + 14]! << 8) | this.buf[this.off + 15]!;
  }
  set protocol(v: number) {
    this.buf.writeUInt16BE(v, this.off + 14);
  }
  get headerLength(): number {
    return SLL_HEADER_LENGTH;
  }
  get payloadOffset(): number {
    return this.off + SLL_HEADER_LENGTH;
  }

  toRepr(): SllRepr {
    return new SllRepr({
      packetType: this.packetType,
      arphrdType: this.arphrdType,
      addressLength: this.addressLength,
      address: Buffer.from(
        this.buf.subarray(this.addressOffset, this.addressOffset + this.storedAddressLength),
      ),
      protocol: this.protocol,
    });
  }
}

/**
 * Zero-copy view of a Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2, 276) at `buf[off]`:
 * protocol (2), reserved (2), interface index (4), ARPHRD type (2), packet type (1), address length (1),
 * address (8).
 */
export class Sll2View {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  captured = 0;

  /** Binds to the header at buf[off, capturedEnd). The header carries no length, so `wireLength` is unused. */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    if (this.captured < SLL2_HEADER_LENGTH)
      return truncated('sll2', off, SLL2_HEADER_LENGTH, Math.max(0, this.captured));
    return null;
  }

  /** The EtherType of the payload (or an SllProtocol value below 0x0600). */
  get protocol(): number {
    return (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
  }
  set protocol(v: number) {
    this.buf.writeUInt16BE(v, this.off);
  }
  /** The reserved field (libpcap writes 0). */
  get reserved(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  /** Index of the interface the packet was captured on (as `ip link` numbers them). */
  get interfaceIndex(): number {
    const b = this.buf;
    const o = this.off + 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  set interfaceIndex(v: number) {
    this.buf.writeUInt32BE(v, this.off + 4);
  }
  /** ARPHRD_* device type. */
  get arphrdType(): number {
    return (this.buf[this.off + 8]! << 8) | this.buf[this.off + 9]!;
  }
  set arphrdType(v: number) {
    this.buf.writeUInt16BE(v, this.off + 8);
  }
  /** SllPacketType value. */
  get packetType(): number {
    return this.buf[this.off + 10]!;
  }
  set packetType(v: number) {
    this.buf[this.off + 10] = v;
  }
  /** Length of the sender's link-layer address; may exceed the 8 bytes stored. */
  get addressLength(): number {
    return this.buf[this.off + 11]!;
  }
  /** Address bytes actually stored in the header: min(addressLength, 8). */
  get storedAddressLength(): number {
    return Math.min(this.addressLength, SLL_ADDRESS_FIELD_LENGTH);
  }
  /** Offset in `buf` of the address field (8 bytes; the first storedAddressLength are the address). */
  get addressOffset(): number {
    return this.off + 12;
  }
  get headerLength(): number {
    return SLL2_HEADER_LENGTH;
  }
  get payloadOffset(): number {
    return this.off + SLL2_HEADER_LENGTH;
  }

  toRepr(): Sll2Repr {
    return new Sll2Repr({
      protocol: this.protocol,
      interfaceIndex: this.interfaceIndex,
      arphrdType: this.arphrdType,
      packetType: this.packetType,
      addressLength: this.addressLength,
      address: Buffer.from(
        this.buf.subarray(this.addressOffset, this.addressOffset + this.storedAddressLength),
      ),
    });
  }
}

export interface SllFields {
  packetType: number;
  arphrdType: number;
  /** The address length field; it may exceed 8 (InfiniBand), in which case `address` holds the first 8 bytes. */
  addressLength: number;
  /** The stored address bytes: min(addressLength, 8) of them, zero-padded to 8 when written. */
  address: Buffer;
  protocol: number;
}

function checkAddress(fields: { addressLength: number; address: Buffer }): void {
  if (fields.address.length !== Math.min(fields.addressLength, SLL_ADDRESS_FIELD_LENGTH))
    throw new Error(
      `cooked-capture address of ${fields.address.length} bytes does not match address length ${fields.addressLength} (8 bytes are stored at most)`,
    );
}

function writeAddress(buf: Buffer, at: number, address: Buffer): void {
  buf.set(address, at);
  buf.fill(0, at + address.length, at + SLL_ADDRESS_FIELD_LENGTH);
}

/** Plain value of a Linux cooked capture v1 header. */
export class SllRepr implements SllFields {
  packetType: number;
  arphrdType: number;
  addressLength: number;
  address: Buffer;
  protocol: number;

  /** Throws (a programmer error) when `address` does not hold min(addressLength, 8) bytes. */
  constructor(fields: SllFields) {
    checkAddress(fields);
    this.packetType = fields.packetType;
    this.arphrdType = fields.arphrdType;
    this.addressLength = fields.addressLength;
    this.address = fields.address;
    this.protocol = fields.protocol;
  }

  get encodedLength(): number {
    return SLL_HEADER_LENGTH;
  }

  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt16BE(this.packetType, off);
    buf.writeUInt16BE(this.arphrdType, off + 2);
    buf.writeUInt16BE(this.addressLength, off + 4);
    writeAddress(buf, off + 6, this.address);
    buf.writeUInt16BE(this.protocol, off + 14);
    return SLL_HEADER_LENGTH;
  }
}

export interface Sll2Fields {
  protocol: number;
  interfaceIndex: number;
  arphrdType: number;
  packetType: number;
  /** As in SllFields; one byte in v2. */
  addressLength: number;
  address: Buffer;
}

/** Plain value of a Linux cooked capture v2 header (the reserved field is written as 0). */
export class Sll2Repr implements Sll2Fields {
  protocol: number;
  interfaceIndex: number;
  arphrdType: number;
  packetType: number;
  addressLength: number;
  address: Buffer;

  /** Throws (a programmer error) when `address` does not hold min(addressLength, 8) bytes. */
  constructor(fields: Sll2Fields) {
    checkAddress(fields);
    this.protocol = fields.protocol;
    this.interfaceIndex = fields.interfaceIndex;
    this.arphrdType = fields.arphrdType;
    this.packetType = fields.packetType;
    this.addressLength = fields.addressLength;
    this.address = fields.address;
  }

  get encodedLength(): number {
    return SLL2_HEADER_LENGTH;
  }

  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt16BE(this.protocol, off);
    buf.writeUInt16BE(0, off + 2);
    buf.writeUInt32BE(this.interfaceIndex, off + 4);
    buf.writeUInt16BE(this.arphrdType, off + 8);
    buf.writeUInt8(this.packetType, off + 10);
    buf.writeUInt8(this.addressLength, off + 11);
    writeAddress(buf, off + 12, this.address);
    return SLL2_HEADER_LENGTH;
  }
}
