import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ReplayVerdict, ReplayWindow } from '../../src/esp/replay-window.js';

const TWO_32 = 0x1_0000_0000;
const SIZES = [32, 64, 1024, 4096, 65536];

/** Words in the ring the window keeps: a power of two N with (N − 1)·32 ≥ size (RFC 6479). */
function ringWords(size: number): number {
  let n = 2;
  while ((n - 1) * 32 < size) n *= 2;
  return n;
}

/** What the decapsulator does for an authentic packet: check, and on 'ok' update with the inferred high half. */
function receive(w: ReplayWindow, lo: number): ReplayVerdict {
  const verdict = w.check(lo);
  if (verdict === 'ok') w.update(w.inferredHi, lo);
  return verdict;
}

/** Verdict and inferred high half in one value, so a table row reads as one assertion. */
function judge(w: ReplayWindow, lo: number): [ReplayVerdict, number] {
  const verdict = w.check(lo);
  return [verdict, w.inferredHi];
}

describe('ReplayWindow construction', () => {
  it('defaults to 64 bits without ESN, empty', () => {
    const w = new ReplayWindow();
    expect([w.size, w.esn, w.topHi, w.topLo, w.inferredHi]).toEqual([64, false, 0, 0, 0]);
  });

  it('accepts 32 and 65536 bits and refuses anything else with a message saying what is allowed', () => {
    expect(new ReplayWindow(32).size).toBe(32);
    expect(new ReplayWindow(65536, true).size).toBe(65536);
    for (const bad of [0, 31, 65537, 64.5, Number.NaN, Number.POSITIVE_INFINITY, -64]) {
      expect(() => new ReplayWindow(bad)).toThrow(
        `replay window size must be an integer from 32 to 65536 bits, got ${bad}`,
      );
    }
  });
});

// The same edges with and without ESN: with ESN they sit in epoch 7, far from any epoch boundary, so the
// inference must say 7 every time.
describe.each([
  { esn: false, hi: 0 },
  { esn: true, hi: 7 },
])('ReplayWindow edges (esn $esn)', ({ esn, hi }) => {
  describe.each(SIZES)('size %i', (size) => {
    // Not block-aligned, so the window's edges fall inside ring words.
    const top = 3 * size + 5;
    const fresh = (): ReplayWindow => {
      const w = new ReplayWindow(size, esn);
      w.update(hi, top); // with ESN: as if the SA had run for 7·2^32 packets
      return w;
    };
    // A number at or below top − size: too old without ESN; with ESN, Appendix A reads its low half as the
    // next epoch's, far ahead (the ICV, computed with that high half, is what rejects an old packet).
    const beyond: [ReplayVerdict, number] = esn ? ['ok', hi + 1] : ['too-old', 0];

    it('accepts the left edge of the window, not one past it, and refuses duplicates', () => {
      const w = fresh();
      expect([w.topHi, w.topLo]).toEqual([hi, top]);
      expect(judge(w, top)).toEqual(['replayed', hi]);
      expect(judge(w, top + 1)).toEqual(['ok', hi]);
      expect(judge(w, top - size + 1)).toEqual(['ok', hi]);
      expect(judge(w, top - size)).toEqual(beyond);
      expect(judge(w, top - size - 1)).toEqual(beyond);
      expect(judge(w, 1)).toEqual(beyond);

      for (const lo of [top - size + 1, top - 1, top - size / 2, top - size / 2 - 1]) {
        expect(receive(w, lo)).toBe('ok');
        expect(judge(w, lo)).toEqual(['replayed', hi]);
        expect(receive(w, lo)).toBe('replayed');
      }
      // Numbers inside the window that are still missing stay acceptable; the top did not move.
      expect(judge(w, top - 2)).toEqual(['ok', hi]);
      expect([w.topHi, w.topLo]).toEqual([hi, top]);
    });

    const words = ringWords(size);
    for (const jump of [size - 1, size, size + 1, 32 * words - 1, 32 * words, 2 ** 31]) {
      it(`after a jump of ${jump} remembers exactly the old numbers still inside the window`, () => {
        const w = fresh();
        let refused = 0;
        for (let lo = top - size + 1; lo < top; lo++) if (receive(w, lo) !== 'ok') refused++;
        expect(refused).toBe(0);
        const newTop = top + jump;
        expect(receive(w, newTop)).toBe('ok');
        expect([w.topHi, w.topLo]).toEqual([hi, newTop]);
        const start = newTop - size + 1;
        const wrong: string[] = [];
        for (let lo = start; lo <= newTop; lo++) {
          const want = lo <= top || lo === newTop ? 'replayed' : 'ok';
          const got = w.check(lo);
          if (got !== want || w.inferredHi !== hi) wrong.push(`${lo}: ${got}/${w.inferredHi}`);
        }
        expect(wrong).toEqual([]);
        expect(judge(w, start - 1)).toEqual(beyond);
      });
    }
  });
});

