import { type DecodeError, truncated } from './decode-error.js';
import { checkVlanTags, encodeVlanTags, VLAN_TAG_LENGTH, type VlanTag, VlanTaggedView } from './vlan.js';

/** LINKTYPE_LINUX_SLL (113) header length, without VLAN tags. */
export const SLL_HEADER_LENGTH = 16;
/** LINKTYPE_LINUX_SLL2 (276) header length, without VLAN tags. */
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

/*
 * VLAN tags in cooked captures: when the protocol field is a TPID (0x8100, 0x88a8, 0x9100), the payload
 * starts with the rest of the tag, TCI then the next type, as in Ethernet. libpcap writes SLL v1 that way
 * when it puts back a tag the kernel stripped, and the kernel does so itself for tags it left in the data.
 * Both views walk such tags (VlanTaggedView), so `protocol` is always the type of the payload proper.
 */

/**
 * Zero-copy view of a Linux cooked capture v1 header (LINKTYPE_LINUX_SLL, 113) at `buf[off]`:
 * packet type (2), ARPHRD type (2), address length (2), address (8, zero-padded or cut), protocol (2),
 * then any VLAN tags the protocol field announces.
 */
export class SllView extends VlanTaggedView {
  /** Binds to the header at buf[off, capturedEnd). The header carries no length, so `wireLength` is unused. */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    this.vlanCount = 0;
    if (this.captured < SLL_HEADER_LENGTH)
      return truncated('sll', off, SLL_HEADER_LENGTH, Math.max(0, this.captured));
    this.firstTypeAt = off + 14;
    this.tagsAt = off + SLL_HEADER_LENGTH;
    return this.bindTags('sll', capturedEnd);
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
  /** The EtherType of the payload (after any VLAN tags), or an SllProtocol value below 0x0600. */
  get protocol(): number {
    const at = this.payloadTypeAt;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  set protocol(v: number) {
    this.buf.writeUInt16BE(v, this.payloadTypeAt);
  }
  /** 16 plus 4 per VLAN tag. */
  get headerLength(): number {
    return SLL_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlanCount;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }

  toRepr(): SllRepr {
    return new SllRepr({
      packetType: this.packetType,
      arphrdType: this.arphrdType,
      addressLength: this.addressLength,
      address: Buffer.from(
        this.buf.subarray(this.addressOffset, this.addressOffset + this.storedAddressLength),
      ),
      vlan: this.vlanTags(),
      protocol: this.protocol,
    });
  }
}

/**
 * Zero-copy view of a Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2, 276) at `buf[off]`:
 * protocol (2), reserved (2), interface index (4), ARPHRD type (2), packet type (1), address length (1),
 * address (8), then any VLAN tags the protocol field announces.
 */
export class Sll2View extends VlanTaggedView {
  /** Binds to the header at buf[off, capturedEnd). The header carries no length, so `wireLength` is unused. */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    this.vlanCount = 0;
    if (this.captured < SLL2_HEADER_LENGTH)
      return truncated('sll2', off, SLL2_HEADER_LENGTH, Math.max(0, this.captured));
    this.firstTypeAt = off;
    this.tagsAt = off + SLL2_HEADER_LENGTH;
    return this.bindTags('sll2', capturedEnd);
  }

  /** The EtherType of the payload (after any VLAN tags), or an SllProtocol value below 0x0600. */
  get protocol(): number {
    const at = this.payloadTypeAt;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  set protocol(v: number) {
    this.buf.writeUInt16BE(v, this.payloadTypeAt);
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
  /** 20 plus 4 per VLAN tag. */
  get headerLength(): number {
    return SLL2_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlanCount;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
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
      vlan: this.vlanTags(),
    });
  }
}

interface CookedAddress {
  /** The address length field; it may exceed 8 (InfiniBand), in which case `address` holds the first 8 bytes. */
  addressLength: number;
  /** The stored address bytes: min(addressLength, 8) of them, zero-padded to 8 when written. */
  address: Buffer;
}

