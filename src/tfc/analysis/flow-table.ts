/**
 * Per-flow accumulators (packets, bytes, first and last time, size and gap statistics) for the flows of
 * flow-key.ts, in typed arrays under an open-addressing hash table: nothing is allocated per packet, and
 * state grows with the number of flows, not packets, up to `maxFlows`. Packets of flows first seen after
 * that are counted together as untracked.
 */
import type { PacketParser } from '../../codec/parser.js';
import { describeFlowKey, FLOW_KEY_WORDS, type FlowIdentity, readFlowKey } from './flow-key.js';
import type { StatsSummary } from './running-stats.js';

/** Flows tracked by default (about 10 MB of state when full). */
export const DEFAULT_MAX_FLOWS = 65_536;

// Fields of one flow's accumulator row.
const PACKETS = 0;
const BYTES = 1;
const FIRST = 2;
const LAST = 3;
const SIZE_MEAN = 4;
const SIZE_M2 = 5;
const SIZE_MIN = 6;
const SIZE_MAX = 7;
const GAPS = 8;
const GAP_MEAN = 9;
const GAP_M2 = 10;
const GAP_MIN = 11;
const GAP_MAX = 12;
const STRIDE = 13;

export interface FlowRow extends FlowIdentity {
  packets: number;
  bytes: number;
  /** Nanoseconds after the capture's first packet (the caller turns them into timestamps). */
  firstNs: number;
  lastNs: number;
  /** Frame sizes in bytes (population statistics). */
  size: StatsSummary;
  /** Gaps between this flow's consecutive packets, in nanoseconds (count = packets − 1). */
  gapNs: StatsSummary & { cv: number | null };
}

export class FlowTable {
  /** Packets and bytes of flows first seen once `maxFlows` were tracked. */
  untrackedPackets = 0;
  untrackedBytes = 0;
  private flows = 0;
  private keys = new Uint32Array(64 * FLOW_KEY_WORDS);
  private hashes = new Uint32Array(64);
  private acc = new Float64Array(64 * STRIDE);
  /** Open-addressing index: flow id + 1 per slot, 0 when empty. */
  private slots = new Int32Array(128);
  private readonly key = new Uint32Array(FLOW_KEY_WORDS);

  constructor(readonly maxFlows = DEFAULT_MAX_FLOWS) {
    if (!(Number.isInteger(maxFlows) && maxFlows >= 1))
      throw new Error(`maxFlows must be a positive integer, got ${maxFlows}`);
  }

  /** Flows tracked. */
  get flowCount(): number {
    return this.flows;
  }

  /** Counts the parser's last frame, `size` bytes on the wire at `relNs` after the first packet. */
  add(parser: PacketParser, relNs: number, size: number): void {
    readFlowKey(parser, this.key);
    const id = this.findOrInsert();
    if (id < 0) {
      this.untrackedPackets++;
      this.untrackedBytes += size;
      return;
    }
    const a = this.acc;
    const o = id * STRIDE;
    const n = ++a[o + PACKETS]!;
    a[o + BYTES]! += size;
    if (n === 1) {
      a[o + FIRST] = relNs;
      a[o + SIZE_MIN] = size;
      a[o + SIZE_MAX] = size;
    } else {
      // Out-of-order timestamps give no gap (it would be negative).
      const gap = relNs - a[o + LAST]!;
      if (gap >= 0) {
        const g = ++a[o + GAPS]!;
        const d = gap - a[o + GAP_MEAN]!;
        a[o + GAP_MEAN]! += d / g;
        a[o + GAP_M2]! += d * (gap - a[o + GAP_MEAN]!);
        if (g === 1 || gap < a[o + GAP_MIN]!) a[o + GAP_MIN] = gap;
        if (gap > a[o + GAP_MAX]!) a[o + GAP_MAX] = gap;
      }
      if (relNs < a[o + FIRST]!) a[o + FIRST] = relNs;
      if (size < a[o + SIZE_MIN]!) a[o + SIZE_MIN] = size;
      if (size > a[o + SIZE_MAX]!) a[o + SIZE_MAX] = size;
    }
    a[o + LAST] = relNs;
    const d = size - a[o + SIZE_MEAN]!;
    a[o + SIZE_MEAN]! += d / n;
    a[o + SIZE_M2]! += d * (size - a[o + SIZE_MEAN]!);
  }

