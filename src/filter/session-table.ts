/**
 * The host's session-ID table: 64-bit SID → small session index, for the filter that keeps only this host's
 * packets out of everything broadcast into the subnet (DESIGN.md §6). It runs once per packet, before any
 * crypto, so it is built for that: keys as (hi, lo) uint32 halves in typed arrays (no BigInt, no strings),
 * open addressing with linear probing over a power-of-two capacity, a seeded mixing hash, and backward-shift
 * deletion (no tombstones, so lookups never slow down as sessions rotate). add, remove and lookup are O(1)
 * expected; the table doubles when it passes half full (amortised O(1), the only allocation).
 *
 * Memory layout, for the common case of a filter: most SIDs on a broadcast link are other hosts', so most
 * lookups miss, and a miss should touch as little memory as possible while a stream of frames passes
 * through the caches. First a summary: a blocked Bloom filter, two bits per SID in one 32-bit word, half a
 * byte per slot (256 KiB at 100k sessions), which answers most misses with one read that stays in L2.
 * Then the slots: SID halves, index and an in-use word side by side (16 bytes a slot), so a lookup the
 * summary lets through (a hit, or a false positive: about 3% of misses) reads one line. Measured by
 * bench/anon-filter.ts at 100k sessions, where the corpus streams 123 MB through the caches: a separate
 * array of 2-byte fingerprints (1 MiB) in front of the slots missed L2 on every lookup (about 45 ns a frame)
 * and made a hit cost two misses; separate hi/lo/index arrays cost up to three. Removals cannot clear summary bits
 * (other SIDs may share them), so the summary is rebuilt from the slots once as many SIDs were removed as
 * the table holds: rotation keeps its false-positive rate where it started, at amortised O(1).
 *
 * The hash is keyed with a random seed per table, so a peer that chooses its announced SIDs cannot aim them
 * at one probe sequence of ours without knowing the seed.
 */
import { randomFillSync } from 'node:crypto';

/** What a session needs from a SID filter: register, unregister and look up its accepted SIDs. */
export interface SidRegistry {
  /** Maps (hi, lo) to `index`; false (and no change) when the SID is already mapped. */
  add(hi: number, lo: number, index: number): boolean;
  /** Unmaps (hi, lo); false when it was not mapped. */
  remove(hi: number, lo: number): boolean;
  /** The index (hi, lo) maps to, or −1. */
  lookup(hi: number, lo: number): number;
}

export interface SessionTableOptions {
  /** Entries to hold without growing (default 1024); the capacity is the power of two ≥ twice this. */
  expectedEntries?: number;
  /** Hash seed (two uint32s); random by default. Fixed seeds are for tests that need exact layouts. */
  seed?: readonly [number, number];
}

/** Uint32s per slot in `slots`: hi, lo, index, in use (0 free, 1 used): 16 aligned bytes. */
const STRIDE = 4;
const USED = 3;
/** Largest capacity (2^30 slots): far above what a host's sessions need; indexes stay small integers. */
const MAX_CAPACITY = 1 << 30;
/** Slots per 32-bit summary word: 4 summary bits a slot, so ≤ 0.5 SIDs per 4 bits at the growth limit. */
const SLOTS_PER_SUMMARY_WORD = 8;

export class SessionTable implements SidRegistry {
  /** Blocked Bloom filter over the SIDs present (or removed since the last rebuild): see summaryBits. */
  private summary: Uint32Array;
  /** 32 − log2(summary words): a summary word's index is the top bits of the summary hash. */
  private summaryShift: number;
  /** SIDs removed since the summary was built, whose bits may still be set. */
  private removedSinceSummary = 0;
  /** Per slot, STRIDE apart: SID high half, low half, session index, in use. */
  private slots: Uint32Array;
  private mask: number;
  private count = 0;
  private readonly seedHi: number;
  private readonly seedLo: number;

