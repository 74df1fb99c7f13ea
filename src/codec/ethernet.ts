import { type DecodeError, truncated, unsupported } from './decode-error.js';

/** Destination, source, type: the header without VLAN tags. */
export const ETHERNET_HEADER_LENGTH = 14;
/** Each 802.1Q / 802.1ad tag adds a TPID and a TCI. */
export const VLAN_TAG_LENGTH = 4;
/** Stacks deeper than this are refused as unsupported (real networks use one or two). */
export const MAX_VLAN_TAGS = 8;
export const MAC_LENGTH = 6;

/** EtherType values pktveil names. Values of 1500 and below are 802.3 length fields, not types. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  /** 802.1Q customer VLAN tag. */
  VLAN: 0x8100,
  IPV6: 0x86dd,
  /** 802.1ad service VLAN tag (Q-in-Q outer tag). */
  QINQ: 0x88a8,
  /** Pre-standard Q-in-Q outer tag some switches still send. */
  QINQ_LEGACY: 0x9100,
} as const;

/** True for the TPIDs that introduce a VLAN tag: 0x8100, 0x88a8 and 0x9100, accepted at any depth. */
export function isVlanTpid(type: number): boolean {
  return type === EtherType.VLAN || type === EtherType.QINQ || type === EtherType.QINQ_LEGACY;
}

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
 * 802.1Q / 802.1ad tags. `bind` walks the tags once; getters then read without bounds checks.
 *
 * Tags are numbered from 0, outermost first (as on the wire). Tag i sits at off + 12 + 4·i: its TPID,
 * then its TCI (PCP 3 bits, DEI 1 bit, VLAN ID 12 bits).
 */
export class EthernetView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Bytes of the frame present in `buf` from `off`. */
  captured = 0;
  /** Number of VLAN tags found by `bind`. */
  vlanCount = 0;

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
    let typeAt = off + 12;
    let tags = 0;
    while (isVlanTpid((buf[typeAt]! << 8) | buf[typeAt + 1]!)) {
      if (tags === MAX_VLAN_TAGS)
        return unsupported('eth', typeAt, `more than ${MAX_VLAN_TAGS} stacked VLAN tags`);
      // The tag's TPID is captured (it stood where a type would); its TCI and the type after it must be too.
      if (capturedEnd < typeAt + VLAN_TAG_LENGTH + 2)
        return truncated(
          'eth',
          typeAt,
          VLAN_TAG_LENGTH + 2,
          capturedEnd - typeAt,
          `VLAN tag ${tags} (TPID, TCI, next type)`,
        );
      tags++;
      typeAt += VLAN_TAG_LENGTH;
    }
    this.vlanCount = tags;
    return null;
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
  setSrc(mac: Uint8Array): void {
    this.buf.set(mac.subarray(0, MAC_LENGTH), this.off + MAC_LENGTH);
  }

  /** Tag protocol identifier of tag i (0x8100, 0x88a8 or 0x9100). */
  vlanTpid(i: number): number {
    const at = this.off + 12 + VLAN_TAG_LENGTH * i;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  /** Priority code point (0–7) of tag i. */
  vlanPcp(i: number): number {
    return this.buf[this.off + 14 + VLAN_TAG_LENGTH * i]! >>> 5;
  }
  /** Drop eligible indicator of tag i. */
  vlanDei(i: number): boolean {
    return (this.buf[this.off + 14 + VLAN_TAG_LENGTH * i]! & 0x10) !== 0;
  }
  /** VLAN identifier (0–4095) of tag i. */
  vlanId(i: number): number {
    const at = this.off + 14 + VLAN_TAG_LENGTH * i;
    return ((this.buf[at]! & 0x0f) << 8) | this.buf[at + 1]!;
  }
  setVlanPcp(i: number, pcp: number): void {
    const at = this.off + 14 + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0x1f) | ((pcp & 7) << 5);
  }
  setVlanDei(i: number, dei: boolean): void {
    const at = this.off + 14 + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0xef) | (dei ? 0x10 : 0);
  }
  setVlanId(i: number, id: number): void {
    const at = this.off + 14 + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0xf0) | ((id >>> 8) & 0x0f);
    this.buf[at + 1] = id & 0xff;
  }

  /** The type of the payload: the field after the last VLAN tag. */
  get etherType(): number {
    const at = this.off + 12 + VLAN_TAG_LENGTH * this.vlanCount;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  set etherType(v: number) {
    this.buf.writeUInt16BE(v, this.off + 12 + VLAN_TAG_LENGTH * this.vlanCount);
  }
  /** 14 plus 4 per VLAN tag. */
  get headerLength(): number {
    return ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH * this.vlanCount;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }

  toRepr(): EthernetRepr {
    const vlan: VlanTag[] = [];
    for (let i = 0; i < this.vlanCount; i++) {
      vlan.push({ tpid: this.vlanTpid(i), pcp: this.vlanPcp(i), dei: this.vlanDei(i), id: this.vlanId(i) });
    }
    return new EthernetRepr({
      dst: macString(this.buf, this.dst),
      src: macString(this.buf, this.src),
      vlan,
      etherType: this.etherType,
    });
  }
}

/** One 802.1Q / 802.1ad tag. */
export interface VlanTag {
  /** 0x8100 (802.1Q), 0x88a8 (802.1ad) or 0x9100. */
  tpid: number;
  pcp: number;
  dei: boolean;
  id: number;
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
    if (fields.vlan.length > MAX_VLAN_TAGS)
      throw new Error(`${fields.vlan.length} VLAN tags: at most ${MAX_VLAN_TAGS} can be stacked`);
    for (const tag of fields.vlan) {
      if (!isVlanTpid(tag.tpid))
        throw new Error(`VLAN TPID 0x${tag.tpid.toString(16)} is not 0x8100, 0x88a8 or 0x9100`);
      if (!(tag.pcp >= 0 && tag.pcp <= 7 && Number.isInteger(tag.pcp)))
        throw new Error(`VLAN PCP ${tag.pcp} is not 0–7`);
      if (!(tag.id >= 0 && tag.id <= 0xfff && Number.isInteger(tag.id)))
        throw new Error(`VLAN ID ${tag.id} is not 0–4095`);
    }
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
    let at = off + 12;
    for (const tag of this.vlan) {
      buf.writeUInt16BE(tag.tpid, at);
      buf.writeUInt16BE((tag.pcp << 13) | (tag.dei ? 0x1000 : 0) | tag.id, at + 2);
      at += VLAN_TAG_LENGTH;
    }
    buf.writeUInt16BE(this.etherType, at);
    return at + 2 - off;
  }
}
