/**
 * The ESP receiver's anti-replay window (RFC 4303 §3.4.3), kept as the ring bitmap of RFC 6479 so the window
 * advances without shifting bits, with the high half of extended sequence numbers inferred as in RFC 4303
 * Appendix A.
 *
 * 64-bit sequence numbers are (hi, lo) uint32 pairs: no BigInt and no allocation per packet.
 */
export type ReplayVerdict = 'ok' | 'replayed' | 'too-old';

export const REPLAY_WINDOW_MIN = 32;
export const REPLAY_WINDOW_MAX = 65536;
export const REPLAY_WINDOW_DEFAULT = 64;

const TWO_32 = 0x1_0000_0000;
/** Blocks of 32 sequence numbers in one epoch of the high half (2^32 / 32). */
const BLOCKS_PER_EPOCH = 0x800_0000;

/**
 * Call order per packet (DESIGN.md §7): `check(lo)` before the ICV, which also infers the high half the ICV
 * needs (`inferredHi`); `update(inferredHi, lo)` only once the ICV verified. A forged packet therefore never
 * moves the window, however far ahead its number claims to be.
 */
export class ReplayWindow {
  readonly size: number;
  readonly esn: boolean;
  /**
   * High 32 bits inferred by the last check() (always 0 without ESN). When the inference lands outside the
   * 64-bit space (below 1, or past 2^64 − 1) check() says 'too-old' and this holds that epoch modulo 2^32.
   */
  inferredHi = 0;

  private th = 0;
  private tl = 0;
  /** Ring of 32-bit blocks; block b of the sequence space lives in word b & mask (RFC 6479 §2). */
  private readonly ring: Uint32Array;
  private readonly mask: number;

  /** size: bits in the window (32 to 65536, default 64); esn: 64-bit sequence numbers. */
  constructor(size = REPLAY_WINDOW_DEFAULT, esn = false) {
    if (!Number.isInteger(size) || size < REPLAY_WINDOW_MIN || size > REPLAY_WINDOW_MAX)
      throw new RangeError(
        `replay window size must be an integer from ${REPLAY_WINDOW_MIN} to ${REPLAY_WINDOW_MAX} bits, got ${size}`,
      );
    this.size = size;
    this.esn = esn;
    // One block more than the window needs, so the block the top moves into can be cleared while every
    // number still inside the window keeps its bit (RFC 6479's redundant block). N is a power of two.
    let words = 2;
    while ((words - 1) * 32 < size) words *= 2;
    this.ring = new Uint32Array(words);
    this.mask = words - 1;
  }

  /** High half of the highest sequence number accepted so far (0 before any). */
  get topHi(): number {
    return this.th;
  }
  /** Low half of the highest sequence number accepted so far (0 before any). */
  get topLo(): number {
    return this.tl;
  }

  /**
   * Classifies a received sequence number (its low 32 bits, as carried in the ESP header) without changing
   * the window; sets `inferredHi`. Sequence number 0 is never valid (the first packet carries 1).
   */
  check(seqLo: number): ReplayVerdict {
    const lo = seqLo >>> 0;
    if (!this.esn) {
      this.inferredHi = 0;
      return this.classify(0, lo);
    }
    // RFC 4303 Appendix A2.2. Bl is the window's bottom modulo 2^32. Case A (Tl ≥ W − 1): the window sits
    // inside epoch Th; lo below Bl must be ahead, in epoch Th + 1. Case B (Tl < W − 1): the window reaches
    // back into epoch Th − 1; lo at or above Bl is in that old part, anything else is in epoch Th.
    // Either way the inferred number is the one congruent to lo in [T − W + 1, T − W + 2^32].
    const tl = this.tl;
    const bl = (tl - this.size + 1) >>> 0;
    let hi: number;
    if (tl >= this.size - 1) hi = lo >= bl ? this.th : this.th + 1;
    else hi = lo >= bl ? this.th - 1 : this.th;
    // Epoch −1 means a number below 0 (the SA's first packets); epoch 2^32 a counter that wrapped, which a
    // sender may never do (RFC 4303 §3.3.3). Neither can be a packet we should accept.
    if (hi < 0 || hi >= TWO_32) {
      this.inferredHi = hi >>> 0;
      return 'too-old';
    }
    this.inferredHi = hi;
    return this.classify(hi, lo);
  }

  /**
   * Classifies a sequence number whose high half travels with it (the anonymity layer carries all 64 bits),
   * without changing the window; sets `inferredHi` to `seqHi`. Nothing is inferred, so a number far behind
   * is 'too-old' here where check() would read its low half as the next epoch. A window without ESN holds
   * 32-bit numbers only: a number with a non-zero high half is refused as 'too-old'.
   */
  checkExact(seqHi: number, seqLo: number): ReplayVerdict {
    const hi = seqHi >>> 0;
    this.inferredHi = hi;
    if (!this.esn && hi !== 0) return 'too-old';
    return this.classify(hi, seqLo >>> 0);
  }

  /**
   * Marks (seqHi, seqLo) as received, moving the top forward when it is newer. Call it only after the ICV
   * verified. Numbers that fell out of the window since check() (another packet moved it) and 0 change
   * nothing. Without ESN the high half is ignored: it is 0 by definition.
   */
  update(seqHi: number, seqLo: number): void {
    const hi = this.esn ? seqHi >>> 0 : 0;
    const lo = seqLo >>> 0;
    if (hi === 0 && lo === 0) return;
    const th = this.th;
    const tl = this.tl;
    if (hi > th || (hi === th && lo > tl)) {
      this.advance(hi, lo);
    } else if (th - hi > 1 || (th - hi) * TWO_32 + tl - lo >= this.size) {
      return;
    }
    this.ring[(lo >>> 5) & this.mask]! |= 1 << (lo & 31);
  }

  /** The verdict for a number whose high half is known. */
  private classify(hi: number, lo: number): ReplayVerdict {
    if (hi === 0 && lo === 0) return 'too-old';
    const th = this.th;
    const tl = this.tl;
    if (hi > th || (hi === th && lo > tl)) return 'ok';
    // hi is th or below; more than one epoch behind is out of any window (≤ 65536 < 2^32).
    if (th - hi > 1 || (th - hi) * TWO_32 + tl - lo >= this.size) return 'too-old';
    return (this.ring[(lo >>> 5) & this.mask]! >>> (lo & 31)) & 1 ? 'replayed' : 'ok';
  }

  /**
   * Moves the top to (hi, lo), which is newer. The blocks between the old top's block and the new one are
   * cleared: at most every word of the ring, so even a jump of 2^63 costs O(N), not O(jump).
   */
  private advance(hi: number, lo: number): void {
    const oldBlock = this.tl >>> 5;
    const newBlock = lo >>> 5;
    const epochs = hi - this.th;
    const words = this.mask + 1;
    // Blocks skipped, capped at the ring size before it can overflow: an epoch holds 2^27 blocks ≫ N.
    const jump = epochs > 1 ? words : epochs * BLOCKS_PER_EPOCH + newBlock - oldBlock;
    const clear = jump < words ? jump : words;
    for (let i = 1; i <= clear; i++) this.ring[(oldBlock + i) & this.mask] = 0;
    this.th = hi;
    this.tl = lo;
  }
}