  constructor(options: SessionTableOptions = {}) {
    const expected = options.expectedEntries ?? 1024;
    if (!Number.isInteger(expected) || expected < 1 || expected > MAX_CAPACITY / 2)
      throw new Error(
        `session table: expectedEntries ${expected} must be an integer from 1 to ${MAX_CAPACITY / 2}`,
      );
    let capacity = 16; // two summary words at least: a shift of 32 would be a shift of 0
    while (capacity < expected * 2) capacity *= 2;
    this.slots = new Uint32Array(capacity * STRIDE);
    this.mask = capacity - 1;
    this.summary = new Uint32Array(capacity / SLOTS_PER_SUMMARY_WORD);
    this.summaryShift = 32 - Math.log2(this.summary.length);
    let seed = options.seed;
    if (!seed) {
      const s = new Uint32Array(2);
      randomFillSync(s);
      seed = [s[0]!, s[1]!];
    }
    this.seedHi = seed[0] >>> 0;
    this.seedLo = seed[1] >>> 0;
  }

  /** Entries in the table. */
  get size(): number {
    return this.count;
  }

  /** Slots (a power of two); the table grows when size passes half of it. */
  get capacity(): number {
    return this.mask + 1;
  }

  /** The slot where probing for (hi, lo) starts: the low bits of the hash. */
  homeSlot(hi: number, lo: number): number {
    return this.hash(hi, lo) & this.mask;
  }

  lookup(hi: number, lo: number): number {
    hi >>>= 0;
    lo >>>= 0;
    const h = this.hash(hi, lo);
    const g = summaryHash(h);
    const bits = summaryBits(g);
    if ((this.summary[g >>> this.summaryShift]! & bits) !== bits) return -1;
    const i = this.slotOf(h, hi, lo);
    return i < 0 ? -1 : this.slots[i * STRIDE + 2]!;
  }

  /** lookup() of the SID stored big-endian at buf[off, off + 8), read straight from the packet. */
  lookupAt(buf: Uint8Array, off: number): number {
    const hi = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
    const lo = (buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!;
    return this.lookup(hi, lo);
  }

  has(hi: number, lo: number): boolean {
    return this.lookup(hi, lo) !== -1;
  }

  /** Maps (hi, lo) to `index` (an integer 0 … 2^31 − 1); false and no change when the SID is present. */
  add(hi: number, lo: number, index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index > 0x7fffffff)
      throw new RangeError(`session table: index ${index} must be an integer from 0 to 2^31 − 1`);
    hi >>>= 0;
    lo >>>= 0;
    if (this.lookup(hi, lo) !== -1) return false;
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    this.place(hi, lo, index);
    this.count++;
    return true;
  }

  /** Changes the index of a SID already present; false when it is not. */
  set(hi: number, lo: number, index: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    const i = this.slotOf(this.hash(hi, lo), hi, lo);
    if (i < 0) return false;
    if (!Number.isInteger(index) || index < 0 || index > 0x7fffffff)
      throw new RangeError(`session table: index ${index} must be an integer from 0 to 2^31 − 1`);
    this.slots[i * STRIDE + 2] = index;
    return true;
  }