describe('ReplayWindow without ESN', () => {
  it('never accepts sequence number 0, even on a fresh SA', () => {
    const w = new ReplayWindow(64);
    expect(judge(w, 0)).toEqual(['too-old', 0]);
    expect(judge(w, 1)).toEqual(['ok', 0]);
    // An update with 0 (a caller's mistake: check() never passes it) changes nothing either.
    w.update(0, 0);
    expect([w.topHi, w.topLo]).toEqual([0, 0]);
    expect(receive(w, 1)).toBe('ok');
    expect(judge(w, 0)).toEqual(['too-old', 0]);
  });

  it('accepts every number of the first window before the top reaches the window size', () => {
    const w = new ReplayWindow(64);
    expect(receive(w, 40)).toBe('ok');
    for (let lo = 1; lo < 40; lo++) expect(receive(w, lo)).toBe('ok');
    for (let lo = 1; lo <= 40; lo++) expect(w.check(lo)).toBe('replayed');
  });

  it('does not wrap: at the top of the 32-bit space small numbers are too old, not new', () => {
    const w = new ReplayWindow(64);
    expect(receive(w, 0xffffffff)).toBe('ok');
    expect([w.topHi, w.topLo]).toEqual([0, 0xffffffff]);
    expect(judge(w, 1)).toEqual(['too-old', 0]);
    expect(judge(w, 0xffffffff - 63)).toEqual(['ok', 0]);
    expect(judge(w, 0xffffffff - 64)).toEqual(['too-old', 0]);
  });

  it('ignores the high half it is given: it is 0 by definition', () => {
    const w = new ReplayWindow(64);
    w.update(5, 100);
    expect([w.topHi, w.topLo]).toEqual([0, 100]);
    expect(judge(w, 100)).toEqual(['replayed', 0]);
  });
});