function checkAddress(fields: CookedAddress): void {
  if (fields.address.length !== Math.min(fields.addressLength, SLL_ADDRESS_FIELD_LENGTH))
    throw new Error(
      `cooked-capture address of ${fields.address.length} bytes does not match address length ${fields.addressLength} (8 bytes are stored at most)`,
    );
}

function writeAddress(buf: Buffer, at: number, address: Buffer): void {
  buf.set(address, at);
  buf.fill(0, at + address.length, at + SLL_ADDRESS_FIELD_LENGTH);
}

export interface SllFields extends CookedAddress {
  packetType: number;
  arphrdType: number;
  /** VLAN tags after the header, outermost first; empty (the usual case) when omitted. */
  vlan?: VlanTag[];
  /** Type of the payload (after any tags). */
  protocol: number;
}

/** Plain value of a Linux cooked capture v1 header. */
export class SllRepr implements SllFields {
  packetType: number;
  arphrdType: number;
  addressLength: number;
  address: Buffer;
  vlan: VlanTag[];
  protocol: number;

  /** Throws (a programmer error) when `address` does not hold min(addressLength, 8) bytes or a tag is bad. */
  constructor(fields: SllFields) {
    checkAddress(fields);
    checkVlanTags(fields.vlan ?? []);
    this.packetType = fields.packetType;
    this.arphrdType = fields.arphrdType;
    this.addressLength = fields.addressLength;
    this.address = fields.address;
    this.vlan = (fields.vlan ?? []).map((tag) => ({ ...tag }));
    this.protocol = fields.protocol;
  }

  get encodedLength(): number {
    return SLL_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlan.length;
  }

  /** Writes the header (and tags) at buf[off] and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt16BE(this.packetType, off);
    buf.writeUInt16BE(this.arphrdType, off + 2);
    buf.writeUInt16BE(this.addressLength, off + 4);
    writeAddress(buf, off + 6, this.address);
    return encodeVlanTags(buf, off + 14, off + SLL_HEADER_LENGTH, this.vlan, this.protocol) - off;
  }
}

export interface Sll2Fields extends CookedAddress {
  /** Type of the payload (after any tags). */
  protocol: number;
  interfaceIndex: number;
  arphrdType: number;
  packetType: number;
  /** VLAN tags after the header, outermost first; empty (the usual case) when omitted. */
  vlan?: VlanTag[];
}

/** Plain value of a Linux cooked capture v2 header (the reserved field is written as 0). */
export class Sll2Repr implements Sll2Fields {
  protocol: number;
  interfaceIndex: number;
  arphrdType: number;
  packetType: number;
  addressLength: number;
  address: Buffer;
  vlan: VlanTag[];

  /** Throws (a programmer error) when `address` does not hold min(addressLength, 8) bytes or a tag is bad. */
  constructor(fields: Sll2Fields) {
    checkAddress(fields);
    checkVlanTags(fields.vlan ?? []);
    this.protocol = fields.protocol;
    this.interfaceIndex = fields.interfaceIndex;
    this.arphrdType = fields.arphrdType;
    this.packetType = fields.packetType;
    this.addressLength = fields.addressLength;
    this.address = fields.address;
    this.vlan = (fields.vlan ?? []).map((tag) => ({ ...tag }));
  }

  get encodedLength(): number {
    return SLL2_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlan.length;
  }

  /** Writes the header (and tags) at buf[off] and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    buf.writeUInt16BE(0, off + 2);
    buf.writeUInt32BE(this.interfaceIndex, off + 4);
    buf.writeUInt16BE(this.arphrdType, off + 8);
    buf.writeUInt8(this.packetType, off + 10);
    buf.writeUInt8(this.addressLength, off + 11);
    writeAddress(buf, off + 12, this.address);
    return encodeVlanTags(buf, off, off + SLL2_HEADER_LENGTH, this.vlan, this.protocol) - off;
  }
}
