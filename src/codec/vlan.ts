import { type DecodeError, truncated, unsupported } from './decode-error.js';

/** Each 802.1Q / 802.1ad tag adds a TPID and a TCI. */
export const VLAN_TAG_LENGTH = 4;
/** Stacks deeper than this are refused as unsupported (real networks use one or two). */
export const MAX_VLAN_TAGS = 8;

/** TPIDs that introduce a VLAN tag. */
export const VlanTpid = {
  /** 802.1Q customer VLAN tag. */
  DOT1Q: 0x8100,
  /** 802.1ad service VLAN tag (Q-in-Q outer tag). */
  DOT1AD: 0x88a8,
  /** Pre-standard Q-in-Q outer tag some switches still send. */
  QINQ_LEGACY: 0x9100,
} as const;

/** True for 0x8100, 0x88a8 and 0x9100; all three are accepted at any depth of a stack. */
export function isVlanTpid(type: number): boolean {
  return type === VlanTpid.DOT1Q || type === VlanTpid.DOT1AD || type === VlanTpid.QINQ_LEGACY;
}

/** One 802.1Q / 802.1ad tag. */
export interface VlanTag {
  /** 0x8100 (802.1Q), 0x88a8 (802.1ad) or 0x9100. */
  tpid: number;
  /** Priority code point, 0–7. */
  pcp: number;
  /** Drop eligible indicator. */
  dei: boolean;
  /** VLAN identifier, 0–4095. */
  id: number;
}

/**
 * A link header whose type field may announce a stack of VLAN tags: Ethernet, and Linux cooked captures,
 * where the kernel or libpcap leaves a tag after the header with the header's protocol set to its TPID.
 *
 * Layout: the header's type field (at `firstTypeAt`) holds the TPID of tag 0; the tags' remaining bytes
 * start at `tagsAt`, 4 per tag: TCI (PCP 3 bits, DEI 1, VLAN ID 12), then the next type, which is the
 * TPID of the next tag or, after the last tag, the type of the payload. In Ethernet the two are adjacent
 * (12 and 14); in Linux cooked v2 the type field is at the start of the header and tags follow it.
 * Tags are numbered from 0, outermost first.
 */
