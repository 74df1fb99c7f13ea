import { type DecodeError, truncated } from './decode-error.js';
import {
  checkVlanTags,
  encodeVlanTags,
  VLAN_TAG_LENGTH,
  type VlanTag,
  VlanTaggedView,
  VlanTpid,
} from './vlan.js';

export { isVlanTpid, MAX_VLAN_TAGS, VLAN_TAG_LENGTH, type VlanTag } from './vlan.js';

/** Destination, source, type: the header without VLAN tags. */
export const ETHERNET_HEADER_LENGTH = 14;
export const MAC_LENGTH = 6;

/** EtherType values pktveil names. Values of 1500 and below are 802.3 length fields, not types. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  /** 802.1Q customer VLAN tag. */
  VLAN: VlanTpid.DOT1Q,
  IPV6: 0x86dd,
  /** 802.1ad service VLAN tag (Q-in-Q outer tag). */
  QINQ: VlanTpid.DOT1AD,
  /** Pre-standard Q-in-Q outer tag some switches still send. */
  QINQ_LEGACY: VlanTpid.QINQ_LEGACY,
} as const;

const HEX = '0123456789abcdef';

/** "02:00:00:00:00:01" for the 6-byte MAC address at buf[off]. */
export function macString(buf: Uint8Array, off: number): string {
  let text = '';
  for (let i = 0; i < MAC_LENGTH; i++) {
    const b = buf[off + i]!;
    if (i > 0) text += ':';
    text += HEX[b >>> 4]! + HEX[b & 0xf]!;
  }
  return text;
}

const MAC_TEXT = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Writes the MAC address in `text` ("02:00:00:00:00:01" or with dashes) at buf[off]; throws when it is not one. */
export function writeMac(buf: Uint8Array, off: number, text: string): void {
  if (!MAC_TEXT.test(text))
    throw new Error(`not a MAC address (six hex pairs with ':'): ${JSON.stringify(text)}`);
  for (let i = 0; i < MAC_LENGTH; i++) buf[off + i] = Number.parseInt(text.slice(3 * i, 3 * i + 2), 16);
}

/** The 6 bytes of the MAC address in `text`; throws when it is not one. */
export function parseMac(text: string): Buffer {
  const buf = Buffer.alloc(MAC_LENGTH);
  writeMac(buf, 0, text);
  return buf;
}

/**
 * Zero-copy view of an Ethernet II frame header at `buf[off]`, with up to MAX_VLAN_TAGS stacked
 * 802.1Q / 802.1ad tags (VlanTaggedView: tag i's TPID at off + 12 + 4·i, its TCI 2 bytes later).
 * `bind` walks the tags once; getters then read without bounds checks.
 */
export class EthernetView extends VlanTaggedView {
  /**
   * Binds to the frame at buf[off, capturedEnd). Ethernet carries no length of its own, so
   * `wireLength` is accepted for the common codec shape and not needed.
   */
  bind(buf: Buffer, off: number, capturedEnd = buf.length, _wireLength?: number): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.captured = capturedEnd - off;
    this.vlanCount = 0;
    if (this.captured < ETHERNET_HEADER_LENGTH)
      return truncated('eth', off, ETHERNET_HEADER_LENGTH, Math.max(0, this.captured));
    this.firstTypeAt = off + 12;
    this.tagsAt = off + ETHERNET_HEADER_LENGTH;
    return this.bindTags('eth', capturedEnd);
  }

  /** Offset in `buf` of the 6-byte destination MAC (format with macString). */
  get dst(): number {
    return this.off;
  }
  /** Offset in `buf` of the 6-byte source MAC. */
  get src(): number {
    return this.off + MAC_LENGTH;
  }
  /** Copies `mac` (6 bytes) into the destination address. */
  setDst(mac: Uint8Array): void {
    this.buf.set(mac.subarray(0, MAC_LENGTH), this.off);
  }
  /** Copies `mac` (6 bytes) into the source address. */
  setSrc(mac: Uint8Array): void {
    this.buf.set(mac.subarray(0, MAC_LENGTH), this.off + MAC_LENGTH);
  }

  /** The type of the payload: the field after the last VLAN tag. */
  get etherType(): number {
    const at = this.payloadTypeAt;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  set etherType(v: number) {
    this.buf.writeUInt16BE(v, this.payloadTypeAt);
  }
  /** 14 plus 4 per VLAN tag. */
  get headerLength(): number {
    return ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlanCount;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }

  toRepr(): EthernetRepr {
    return new EthernetRepr({
      dst: macString(this.buf, this.dst),
      src: macString(this.buf, this.src),
      vlan: this.vlanTags(),
      etherType: this.etherType,
    });
  }
}

export interface EthernetFields {
  /** MAC addresses as text, "02:00:00:00:00:01": readable in tests and JSON, checked when the repr is built. */
  dst: string;
  src: string;
  /** Tags outermost first; empty for an untagged frame. */
  vlan: VlanTag[];
  /** Type of the payload (after the last tag). */
  etherType: number;
}

/** Plain value of an Ethernet II header with its VLAN tags, for building frames and for tests. */
export class EthernetRepr implements EthernetFields {
  dst: string;
  src: string;
  vlan: VlanTag[];
  etherType: number;

  /** Throws (a programmer error) on a bad MAC text, a tag out of range, or too many tags. */
  constructor(fields: EthernetFields) {
    parseMac(fields.dst);
    parseMac(fields.src);
    checkVlanTags(fields.vlan);
    this.dst = fields.dst;
    this.src = fields.src;
    this.vlan = fields.vlan.map((tag) => ({ ...tag }));
    this.etherType = fields.etherType;
  }

  get encodedLength(): number {
    return ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlan.length;
  }

  /** Writes the header (addresses, tags, type) at buf[off] and returns its length. */
  encodeInto(buf: Buffer, off: number): number {
    writeMac(buf, off, this.dst);
    writeMac(buf, off + MAC_LENGTH, this.src);
    return encodeVlanTags(buf, off + 12, off + ETHERNET_HEADER_LENGTH, this.vlan, this.etherType) - off;
  }
}