// RFC 4303 Appendix A2.2 with W = 64: case A when Tl ≥ 63, case B when Tl < 63; Bl = Tl − 63 mod 2^32.
describe('ReplayWindow ESN inference (RFC 4303 Appendix A)', () => {
  const W = 64;

  it('on a fresh SA (top 0, case B) refuses 0 and the numbers that would be in epoch −1', () => {
    const w = new ReplayWindow(W, true);
    expect(judge(w, 0)).toEqual(['too-old', 0]);
    expect(judge(w, 1)).toEqual(['ok', 0]);
    // Bl = 2^32 − 63: from there up Appendix A says Th − 1 = −1, numbers below the first packet.
    expect(judge(w, TWO_32 - W + 1)).toEqual(['too-old', 0xffffffff]);
    expect(judge(w, 0xffffffff)).toEqual(['too-old', 0xffffffff]);
    // One below Bl is the farthest number ahead the inference reaches: 2^32 − W above the top.
    expect(judge(w, TWO_32 - W)).toEqual(['ok', 0]);
    expect(receive(w, 1)).toBe('ok');
    expect(judge(w, 0)).toEqual(['too-old', 0]);
  });

  it('rolls over to hi + 1 from case A when a small low half arrives near the top of the epoch', () => {
    const w = new ReplayWindow(W, true);
    w.update(0, 0xfffffff0); // Tl ≥ W − 1: case A, Bl = 0xffffffb1
    expect(judge(w, 0xfffffff0)).toEqual(['replayed', 0]);
    expect(judge(w, 0xffffffb1)).toEqual(['ok', 0]); // Bl itself: the left edge, same epoch
    expect(judge(w, 0xffffffb0)).toEqual(['ok', 1]); // below Bl: next epoch, far ahead
    expect(judge(w, 0)).toEqual(['ok', 1]); // (1, 0) is a valid number
    expect(receive(w, 3)).toBe('ok');
    expect([w.topHi, w.topLo]).toEqual([1, 3]);
    expect(judge(w, 3)).toEqual(['replayed', 1]);
  });

  it('after the rollover (case B) places late packets from the previous epoch in hi − 1', () => {
    const w = new ReplayWindow(W, true);
    w.update(0, 0xfffffff0);
    w.update(1, 3); // Tl = 3 < W − 1: case B, Bl = 2^32 + 3 − 63 = 0xffffffc4
    expect(judge(w, 0xfffffff0)).toEqual(['replayed', 0]);
    expect(judge(w, 0xfffffffe)).toEqual(['ok', 0]);
    expect(receive(w, 0xfffffffe)).toBe('ok');
    expect(judge(w, 0xfffffffe)).toEqual(['replayed', 0]);
    // The top stays in epoch 1: a late packet never moves it back.
    expect([w.topHi, w.topLo]).toEqual([1, 3]);
    expect(judge(w, 0xffffffc4)).toEqual(['ok', 0]); // Bl: (0, 2^32 − 60), exactly W − 1 below the top
    // One below Bl is not "too old" under Appendix A: it is taken as (1, 0xffffffc3), far ahead, and only
    // the ICV (computed with hi 1) rejects the old packet. The window must not move before that.
    expect(judge(w, 0xffffffc3)).toEqual(['ok', 1]);
    expect(judge(w, 0)).toEqual(['ok', 1]);
    expect(judge(w, 4)).toEqual(['ok', 1]);
  });

  it('switches branches exactly at Tl = W − 1', () => {
    const a = new ReplayWindow(W, true);
    a.update(5, W - 1); // case A, Bl = 0: every low half is in epoch 5
    expect(judge(a, 0)).toEqual(['ok', 5]); // (5, 0): the left edge
    expect(judge(a, 0xffffffff)).toEqual(['ok', 5]);
    const b = new ReplayWindow(W, true);
    b.update(5, W - 2); // case B, Bl = 0xffffffff
    expect(judge(b, 0xffffffff)).toEqual(['ok', 4]); // (4, 2^32 − 1): the left edge
    expect(judge(b, 0xfffffffe)).toEqual(['ok', 5]); // (5, 2^32 − 2): ahead
    expect(judge(b, 0)).toEqual(['ok', 5]);
    // In epoch 0 the left edge of case A at Tl = W − 1 is number 0, which is never valid.
    const zero = new ReplayWindow(W, true);
    zero.update(0, W - 1);
    expect(judge(zero, 0)).toEqual(['too-old', 0]);
    expect(judge(zero, 1)).toEqual(['ok', 0]);
  });

  it('refuses a number past 2^64 − 1: the counter may not wrap', () => {
    const w = new ReplayWindow(W, true);
    w.update(0xffffffff, 0xfffffff0);
    expect(judge(w, 0xfffffff5)).toEqual(['ok', 0xffffffff]);
    expect(judge(w, 5)).toEqual(['too-old', 0]);
    expect([w.topHi, w.topLo]).toEqual([0xffffffff, 0xfffffff0]);
  });

  it('jumps 2^31 into the next epoch: the old top is 2^31 behind, read as 2^31 ahead', () => {
    for (const size of SIZES) {
      const w = new ReplayWindow(size, true);
      w.update(2, 0x90000000 - 1);
      w.update(2, 0x90000000);
      expect(receive(w, 0x10000000)).toBe('ok'); // 0x90000000 + 2^31 = (3, 0x10000000)
      expect([w.topHi, w.topLo]).toEqual([3, 0x10000000]);
      // Stale bits of the ring from epoch 2 must be gone: below the new top nothing is seen yet.
      expect(judge(w, 0x10000000 - 1)).toEqual(['ok', 3]);
      expect(judge(w, 0x10000000 - size + 1)).toEqual(['ok', 3]);
      expect(judge(w, 0x10000000)).toEqual(['replayed', 3]);
      expect(judge(w, 0x90000000)).toEqual(['ok', 3]);
    }
  });

  it('keeps a window that straddles an epoch boundary exact in both epochs', () => {
    for (const size of SIZES) {
      const w = new ReplayWindow(size, true);
      const half = size / 2;
      w.update(2, TWO_32 - size);
      // Every other one of the last `half` numbers of epoch 2 arrives, the last one included…
      for (let k = half - 2; k >= 0; k -= 2) expect(receive(w, 0xffffffff - k)).toBe('ok');
      expect([w.topHi, w.topLo]).toEqual([2, 0xffffffff]);
      // …then (3, half): case A from Tl = 2^32 − 1 infers hi + 1.
      expect(judge(w, half)).toEqual(['ok', 3]);
      w.update(3, half);
      const wrong: string[] = [];
      for (let d = 0; d < size; d++) {
        const [hi, lo] = d <= half ? [3, half - d] : [2, TWO_32 + half - d];
        const seen = d === 0 || (hi === 2 && (0xffffffff - lo) % 2 === 0 && 0xffffffff - lo <= half - 2);
        const got = judge(w, lo);
        if (got[0] !== (seen ? 'replayed' : 'ok') || got[1] !== hi) wrong.push(`${hi}:${lo} ${got}`);
      }
      expect(wrong).toEqual([]);
      // One below the left edge, (2, 2^32 + half − size), is read as (3, …): far ahead.
      expect(judge(w, TWO_32 + half - size)).toEqual(['ok', 3]);
    }
  });
});