  /** The `n` flows with the most bytes (ties: the flow seen first), largest first. */
  top(n: number): FlowRow[] {
    const ids = Array.from({ length: this.flows }, (_, i) => i);
    const a = this.acc;
    ids.sort((x, y) => a[y * STRIDE + BYTES]! - a[x * STRIDE + BYTES]! || x - y);
    return ids.slice(0, n).map((id) => this.row(id));
  }

  private row(id: number): FlowRow {
    const a = this.acc;
    const o = id * STRIDE;
    const packets = a[o + PACKETS]!;
    const gaps = a[o + GAPS]!;
    const gapMean = a[o + GAP_MEAN]!;
    const gapStddev = gaps > 1 ? Math.sqrt(a[o + GAP_M2]! / gaps) : 0;
    return {
      ...describeFlowKey(this.keys, id * FLOW_KEY_WORDS),
      packets,
      bytes: a[o + BYTES]!,
      firstNs: a[o + FIRST]!,
      lastNs: a[o + LAST]!,
      size: {
        count: packets,
        mean: a[o + SIZE_MEAN]!,
        stddev: packets > 1 ? Math.sqrt(a[o + SIZE_M2]! / packets) : 0,
        min: a[o + SIZE_MIN]!,
        max: a[o + SIZE_MAX]!,
      },
      gapNs:
        gaps === 0
          ? { count: 0, mean: null, stddev: null, min: null, max: null, cv: null }
          : {
              count: gaps,
              mean: gapMean,
              stddev: gapStddev,
              min: a[o + GAP_MIN]!,
              max: a[o + GAP_MAX]!,
              cv: gapMean === 0 ? 0 : gapStddev / gapMean,
            },
    };
  }

  /** The id of the flow whose key is in `this.key`, inserting it if there is room; -1 when full. */
  private findOrInsert(): number {
    const key = this.key;
    const hash = hashKey(key);
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot]!;
      if (entry === 0) break;
      const id = entry - 1;
      if (this.hashes[id] === hash && this.sameKey(id)) return id;
    }
    if (this.flows === this.maxFlows) return -1;
    const id = this.flows++;
    if (id === this.hashes.length) this.growRows();
    this.keys.set(key, id * FLOW_KEY_WORDS);
    this.hashes[id] = hash;
    if (this.flows * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.place(id);
    return id;
  }

  private sameKey(id: number): boolean {
    const keys = this.keys;
    const key = this.key;
    const o = id * FLOW_KEY_WORDS;
    for (let w = 0; w < FLOW_KEY_WORDS; w++) if (keys[o + w] !== key[w]) return false;
    return true;
  }

  private place(id: number): void {
    const mask = this.slots.length - 1;
    let slot = this.hashes[id]! & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = id + 1;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let id = 0; id < this.flows; id++) this.place(id);
  }

  private growRows(): void {
    const rows = this.hashes.length * 2;
    const keys = new Uint32Array(rows * FLOW_KEY_WORDS);
    keys.set(this.keys);
    this.keys = keys;
    const hashes = new Uint32Array(rows);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const acc = new Float64Array(rows * STRIDE);
    acc.set(this.acc);
    this.acc = acc;
  }
}

/** Murmur3-style mix of the key words. */
function hashKey(key: Uint32Array): number {
  let h = 0x9747b28c;
  for (let w = 0; w < FLOW_KEY_WORDS; w++) {
    let k = Math.imul(key[w]!, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
