/**
 * The host's session-ID table: 64-bit SID → small session index, for the filter that keeps only this host's
 * packets out of everything broadcast into the subnet (DESIGN.md §6). It runs once per packet, before any
 * crypto, so it is built for that: keys as (hi, lo) uint32 halves in typed arrays (no BigInt, no strings),
 * open addressing with linear probing over a power-of-two capacity, a seeded mixing hash, and backward-shift
 * deletion (no tombstones, so lookups never slow down as sessions rotate). add, remove and lookup are O(1)
 * expected; the table doubles when it passes half full (amortised O(1), the only allocation).
 *
 * Memory layout, for the common case of a filter: most SIDs on a broadcast link are other hosts', so most
 * lookups miss. Each slot has a 16-bit fingerprint (hash bits, never 0; 0 marks a free slot) in an array of
 * its own, 2 bytes a slot: a miss usually reads one cache line of it and nothing else, and at 100k sessions
 * (2^19 slots, 1 MiB) it stays in a core's L2. A slot's SID halves and index sit side by side (16 bytes a
 * slot), so a hit reads one more line. Measured by bench/anon-filter.ts: separate hi/lo/index arrays cost a
 * hit or a miss up to three cache misses at that size.
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

/** Fingerprint of a free slot; occupied slots have 1 … 0xffff. */
const FREE = 0;
/** Uint32s per slot in `slots`: hi, lo, index, and one unused so a slot is 16 aligned bytes. */
const STRIDE = 4;
/** Largest capacity (2^30 slots): far above what a host's sessions need; indexes stay small integers. */
const MAX_CAPACITY = 1 << 30;

export class SessionTable implements SidRegistry {
  /** Per slot: a fingerprint of its SID's hash, or FREE. */
  private fingerprints: Uint16Array;
  /** Per slot, STRIDE apart: SID high half, low half, session index. */
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
    let capacity = 8;
    while (capacity < expected * 2) capacity *= 2;
    this.fingerprints = new Uint16Array(capacity);
    this.slots = new Uint32Array(capacity * STRIDE);
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

  /** The slot where probing for (hi, lo) starts: the low bits of the hash. */
  homeSlot(hi: number, lo: number): number {
    return this.hash(hi, lo) & this.mask;
  }

  lookup(hi: number, lo: number): number {
    hi >>>= 0;
    lo >>>= 0;
    const fingerprints = this.fingerprints;
    const slots = this.slots;
    const mask = this.mask;
    const h = this.hash(hi, lo);
    const f = fingerprintOf(h);
    let i = h & mask;
    for (;;) {
      const seen = fingerprints[i]!;
      if (seen === FREE) return -1;
      if (seen === f) {
        const k = i * STRIDE;
        if (slots[k + 1] === lo && slots[k] === hi) return slots[k + 2]!;
      }
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
    this.slots[i * STRIDE + 2] = index;
    return true;
  }

  /**
   * Unmaps (hi, lo). Backward-shift deletion (Knuth 6.4, algorithm R): the entries after the hole that could
   * live in it move back, so every remaining entry stays reachable from its home slot without tombstones.
   */
  remove(hi: number, lo: number): boolean {
    let hole = this.slotOf(hi >>> 0, lo >>> 0);
    if (hole < 0) return false;
    const fingerprints = this.fingerprints;
    const slots = this.slots;
    const mask = this.mask;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (fingerprints[j] === FREE) break;
      const k = j * STRIDE;
      const home = this.homeSlot(slots[k]!, slots[k + 1]!);
      // The entry at j may move to the hole when the hole lies cyclically in [home, j).
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        const to = hole * STRIDE;
        slots[to] = slots[k]!;
        slots[to + 1] = slots[k + 1]!;
        slots[to + 2] = slots[k + 2]!;
        fingerprints[hole] = fingerprints[j]!;
        hole = j;
      }
    }
    fingerprints[hole] = FREE;
    this.count--;
    return true;
  }

  /** Removes every entry (keeps the capacity). */
  clear(): void {
    this.fingerprints.fill(FREE);
    this.count = 0;
  }

  /** Every entry as [hi, lo, index] (allocates; for tests and diagnostics). */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let i = 0; i <= this.mask; i++) {
      if (this.fingerprints[i] === FREE) continue;
      const k = i * STRIDE;
      out.push([this.slots[k]!, this.slots[k + 1]!, this.slots[k + 2]!]);
    }
    return out;
  }

  /** Probe distance of the entry farthest from its home slot (for tests of clustering). */
  maxProbeDistance(): number {
    let max = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (this.fingerprints[i] === FREE) continue;
      const d = (i - this.homeSlot(this.slots[i * STRIDE]!, this.slots[i * STRIDE + 1]!)) & this.mask;
      if (d > max) max = d;
    }
    return max;
  }

  /** murmur3's 32-bit mixing over both halves, seeded: home slot from the low bits, fingerprint from the high. */
  private hash(hi: number, lo: number): number {
    let h = Math.imul((lo ^ this.seedLo) >>> 0, 0xcc9e2d51);
    h = ((h << 15) | (h >>> 17)) ^ hi ^ this.seedHi;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  private slotOf(hi: number, lo: number): number {
    const fingerprints = this.fingerprints;
    const slots = this.slots;
    const mask = this.mask;
    const h = this.hash(hi, lo);
    const f = fingerprintOf(h);
    let i = h & mask;
    for (;;) {
      const seen = fingerprints[i]!;
      if (seen === FREE) return -1;
      if (seen === f && slots[i * STRIDE + 1] === lo && slots[i * STRIDE] === hi) return i;
      i = (i + 1) & mask;
    }
  }

  private place(hi: number, lo: number, index: number): void {
    const mask = this.mask;
    const h = this.hash(hi, lo);
    let i = h & mask;
    while (this.fingerprints[i] !== FREE) i = (i + 1) & mask;
    const k = i * STRIDE;
    this.slots[k] = hi;
    this.slots[k + 1] = lo;
    this.slots[k + 2] = index;
    this.fingerprints[i] = fingerprintOf(h);
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    if (capacity > MAX_CAPACITY) throw new RangeError(`session table: more than ${MAX_CAPACITY / 2} entries`);
    const { fingerprints, slots } = this;
    this.fingerprints = new Uint16Array(capacity);
    this.slots = new Uint32Array(capacity * STRIDE);
    this.mask = capacity - 1;
    for (let i = 0; i < fingerprints.length; i++)
      if (fingerprints[i] !== FREE) {
        const k = i * STRIDE;
        this.place(slots[k]!, slots[k + 1]!, slots[k + 2]!);
      }
  }
}

/**
 * A slot's fingerprint: the hash's high 16 bits, 0 moved to 1 (0 marks a free slot). Home slots use the low
 * bits, so below 2^16 slots the two are independent and a miss compares a key one time in 65 535.
 */
function fingerprintOf(h: number): number {
  return h >>> 16 || 1;
}