describe('ReplayWindow and forged packets', () => {
  // check() is the only call a packet that fails its ICV reaches. Probe a window before and after such
  // packets: every verdict, inferred high half and the top must be exactly as before.
  const probe = (w: ReplayWindow, los: number[]): string[] =>
    los.map((lo) => {
      const verdict = w.check(lo);
      return `${lo}:${verdict}:${w.inferredHi}`;
    });

  for (const esn of [false, true]) {
    it(`a huge future number checked but never updated moves nothing (esn ${esn})`, () => {
      const w = new ReplayWindow(64, esn);
      const hi = esn ? 9 : 0;
      for (const lo of [1000, 990, 999, 940, 937]) w.update(hi, lo);
      const los = [0, 1, 936, 937, 938, 940, 941, 990, 999, 1000, 1001, 1063, 1064, 2000];
      const before = probe(w, los);
      // With ESN, 5 is read as (10, 5): a forgery claiming the next epoch.
      for (const forged of [1000 + 2 ** 31, 0xffffffff, 1001, 1000 + 64 * 64, ...(esn ? [5] : [])]) {
        expect(w.check(forged)).toBe('ok');
        // The ICV fails here: no update().
      }
      expect(probe(w, los)).toEqual(before);
      expect([w.topHi, w.topLo]).toEqual([hi, 1000]);
      expect(before).toContain(`1000:replayed:${hi}`);
      expect(before).toContain(`937:replayed:${hi}`);
      expect(before).toContain(`938:ok:${hi}`);
      expect(before).toContain(esn ? `936:ok:${hi + 1}` : '936:too-old:0');
      // The genuine next packet is still accepted and moves the window by one.
      expect(receive(w, 1001)).toBe('ok');
      expect([w.topHi, w.topLo]).toEqual([hi, 1001]);
      expect(judge(w, 938)).toEqual(['ok', hi]);
      expect(judge(w, 937)).toEqual(esn ? ['ok', hi + 1] : ['too-old', 0]);
    });
  }
});

