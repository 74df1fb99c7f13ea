import { randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SessionTable } from '../../src/filter/session-table.js';
import { junk } from '../helpers/bytes.js';

const SEED = [0x1234_5678, 0x9abc_def0] as const;

/** `count` keys that all start probing at `slot` of a table like `t` (found by drawing keys). */
function keysWithHome(t: SessionTable, slot: number, count: number, from = 1): [number, number][] {
  const out: [number, number][] = [];
  for (let lo = from; out.length < count; lo++) if (t.homeSlot(7, lo) === slot) out.push([7, lo]);
  return out;
}

describe('SessionTable basics', () => {
  it('adds, looks up, changes and removes by (hi, lo), refusing duplicates', () => {
    const t = new SessionTable({ seed: SEED });
    expect(t.lookup(1, 2)).toBe(-1);
    expect(t.add(1, 2, 0)).toBe(true);
    expect(t.add(0xffffffff, 0xfffffffe, 99_999)).toBe(true);
    expect(t.add(1, 2, 5)).toBe(false);
    expect([t.size, t.lookup(1, 2), t.lookup(0xffffffff, 0xfffffffe)]).toEqual([2, 0, 99_999]);
    expect(t.lookup(2, 1)).toBe(-1); // halves are not interchangeable
    expect(t.set(1, 2, 7)).toBe(true);
    expect(t.set(3, 3, 7)).toBe(false);
    expect(t.lookup(1, 2)).toBe(7);
    expect(t.remove(1, 2)).toBe(true);
    expect(t.remove(1, 2)).toBe(false);
    expect([t.size, t.lookup(1, 2), t.has(0xffffffff, 0xfffffffe)]).toEqual([1, -1, true]);
    t.clear();
    expect([t.size, t.has(0xffffffff, 0xfffffffe)]).toEqual([0, false]);
  });

  it('treats negative int32 halves (from bit operations) as the same uint32', () => {
    const t = new SessionTable();
    t.add(0x8000_0001, 0xdead_beef, 3);
    expect(t.lookup(0x8000_0001 | 0, 0xdead_beef | 0)).toBe(3);
  });

  it('looks the SID up straight from packet bytes at any offset', () => {
    const t = new SessionTable();
    t.add(0x00112233, 0x44556677, 42);
    t.add(0xff000000, 0x000000ff, 43);
    const buf = junk(40);
    buf.writeUInt32BE(0x00112233, 13);
    buf.writeUInt32BE(0x44556677, 17);
    buf.writeBigUInt64BE(0xff000000_000000ffn, 30);
    expect(t.lookupAt(buf, 13)).toBe(42);
    expect(t.lookupAt(buf, 30)).toBe(43);
    expect(t.lookupAt(buf, 14)).toBe(-1);
    expect(t.lookupAt(buf, 0)).toBe(-1); // 0xa5a5… junk
  });

  it('refuses bad indexes and sizes with a message saying what is allowed', () => {
    const t = new SessionTable();
    expect(() => t.add(1, 1, -1)).toThrow('session table: index -1 must be an integer from 0 to 2^31 − 1');
    expect(() => t.add(1, 1, 1.5)).toThrow('index 1.5');
    expect(() => t.add(1, 1, 2 ** 31)).toThrow('index 2147483648');
    expect(() => new SessionTable({ expectedEntries: 0 })).toThrow(
      'session table: expectedEntries 0 must be an integer from 1 to 536870912',
    );
    expect(t.size).toBe(0);
  });

  it('sizes the capacity to at least twice the expected entries and grows past half full', () => {
    const t = new SessionTable({ expectedEntries: 100 });
    expect(t.capacity).toBe(256);
    for (let i = 0; i < 128; i++) t.add(0, i + 1, i);
    expect(t.capacity).toBe(256);
    t.add(0, 1000, 128);
    expect(t.capacity).toBe(512);
    for (let i = 0; i < 128; i++) expect(t.lookup(0, i + 1)).toBe(i);
    expect(t.lookup(0, 1000)).toBe(128);
  });

  it('uses its seed: another seed spreads the same keys differently', () => {
    const a = new SessionTable({ seed: SEED });
    const b = new SessionTable({ seed: [1, 2] });
    let same = 0;
    for (let lo = 1; lo <= 200; lo++) if (a.homeSlot(0, lo) === b.homeSlot(0, lo)) same++;
    expect(same).toBeLessThan(20); // 1024 slots: about 0.2 expected by chance
  });
});