export abstract class VlanTaggedView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Bytes of the frame present in `buf` from `off`. */
  captured = 0;
  /** Number of VLAN tags found by `bind`. */
  vlanCount = 0;
  /** Offset of the header's own type field. */
  protected firstTypeAt = 0;
  /** Offset of tag 0's TCI. */
  protected tagsAt = 0;

  /** Offset of the type field that names the payload: after the last tag, or the header's own. */
  protected payloadTypeAt = 0;

  /** Walks the tags once, after the subclass has checked its fixed header and set the two offsets. */
  protected bindTags(layer: string, capturedEnd: number): DecodeError | null {
    const at = this.firstTypeAt;
    this.vlanCount = 0;
    this.payloadTypeAt = at;
    // Untagged frames, the common case, in few bytecodes so the JIT inlines bind into parsers.
    return isVlanTpid((this.buf[at]! << 8) | this.buf[at + 1]!) ? this.walkTags(layer, capturedEnd) : null;
  }

  private walkTags(layer: string, capturedEnd: number): DecodeError | null {
    const buf = this.buf;
    let type = (buf[this.firstTypeAt]! << 8) | buf[this.firstTypeAt + 1]!;
    let tags = 0;
    while (isVlanTpid(type)) {
      const tagAt = this.tagsAt + VLAN_TAG_LENGTH * tags;
      // With 8 tags walked, `type` is the 9th TPID, in the last 2 bytes of tag 7.
      if (tags === MAX_VLAN_TAGS)
        return unsupported(layer, tagAt - 2, `more than ${MAX_VLAN_TAGS} stacked VLAN tags`);
      if (capturedEnd - tagAt < VLAN_TAG_LENGTH)
        return truncated(
          layer,
          tagAt,
          VLAN_TAG_LENGTH,
          Math.max(0, capturedEnd - tagAt),
          `VLAN tag ${tags} (TCI and the type after it)`,
        );
      type = (buf[tagAt + 2]! << 8) | buf[tagAt + 3]!;
      tags++;
    }
    this.vlanCount = tags;
    this.payloadTypeAt = this.tagsAt + VLAN_TAG_LENGTH * tags - 2;
    return null;
  }

  /** Tag protocol identifier of tag i (0x8100, 0x88a8 or 0x9100). */
  vlanTpid(i: number): number {
    const at = i === 0 ? this.firstTypeAt : this.tagsAt + VLAN_TAG_LENGTH * i - 2;
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }
  /** Priority code point (0–7) of tag i. */
  vlanPcp(i: number): number {
    return this.buf[this.tagsAt + VLAN_TAG_LENGTH * i]! >>> 5;
  }
  /** Drop eligible indicator of tag i. */
  vlanDei(i: number): boolean {
    return (this.buf[this.tagsAt + VLAN_TAG_LENGTH * i]! & 0x10) !== 0;
  }
  /** VLAN identifier (0–4095) of tag i. */
  vlanId(i: number): number {
    const at = this.tagsAt + VLAN_TAG_LENGTH * i;
    return ((this.buf[at]! & 0x0f) << 8) | this.buf[at + 1]!;
  }
  setVlanPcp(i: number, pcp: number): void {
    const at = this.tagsAt + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0x1f) | ((pcp & 7) << 5);
  }
  setVlanDei(i: number, dei: boolean): void {
    const at = this.tagsAt + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0xef) | (dei ? 0x10 : 0);
  }
  setVlanId(i: number, id: number): void {
    const at = this.tagsAt + VLAN_TAG_LENGTH * i;
    this.buf[at] = (this.buf[at]! & 0xf0) | ((id >>> 8) & 0x0f);
    this.buf[at + 1] = id & 0xff;
  }

  /** The tags as plain values (allocates; for toRepr and humans). */
  vlanTags(): VlanTag[] {
    const tags: VlanTag[] = [];
    for (let i = 0; i < this.vlanCount; i++)
      tags.push({ tpid: this.vlanTpid(i), pcp: this.vlanPcp(i), dei: this.vlanDei(i), id: this.vlanId(i) });
    return tags;
  }
}

/** Throws (a programmer error) when a repr's tag list cannot be encoded. */
export function checkVlanTags(tags: readonly VlanTag[]): void {
  if (tags.length > MAX_VLAN_TAGS)
    throw new Error(`${tags.length} VLAN tags: at most ${MAX_VLAN_TAGS} can be stacked`);
  for (const tag of tags) {
    if (!isVlanTpid(tag.tpid))
      throw new Error(`VLAN TPID 0x${tag.tpid.toString(16)} is not 0x8100, 0x88a8 or 0x9100`);
    if (!(Number.isInteger(tag.pcp) && tag.pcp >= 0 && tag.pcp <= 7))
      throw new Error(`VLAN PCP ${tag.pcp} is not 0–7`);
    if (!(Number.isInteger(tag.id) && tag.id >= 0 && tag.id <= 0xfff))
      throw new Error(`VLAN ID ${tag.id} is not 0–4095`);
  }
}

/**
 * Writes a header's type field and the tags after it (the layout of VlanTaggedView): the type field gets
 * tag 0's TPID, or `payloadType` when there are no tags. Returns the offset just past the last tag.
 */
export function encodeVlanTags(
  buf: Buffer,
  firstTypeAt: number,
  tagsAt: number,
  tags: readonly VlanTag[],
  payloadType: number,
): number {
  buf.writeUInt16BE(tags.length === 0 ? payloadType : tags[0]!.tpid, firstTypeAt);
  let at = tagsAt;
  for (let i = 0; i < tags.length; i++) {
    const tag = tags[i]!;
    buf.writeUInt16BE((tag.pcp << 13) | (tag.dei ? 0x1000 : 0) | tag.id, at);
    buf.writeUInt16BE(i + 1 < tags.length ? tags[i + 1]!.tpid : payloadType, at + 2);
    at += VLAN_TAG_LENGTH;
  }
  return at;
}