describe('ReplayWindow and late updates', () => {
  it('ignores an update for a number the window moved past after its check', () => {
    // Size 64 keeps a ring of 4 words (128 numbers): 990 (block 30) shares word 2 with block 34, 1088…1119.
    const w = new ReplayWindow(64);
    expect(receive(w, 1000)).toBe('ok');
    expect(w.check(990)).toBe('ok');
    expect(receive(w, 1100)).toBe('ok'); // verified first; the window is now 1037…1100, top in block 34
    w.update(0, 990);
    expect([w.topHi, w.topLo]).toEqual([0, 1100]);
    expect(judge(w, 990)).toEqual(['too-old', 0]);
    // Had 990 set bit 30 of word 2, 1118 = 34·32 + 30 would read as a replay once the top passes it.
    expect(receive(w, 1119)).toBe('ok');
    expect(judge(w, 1118)).toEqual(['ok', 0]);
  });

  it('marks a late update still inside the window without moving the top back', () => {
    const w = new ReplayWindow(64, true);
    w.update(4, 1000);
    expect(w.check(990)).toBe('ok');
    expect(receive(w, 1010)).toBe('ok');
    w.update(4, 990);
    expect([w.topHi, w.topLo]).toEqual([4, 1010]);
    expect(judge(w, 990)).toEqual(['replayed', 4]);
  });
});

