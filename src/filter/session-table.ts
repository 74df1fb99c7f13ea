/**
 * The host's session-ID table: 64-bit SID → small session index, for the filter that keeps only this host's
 * packets out of everything broadcast into the subnet (DESIGN.md §6). It runs once per packet, before any
 * crypto, so it is built for that: keys as (hi, lo) uint32 halves in typed arrays (no BigInt, no strings),
 * open addressing with linear probing over a power-of-two capacity, a seeded mixing hash, and backward-shift
 * deletion (no tombstones, so lookups never slow down as sessions rotate). add, remove and lookup are O(1)
 * expected; the table doubles when it passes half full (amortised O(1), the only allocation).
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

const EMPTY = -1;
/** Largest capacity (2^30 slots): far above what a host's sessions need; indexes stay small integers. */
const MAX_CAPACITY = 1 << 30;

export class SessionTable implements SidRegistry {
  private keyHi: Uint32Array;
  private keyLo: Uint32Array;
  /** Session index per slot, EMPTY for a free slot. */
  private values: Int32Array;
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
    let capacity = 8;
    while (capacity < expected * 2) capacity *= 2;
    this.keyHi = new Uint32Array(capacity);
    this.keyLo = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
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

  /** The slot where probing for (hi, lo) starts: murmur3's 32-bit mixing over both halves, seeded. */
  homeSlot(hi: number, lo: number): number {
    let h = Math.imul((lo ^ this.seedLo) >>> 0, 0xcc9e2d51);
    h = ((h << 15) | (h >>> 17)) ^ hi ^ this.seedHi;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  lookup(hi: number, lo: number): number {
    hi >>>= 0;
    lo >>>= 0;
    const keyHi = this.keyHi;
    const keyLo = this.keyLo;
    const values = this.values;
    const mask = this.mask;
    let i = this.homeSlot(hi, lo);
    for (;;) {
      const v = values[i]!;
      if (v === EMPTY) return -1;
      if (keyLo[i] === lo && keyHi[i] === hi) return v;
      i = (i + 1) & mask;
    }
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
    const i = this.slotOf(hi >>> 0, lo >>> 0);
    if (i < 0) return false;
    if (!Number.isInteger(index) || index < 0 || index > 0x7fffffff)
      throw new RangeError(`session table: index ${index} must be an integer from 0 to 2^31 − 1`);
    this.values[i] = index;
    return true;
  }

  /**
   * Unmaps (hi, lo). Backward-shift deletion (Knuth 6.4, algorithm R): the entries after the hole that could
   * live in it move back, so every remaining entry stays reachable from its home slot without tombstones.
   */
  remove(hi: number, lo: number): boolean {
    let hole = this.slotOf(hi >>> 0, lo >>> 0);
    if (hole < 0) return false;
    const keyHi = this.keyHi;
    const keyLo = this.keyLo;
    const values = this.values;
    const mask = this.mask;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (values[j] === EMPTY) break;
      const home = this.homeSlot(keyHi[j]!, keyLo[j]!);
      // The entry at j may move to the hole when the hole lies cyclically in [home, j).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keyHi[hole] = keyHi[j]!;
        keyLo[hole] = keyLo[j]!;
        values[hole] = values[j]!;
        hole = j;
      }
    }
    values[hole] = EMPTY;
    this.count--;
    return true;
  }

  /** Removes every entry (keeps the capacity). */
  clear(): void {
    this.values.fill(EMPTY);
    this.count = 0;
  }

  /** Every entry as [hi, lo, index] (allocates; for tests and diagnostics). */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let i = 0; i <= this.mask; i++)
      if (this.values[i] !== EMPTY) out.push([this.keyHi[i]!, this.keyLo[i]!, this.values[i]!]);
    return out;
  }

  /** Probe distance of the entry farthest from its home slot (for tests of clustering). */
  maxProbeDistance(): number {
    let max = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (this.values[i] === EMPTY) continue;
      const d = (i - this.homeSlot(this.keyHi[i]!, this.keyLo[i]!)) & this.mask;
      if (d > max) max = d;
    }
    return max;
  }

  private slotOf(hi: number, lo: number): number {
    const keyHi = this.keyHi;
    const keyLo = this.keyLo;
    const values = this.values;
    const mask = this.mask;
    let i = this.homeSlot(hi, lo);
    for (;;) {
      if (values[i] === EMPTY) return -1;
      if (keyLo[i] === lo && keyHi[i] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  private place(hi: number, lo: number, index: number): void {
    const mask = this.mask;
    let i = this.homeSlot(hi, lo);
    while (this.values[i] !== EMPTY) i = (i + 1) & mask;
    this.keyHi[i] = hi;
    this.keyLo[i] = lo;
    this.values[i] = index;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    if (capacity > MAX_CAPACITY) throw new RangeError(`session table: more than ${MAX_CAPACITY / 2} entries`);
    const { keyHi, keyLo, values } = this;
    this.keyHi = new Uint32Array(capacity);
    this.keyLo = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    for (let i = 0; i < values.length; i++)
      if (values[i] !== EMPTY) this.place(keyHi[i]!, keyLo[i]!, values[i]!);
  }
}