  /**
   * Unmaps (hi, lo). Backward-shift deletion (Knuth 6.4, algorithm R): the entries after the hole that could
   * live in it move back, so every remaining entry stays reachable from its home slot without tombstones.
   */
  remove(hi: number, lo: number): boolean {
    hi >>>= 0;
    lo >>>= 0;
    let hole = this.slotOf(this.hash(hi, lo), hi, lo);
    if (hole < 0) return false;
    const slots = this.slots;
    const mask = this.mask;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      const k = j * STRIDE;
      if (slots[k + USED] === 0) break;
      const home = this.homeSlot(slots[k]!, slots[k + 1]!);
      // The entry at j may move to the hole when the hole lies cyclically in [home, j).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        const to = hole * STRIDE;
        slots[to] = slots[k]!;
        slots[to + 1] = slots[k + 1]!;
        slots[to + 2] = slots[k + 2]!;
        hole = j;
      }
    }
    slots[hole * STRIDE + USED] = 0;
    this.count--;
    if (++this.removedSinceSummary > this.count) this.rebuildSummary();
    return true;
  }

  /** Removes every entry (keeps the capacity). */
  clear(): void {
    this.slots.fill(0);
    this.summary.fill(0);
    this.removedSinceSummary = 0;
    this.count = 0;
  }

  /** Every entry as [hi, lo, index] (allocates; for tests and diagnostics). */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let i = 0; i <= this.mask; i++) {
      const k = i * STRIDE;
      if (this.slots[k + USED] === 0) continue;
      out.push([this.slots[k]!, this.slots[k + 1]!, this.slots[k + 2]!]);
    }
    return out;
  }

  /** Probe distance of the entry farthest from its home slot (for tests of clustering). */
  maxProbeDistance(): number {
    let max = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (this.slots[i * STRIDE + USED] === 0) continue;
      const d = (i - this.homeSlot(this.slots[i * STRIDE]!, this.slots[i * STRIDE + 1]!)) & this.mask;
      if (d > max) max = d;
    }
    return max;
  }

  /** murmur3's 32-bit mixing over both halves, seeded: home slot from the low bits. */
  private hash(hi: number, lo: number): number {
    let h = Math.imul((lo ^ this.seedLo) >>> 0, 0xcc9e2d51);
    h = ((h << 15) | (h >>> 17)) ^ hi ^ this.seedHi;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** The slot holding (hi, lo), whose hash is h, or −1. */
  private slotOf(h: number, hi: number, lo: number): number {
    const slots = this.slots;
    const mask = this.mask;
    let i = h & mask;
    for (;;) {
      const k = i * STRIDE;
      if (slots[k + USED] === 0) return -1;
      if (slots[k + 1] === lo && slots[k] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  private place(hi: number, lo: number, index: number): void {
    const mask = this.mask;
    const h = this.hash(hi, lo);
    let i = h & mask;
    while (this.slots[i * STRIDE + USED] !== 0) i = (i + 1) & mask;
    const k = i * STRIDE;
    this.slots[k] = hi;
    this.slots[k + 1] = lo;
    this.slots[k + 2] = index;
    this.slots[k + USED] = 1;
    this.summarise(h);
  }

  private summarise(h: number): void {
    const g = summaryHash(h);
    this.summary[g >>> this.summaryShift]! |= summaryBits(g);
  }

  /** The summary again from the SIDs present: clears the bits of removed ones. */
  private rebuildSummary(): void {
    this.summary.fill(0);
    this.removedSinceSummary = 0;
    const slots = this.slots;
    for (let k = 0; k < slots.length; k += STRIDE)
      if (slots[k + USED] !== 0) this.summarise(this.hash(slots[k]!, slots[k + 1]!));
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    if (capacity > MAX_CAPACITY) throw new RangeError(`session table: more than ${MAX_CAPACITY / 2} entries`);
    const slots = this.slots;
    this.slots = new Uint32Array(capacity * STRIDE);
    this.mask = capacity - 1;
    this.summary = new Uint32Array(capacity / SLOTS_PER_SUMMARY_WORD);
    this.summaryShift = 32 - Math.log2(this.summary.length);
    this.removedSinceSummary = 0;
    for (let k = 0; k < slots.length; k += STRIDE)
      if (slots[k + USED] !== 0) this.place(slots[k]!, slots[k + 1]!, slots[k + 2]!);
  }
}

/** The hash remixed (Fibonacci multiplier) so the summary's word and bits do not follow the home slot. */
function summaryHash(h: number): number {
  return Math.imul(h, 0x9e3779b1);
}

/** Two bits of one summary word, from the remixed hash's low 10 bits (the word index is its top bits). */
function summaryBits(g: number): number {
  return (1 << (g & 31)) | (1 << ((g >>> 5) & 31));
}