describe('ReplayWindow cost of a jump', () => {
  it('clears at most the ring, not one word per 32 numbers skipped', () => {
    // 2000 jumps of 2^31 skip 2^41 numbers: one word per 32 of them would be 6.9e10 writes (minutes);
    // bounded by the 4096-word ring it is 8.2e6 (milliseconds).
    const w = new ReplayWindow(65536, true);
    const started = process.hrtime.bigint();
    let hi = 0;
    let lo = 1;
    for (let i = 0; i < 2000; i++) {
      lo += 2 ** 31;
      if (lo >= TWO_32) {
        lo -= TWO_32;
        hi++;
      }
      expect(w.check(lo)).toBe('ok');
      expect(w.inferredHi).toBe(hi);
      w.update(hi, lo);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect([w.topHi, w.topLo]).toEqual([1000, 1]);
    expect(ms).toBeLessThan(3000);
  });
});

// The model: a plain set of every 64-bit number accepted and the top, in BigInt, with the inference written
// as a range rather than Appendix A's two cases. Appendix A, worked through both cases, picks the one number
// congruent to the low half in [T − W + 1, T − W + 2^32] (T the top, W the size): the window and the 2^32 − W
// numbers after it. So inferredHi equals the true high half exactly when the true number lies in that range.
interface Model {
  readonly esn: boolean;
  readonly size: bigint;
  top: bigint;
  readonly seen: Set<bigint>;
}

const B32 = 1n << 32n;
const MAX_ESN = (1n << 64n) - 1n;

function modelInfer(m: Model, lo: number): bigint {
  if (!m.esn) return BigInt(lo);
  const bottom = m.top - m.size + 1n;
  return bottom + ((((BigInt(lo) - bottom) % B32) + B32) % B32);
}

function modelVerdict(m: Model, s: bigint): ReplayVerdict {
  if (s <= 0n || s > (m.esn ? MAX_ESN : B32 - 1n)) return 'too-old';
  if (s > m.top) return 'ok';
  if (s <= m.top - m.size) return 'too-old';
  return m.seen.has(s) ? 'replayed' : 'ok';
}

/** Where the next packet's true sequence number comes from, relative to the state when it is sent. */
type Target =
  | { kind: 'ahead'; d: bigint }
  | { kind: 'behind'; d: bigint }
  | { kind: 'edge'; k: number }
  | { kind: 'replay'; i: number }
  | { kind: 'recent'; i: number }
  | { kind: 'epoch'; epoch: number; off: number }
  | { kind: 'branch'; epoch: number; k: number }
  | { kind: 'end'; k: bigint }
  | { kind: 'anywhere'; s: bigint };

const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('ahead' as const), d: fc.bigInt(1n, 4n) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('ahead' as const),
      d: fc.oneof(
        fc.bigInt(1n, 140_000n),
        fc.bigInt(1n, 1n << 33n),
        fc.constantFrom(1n << 31n, B32 - 64n, B32 - 65n, B32, B32 + 1n),
      ),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('behind' as const), d: fc.bigInt(0n, 140_000n) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('behind' as const), d: fc.bigInt(0n, 1n << 33n) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('edge' as const), k: fc.integer({ min: -3, max: 3 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), i: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('recent' as const), i: fc.integer({ min: 1, max: 16 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('epoch' as const),
      epoch: fc.integer({ min: -1, max: 2 }),
      off: fc.oneof(fc.integer({ min: -70, max: 70 }), fc.integer({ min: -140_000, max: 140_000 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('branch' as const),
      epoch: fc.integer({ min: 0, max: 1 }),
      k: fc.integer({ min: -2, max: 2 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('end' as const),
      k: fc.oneof(fc.bigInt(0n, 70n), fc.bigInt(0n, 140_000n)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('anywhere' as const), s: fc.bigInt({ min: 0n, max: MAX_ESN }) }),
  },
);

/**
 * A packet: where its number comes from; whether its ICV fails (a forgery: checked, never updated); whether
 * its update comes late, after the next packet's check and update (a decapsulator that verifies
 * asynchronously), by which time the window may have moved past it.
 */
const packet = fc.record({
  target,
  forged: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
  late: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
});

function trueNumber(m: Model, t: Target, sent: bigint[]): bigint {
  let s: bigint;
  switch (t.kind) {
    case 'ahead':
      s = m.top + t.d;
      break;
    case 'behind':
      s = m.top - t.d;
      break;
    case 'edge':
      s = m.top - m.size + BigInt(t.k);
      break;
    case 'replay':
      s = sent.length ? sent[t.i % sent.length]! : m.top;
      break;
    case 'recent':
      s = sent.length ? sent[Math.max(0, sent.length - t.i)]! : m.top;
      break;
    case 'epoch':
      // Near the start of the top's epoch or its neighbours; without ESN, near 2^32 − 1 and 0.
      s = ((m.top >> 32n) + BigInt(t.epoch)) * B32 + BigInt(t.off);
      break;
    case 'branch':
      // A low half of about W − 1, where Appendix A switches between its two cases once it is the top.
      s = ((m.top >> 32n) + BigInt(t.epoch)) * B32 + m.size - 1n + BigInt(t.k);
      break;
    case 'end':
      // The end of the sequence space (2^64 − 1 with ESN, 2^32 − 1 without).
      s = MAX_ESN - t.k;
      break;
    case 'anywhere':
      s = t.s;
      break;
  }
  return m.esn ? BigInt.asUintN(64, s) : BigInt.asUintN(32, s);
}

/** Marks s as received as the window does: unless it has fallen out of the window meanwhile. */
function modelUpdate(m: Model, s: bigint): void {
  if (s <= m.top - m.size) return;
  m.seen.add(s);
  if (s > m.top) m.top = s;
}

describe('ReplayWindow against a set-and-top model', () => {
  for (const esn of [false, true]) {
    it(`agrees on every verdict, inferred high half and top (esn ${esn})`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(32, 64, 100, 1024, 4096, 65536),
          // Where the SA stands when the packets start: new, or long running (up to the end of the space).
          fc.oneof(
            fc.constant(0n),
            fc.bigInt({ min: 0n, max: MAX_ESN }),
            fc.bigInt({ min: MAX_ESN - 140_000n, max: MAX_ESN }),
          ),
          fc.array(packet, { minLength: 1, maxLength: 300, size: 'max' }),
          (size, startAt, packets) => {
            const w = new ReplayWindow(size, esn);
            const m: Model = { esn, size: BigInt(size), top: 0n, seen: new Set() };
            const start = esn ? startAt : BigInt.asUintN(32, startAt);
            if (start > 0n) {
              w.update(Number(start >> 32n), Number(start & (B32 - 1n)));
              modelUpdate(m, start);
            }
            const sent: bigint[] = [];
            let pending: { s: bigint; hi: number; lo: number } | null = null;
            for (const [n, { target: t, forged, late }] of packets.entries()) {
              const s = trueNumber(m, t, sent);
              sent.push(s);
              const lo = Number(s & (B32 - 1n));
              const verdict = w.check(lo);
              const inferred = modelInfer(m, lo);
              const at = `packet ${n}: true ${s}, top ${m.top}, lo ${lo}`;
              expect(verdict, at).toBe(modelVerdict(m, inferred));
              expect(w.inferredHi, at).toBe(Number(BigInt.asUintN(32, inferred >> 32n)));
              if (!esn) expect(w.inferredHi, at).toBe(0);
              else if (s >= m.top - m.size + 1n && s <= m.top - m.size + B32) {
                expect(inferred, at).toBe(s);
                expect(w.inferredHi, at).toBe(Number(s >> 32n));
              }
              // The ICV is computed with the inferred high half: it verifies only for the true number.
              const authentic = verdict === 'ok' && !forged && inferred === s;
              if (authentic && !late) {
                w.update(w.inferredHi, lo);
                modelUpdate(m, s);
              }
              if (pending) {
                w.update(pending.hi, pending.lo);
                modelUpdate(m, pending.s);
                pending = null;
              }
              if (authentic && late) pending = { s, hi: w.inferredHi, lo };
              expect([w.topHi, w.topLo], at).toEqual([Number(m.top >> 32n), Number(m.top & (B32 - 1n))]);
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});

describe('ReplayWindow.checkExact (the high half travels with the number)', () => {
  it('judges by the full number: far behind is too old, where check() would infer the next epoch', () => {
    const w = new ReplayWindow(64, true);
    w.update(7, 1000);
    expect(w.checkExact(7, 1000)).toBe('replayed');
    expect(w.checkExact(7, 1001)).toBe('ok');
    expect(w.checkExact(7, 1000 - 63)).toBe('ok');
    expect(w.checkExact(7, 1000 - 64)).toBe('too-old');
    expect(w.check(1000 - 64)).toBe('ok'); // inferred as (8, 936)
    expect(w.inferredHi).toBe(8);
    expect(w.checkExact(6, 1000)).toBe('too-old');
    expect(w.inferredHi).toBe(6);
    expect(w.checkExact(8, 0)).toBe('ok');
    expect(w.checkExact(0xffffffff, 0xffffffff)).toBe('ok');
    expect(w.checkExact(0, 0)).toBe('too-old');
    // Checking never moves the window.
    expect([w.topHi, w.topLo]).toEqual([7, 1000]);
  });

  it('without ESN refuses a non-zero high half and judges the rest like check()', () => {
    const w = new ReplayWindow(64);
    w.update(0, 500);
    expect(w.checkExact(1, 501)).toBe('too-old');
    expect(w.inferredHi).toBe(1);
    expect(w.checkExact(0, 501)).toBe('ok');
    expect(w.checkExact(0, 500)).toBe('replayed');
    expect(w.checkExact(0, 436)).toBe('too-old');
  });

  it('agrees with the set-and-top model on every verdict and top', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(32, 64, 1024, 65536),
        fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: MAX_ESN })),
        fc.array(packet, { minLength: 1, maxLength: 200, size: 'max' }),
        (size, start, packets) => {
          const w = new ReplayWindow(size, true);
          const m: Model = { esn: true, size: BigInt(size), top: 0n, seen: new Set() };
          if (start > 0n) {
            w.update(Number(start >> 32n), Number(start & (B32 - 1n)));
            modelUpdate(m, start);
          }
          const sent: bigint[] = [];
          for (const [n, { target: t, forged }] of packets.entries()) {
            const s = trueNumber(m, t, sent);
            sent.push(s);
            const hi = Number(s >> 32n);
            const lo = Number(s & (B32 - 1n));
            const verdict = w.checkExact(hi, lo);
            expect(verdict, `packet ${n}: ${s}, top ${m.top}`).toBe(modelVerdict(m, s));
            if (verdict === 'ok' && !forged) {
              w.update(hi, lo);
              modelUpdate(m, s);
            }
            expect([w.topHi, w.topLo]).toEqual([Number(m.top >> 32n), Number(m.top & (B32 - 1n))]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
