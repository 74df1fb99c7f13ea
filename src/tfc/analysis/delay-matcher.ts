/**
 * Pairs packets sent (the capture before a TFC transform) with the same packets delivered (after it) by
 * their fingerprints (ip-packet-hash.ts), giving the delay each one gained. Identical packets pair first
 * sent with first delivered.
 *
 * State is bounded by time, not by file length: a sent packet still unpaired `horizonNs` after it was sent
 * (by the delivered stream's clock) is given up as lost and forgotten. The pending packets sit in a ring in
 * send order with an open-addressing index over it, all typed arrays: nothing is allocated per packet.
 */

const EMPTY = 0;
const TOMBSTONE = -1;

export class DelayMatcher {
  /** Pairs made. */
  matched = 0;
  /** Sent packets never paired (given up after the horizon, or left at the end). */
  unmatchedSent = 0;
  /** Delivered packets with no pending sent packet to pair with. */
  unmatchedDelivered = 0;

  // Ring of pending sent packets, oldest at `head`; positions grow without bound, slot = position & mask.
  private h1 = new Uint32Array(1024);
  private h2 = new Uint32Array(1024);
  private ts = new Float64Array(1024);
  private paired = new Uint8Array(1024);
  private head = 0;
  private tail = 0;
  /** Index: (ring position + 1) per slot, EMPTY or TOMBSTONE. */
  private index = new Float64Array(4096);
  private used = 0;

  constructor(readonly horizonNs: number) {
    if (!(horizonNs > 0)) throw new Error(`the delay horizon must be positive, got ${horizonNs} ns`);
  }

  /** Paired packets still in the ring (behind an unpaired older one). */
  private matchedInRing = 0;

  /** Packets waiting for their delivery. */
  get pending(): number {
    return this.tail - this.head - this.matchedInRing;
  }

  /** A packet sent at `tsNs` with fingerprint (a, b), two uint32 hashes. */
  sent(a: number, b: number, tsNs: number): void {
    a >>>= 0;
    b >>>= 0;
    if (this.tail - this.head === this.ts.length) this.growRing();
    const pos = this.tail++;
    const slot = pos & (this.ts.length - 1);
    this.h1[slot] = a;
    this.h2[slot] = b;
    this.ts[slot] = tsNs;
    this.paired[slot] = 0;
    if ((this.used + 1) * 2 > this.index.length) this.rebuildIndex();
    this.insert(a, pos);
  }

  /**
   * A packet delivered at `tsNs` with fingerprint (a, b): the delay in nanoseconds since the earliest
   * pending sent packet with that fingerprint, or -1 when there is none.
   */
  delivered(a: number, b: number, tsNs: number): number {
    a >>>= 0;
    b >>>= 0;
    const mask = this.index.length - 1;
    const ringMask = this.ts.length - 1;
    let bestIndexSlot = -1;
    let bestPos = -1;
    for (let i = hashSlot(a, mask); ; i = (i + 1) & mask) {
      const entry = this.index[i]!;
      if (entry === EMPTY) break;
      if (entry === TOMBSTONE) continue;
      const pos = entry - 1;
      const slot = pos & ringMask;
      if (this.h1[slot] === a && this.h2[slot] === b && (bestPos < 0 || pos < bestPos)) {
        bestPos = pos;
        bestIndexSlot = i;
      }
    }
    if (bestPos < 0) {
      this.unmatchedDelivered++;
      return -1;
    }
    this.index[bestIndexSlot] = TOMBSTONE;
    const slot = bestPos & ringMask;
    this.paired[slot] = 1;
    this.matchedInRing++;
    this.matched++;
    this.dropPairedHead();
    return tsNs - this.ts[slot]!;
  }

  /** Gives up on sent packets older than `nowNs − horizonNs`, counting them unmatched. */
  expire(nowNs: number): void {
    const limit = nowNs - this.horizonNs;
    const ringMask = this.ts.length - 1;
    while (this.head < this.tail && this.ts[this.head & ringMask]! < limit) this.forgetHead();
  }

  /** End of both streams: every sent packet still pending is unmatched. */
  finish(): void {
    while (this.head < this.tail) this.forgetHead();
  }

  private forgetHead(): void {
    const pos = this.head;
    const slot = pos & (this.ts.length - 1);
    if (this.paired[slot]) this.matchedInRing--;
    else {
      this.unmatchedSent++;
      this.remove(this.h1[slot]!, pos);
    }
    this.head++;
  }

  /** Paired packets at the head leave the ring at once, so they take no room. */
  private dropPairedHead(): void {
    const ringMask = this.ts.length - 1;
    while (this.head < this.tail && this.paired[this.head & ringMask]) {
      this.matchedInRing--;
      this.head++;
    }
  }

  private insert(a: number, pos: number): void {
    const mask = this.index.length - 1;
    let i = hashSlot(a, mask);
    while (this.index[i]! > 0) i = (i + 1) & mask;
    if (this.index[i] === EMPTY) this.used++;
    this.index[i] = pos + 1;
  }

  private remove(a: number, pos: number): void {
    const mask = this.index.length - 1;
    for (let i = hashSlot(a, mask); this.index[i] !== EMPTY; i = (i + 1) & mask)
      if (this.index[i] === pos + 1) {
        this.index[i] = TOMBSTONE;
        return;
      }
  }

  /** Fresh index without tombstones, sized for the pending packets (at most half full after adding). */
  private rebuildIndex(): void {
    let size = 4096;
    while ((this.pending + 1) * 4 > size) size *= 2;
    this.index = new Float64Array(size);
    this.used = 0;
    const ringMask = this.ts.length - 1;
    for (let pos = this.head; pos < this.tail; pos++) {
      const slot = pos & ringMask;
      if (!this.paired[slot]) this.insert(this.h1[slot]!, pos);
    }
  }

  private growRing(): void {
    const old = this.ts.length;
    const oldMask = old - 1;
    const h1 = new Uint32Array(old * 2);
    const h2 = new Uint32Array(old * 2);
    const ts = new Float64Array(old * 2);
    const paired = new Uint8Array(old * 2);
    const mask = old * 2 - 1;
    for (let pos = this.head; pos < this.tail; pos++) {
      h1[pos & mask] = this.h1[pos & oldMask]!;
      h2[pos & mask] = this.h2[pos & oldMask]!;
      ts[pos & mask] = this.ts[pos & oldMask]!;
      paired[pos & mask] = this.paired[pos & oldMask]!;
    }
    this.h1 = h1;
    this.h2 = h2;
    this.ts = ts;
    this.paired = paired;
  }
}

/** `a` is already a well-mixed hash: its low bits choose the slot. */
function hashSlot(a: number, mask: number): number {
  return a & mask;
}