describe('SessionTable collisions and backward-shift deletion', () => {
  it('finds every member of a cluster that wraps around the end, removed in every order', () => {
    const orders = [
      [0, 1, 2, 3, 4],
      [4, 3, 2, 1, 0],
      [2, 0, 4, 1, 3],
      [1, 3, 0, 2, 4],
    ];
    for (const order of orders) {
      const t = new SessionTable({ expectedEntries: 8, seed: SEED }); // 16 slots
      const last = t.capacity - 1;
      // Three keys homed at the last slot (they wrap to slots 0 and 1), two homed at slot 0.
      const keys = [...keysWithHome(t, last, 3), ...keysWithHome(t, 0, 2)];
      keys.forEach(([hi, lo], i) => {
        expect(t.add(hi, lo, i)).toBe(true);
      });
      expect(t.maxProbeDistance()).toBe(3); // the second key homed at 0 sits in slot 3
      const left = new Set(keys.map((_, i) => i));
      for (const i of order) {
        expect(t.remove(keys[i]![0], keys[i]![1])).toBe(true);
        left.delete(i);
        keys.forEach(([hi, lo], j) => {
          expect(t.lookup(hi, lo), `order ${order}, after ${i}, key ${j}`).toBe(left.has(j) ? j : -1);
        });
        // Backward shift keeps entries as close to home as possible: with fewer entries, no more distance.
        expect(t.maxProbeDistance()).toBeLessThanOrEqual(left.size);
      }
      expect([t.size, t.maxProbeDistance()]).toEqual([0, 0]);
    }
  });

  it('moves a later entry back only when the hole lies between its home and its slot', () => {
    const t = new SessionTable({ expectedEntries: 8, seed: SEED });
    const [a, b] = keysWithHome(t, 5, 2); // slots 5, 6
    const [c] = keysWithHome(t, 6, 1); // slot 7 (home 6 is taken)
    const [d] = keysWithHome(t, 7, 1); // slot 8
    for (const [i, [hi, lo]] of [a!, b!, c!, d!].entries()) t.add(hi, lo, i);
    t.remove(a![0], a![1]); // b moves to 5, c to 6, d to 7: each back to its home or closer
    expect(t.maxProbeDistance()).toBe(0);
    expect([t.lookup(...b!), t.lookup(...c!), t.lookup(...d!)]).toEqual([1, 2, 3]);
  });

  it('keeps size and capacity constant under rotation churn (add new, remove old), no tombstone build-up', () => {
    const t = new SessionTable({ expectedEntries: 1000, seed: SEED });
    const capacity = t.capacity;
    const live: [number, number][] = [];
    let next = 1;
    for (let i = 0; i < 1000; i++) {
      live.push([next >>> 8, next]);
      t.add(next >>> 8, next, i);
      next++;
    }
    let failed = 0;
    for (let r = 0; r < 200_000; r++) {
      const [hi, lo] = live[r % 1000]!;
      if (!t.remove(hi, lo)) failed++;
      live[r % 1000] = [next >>> 8, next];
      if (!t.add(next >>> 8, next, r % 1000)) failed++;
      next++;
    }
    expect([failed, t.size, t.capacity]).toEqual([0, 1000, capacity]);
    live.forEach(([hi, lo], i) => {
      expect(t.lookup(hi, lo)).toBe(i);
    });
    expect(t.lookup(0, 1)).toBe(-1);
    expect(t.maxProbeDistance()).toBeLessThan(40);
  });
});

describe('SessionTable against a Map model', () => {
  type Op = { kind: 'add' | 'remove' | 'lookup' | 'set'; key: number; index: number };
  // Keys from a small pool so adds, removes and lookups hit each other; tiny tables so they collide and grow.
  const op: fc.Arbitrary<Op> = fc.record({
    kind: fc.constantFrom('add', 'add', 'remove', 'lookup', 'set'),
    key: fc.integer({ min: 0, max: 63 }),
    index: fc.integer({ min: 0, max: 0x7fffffff }),
  });
  const pool = (seed: number): [number, number][] =>
    Array.from({ length: 64 }, (_, i) => [(seed * (i + 1)) >>> 0, (i * 0x9e3779b1 + seed) >>> 0]);

  it('agrees on every result, the size and every lookup after each step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer(),
        fc.array(op, { minLength: 1, maxLength: 300 }),
        (expected, seed, ops) => {
          const keys = pool(seed);
          const t = new SessionTable({ expectedEntries: expected, seed: [seed >>> 0, 7] });
          const m = new Map<number, number>();
          for (const { kind, key, index } of ops) {
            const [hi, lo] = keys[key]!;
            if (kind === 'add') {
              expect(t.add(hi, lo, index)).toBe(!m.has(key));
              if (!m.has(key)) m.set(key, index);
            } else if (kind === 'set') {
              expect(t.set(hi, lo, index)).toBe(m.has(key));
              if (m.has(key)) m.set(key, index);
            } else if (kind === 'remove') {
              expect(t.remove(hi, lo)).toBe(m.delete(key));
            } else {
              expect(t.lookup(hi, lo)).toBe(m.get(key) ?? -1);
            }
            expect(t.size).toBe(m.size);
            for (let k = 0; k < keys.length; k++) expect(t.lookup(...keys[k]!)).toBe(m.get(k) ?? -1);
          }
          expect(t.entries().length).toBe(m.size);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('SessionTable at 100k sessions', () => {
  it('holds 4 SIDs for each of 100k sessions, finds every one, and forgets removed ones', () => {
    const t = new SessionTable({ expectedEntries: 400_000 });
    const n = 400_000;
    const hi = new Uint32Array(n);
    const lo = new Uint32Array(n);
    // Random SIDs as sessions make them, plus a run of sequential ones (the worst case for a weak hash).
    randomFillSync(hi.subarray(0, n / 2));
    randomFillSync(lo.subarray(0, n / 2));
    for (let i = n / 2; i < n; i++) {
      hi[i] = 0;
      lo[i] = i;
    }
    const started = performance.now();
    let added = 0;
    for (let i = 0; i < n; i++) if (t.add(hi[i]!, lo[i]!, i >> 2)) added++;
    expect(added).toBe(n); // random 64-bit draws do not collide
    let wrong = 0;
    for (let i = 0; i < n; i++) if (t.lookup(hi[i]!, lo[i]!) !== i >> 2) wrong++;
    for (let i = 0; i < n; i += 2) t.remove(hi[i]!, lo[i]!);
    for (let i = 0; i < n; i++) if (t.lookup(hi[i]!, lo[i]!) !== (i % 2 ? i >> 2 : -1)) wrong++;
    const ms = performance.now() - started;
    expect(wrong).toBe(0);
    expect(t.size).toBe(n / 2);
    // Linear probing at ≤ 50 % load over a mixing hash: short clusters even for sequential keys.
    expect(t.maxProbeDistance()).toBeLessThan(64);
    expect(ms).toBeLessThan(3000);
  });
});
