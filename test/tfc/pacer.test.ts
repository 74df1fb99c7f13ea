import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/tfc/pacer.js';
import { seededRandom } from '../../src/tfc/random.js';
import { nearestRank, SampleReservoir } from '../../src/tfc/sample-reservoir.js';

const T0 = 1_700_000_000_000_000_000n;

/** Takes every slot due by each `now` in turn, as a caller of takeVirtual does; returns the slot times. */
function drainVirtual(p: Pacer, nows: bigint[]): bigint[] {
  const out: bigint[] = [];
  for (const now of nows) for (let t = p.takeVirtual(now); t >= 0n; t = p.takeVirtual(now)) out.push(t);
  return out;
}

/** Irregular "now" values from t0 to end: steps of 0 to 3·maxStep ns (seeded). */
function irregularNows(t0: bigint, end: bigint, maxStep: number, seed: number): bigint[] {
  const r = seededRandom(seed);
  const nows: bigint[] = [];
  for (let now = t0; now < end; now += BigInt(Math.floor(r() * 3 * maxStep))) nows.push(now);
  nows.push(end);
  return nows;
}

describe('Pacer in virtual time', () => {
  it('puts 10^5 slots of 1400 B at 123 Mbit/s exactly at t0 + ⌊k·11200·10^9/123·10^6⌋ ns', () => {
    const p = Pacer.fromRate(123_000_000, 1400);
    p.start(T0);
    const N = 100_000;
    // interval = 91056.910569… ns; slot N−1 is due at T0 + ⌊(N−1)·interval⌋.
    const end = T0 + (BigInt(N - 1) * 11_200_000_000_000n) / 123_000_000n;
    const slots = drainVirtual(p, irregularNows(T0, end, 400_000, 1));
    expect(slots.length).toBe(N);
    let wrong = 0;
    for (let k = 0; k < N; k++) {
      if (slots[k] !== T0 + (BigInt(k) * 11_200_000_000_000n) / 123_000_000n) wrong++;
    }
    expect(wrong).toBe(0);
    expect(p.nextDue).toBe(T0 + (BigInt(N) * 11_200_000_000_000n) / 123_000_000n);
  });

  it('keeps every gap within 1 ns of a fractional interval and the long-run rate exact', () => {
    const p = Pacer.fromRate(123_000_000, 1400);
    const interval = (1400 * 8 * 1e9) / 123e6;
    p.start(T0);
    const slots = drainVirtual(p, [T0 + 10_000_000_000n]); // 10 s
    const gaps = new Set<bigint>();
    for (let k = 1; k < slots.length; k++) gaps.add(slots[k]! - slots[k - 1]!);
    expect([...gaps].sort()).toEqual([91_056n, 91_057n]);
    // After k slots the schedule is behind k·interval by less than 1 ns, never ahead.
    for (const k of [1, 7, 123, 1000, slots.length - 1]) {
      const behind = k * interval - Number(slots[k]! - T0);
      expect(behind).toBeGreaterThanOrEqual(0);
      expect(behind).toBeLessThan(1);
    }
    // 10 s at 123 Mbit/s in 1400-byte packets: ⌊10 / interval⌋ + 1 slots, counting the one at t0.
    expect(slots.length).toBe(Math.floor(10e9 / interval) + 1);
    const s = p.stats();
    expect(s.slots).toBe(slots.length);
    expect(s.missedSlots).toBe(0);
    expect(s.targetRateHz).toBeCloseTo(123e6 / 11200, 9);
    expect(Math.abs(s.achievedRateHz - s.targetRateHz) / s.targetRateHz).toBeLessThan(1e-9);
  });

  it('puts slots of a whole-ns interval at exactly t0 + k·interval', () => {
    const p = Pacer.fromRate(112_000_000, 1400); // 100 µs exactly
    expect(p.intervalNum).toBe(100_000n);
    expect(p.intervalDen).toBe(1n);
    p.start(5n);
    const slots = drainVirtual(p, irregularNows(5n, 5n + 999n * 100_000n, 250_000, 2));
    expect(slots).toEqual(Array.from({ length: 1000 }, (_, k) => 5n + BigInt(k) * 100_000n));
    expect(p.stats().gapErrorNs).toEqual({ count: 999, mean: 0, p50: 0, p99: 0, max: 0 });
  });

  it('matches the exact formula for any rate, size and start (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 10_000_000_000 }),
        fc.integer({ min: 1, max: 9000 }),
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        fc.integer({ min: 1, max: 300 }),
        (rate, bytes, t0, n) => {
          fc.pre(rate <= bytes * 8e9); // intervals of at least 1 ns
          const p = Pacer.fromRate(rate, bytes);
          p.start(t0);
          const num = BigInt(bytes) * 8_000_000_000n;
          const den = BigInt(rate);
          const slots = drainVirtual(p, [t0 + (BigInt(n - 1) * num) / den]);
          expect(slots).toEqual(Array.from({ length: n }, (_, k) => t0 + (BigInt(k) * num) / den));
          expect(p.slotTime(n)).toBe(p.nextDue);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('consumes nothing while no slot is due, and one slot per call', () => {
    const p = new Pacer({ intervalNs: 1000n });
    p.start(1000n);
    expect(p.takeVirtual(999n)).toBe(-1n);
    expect(p.takeVirtual(2500n)).toBe(1000n);
    expect(p.takeVirtual(2500n)).toBe(2000n);
    expect(p.takeVirtual(2500n)).toBe(-1n);
    expect(p.nextDue).toBe(3000n);
    expect(p.takeVirtualBefore(3000n)).toBe(-1n); // strictly before: the slot at 3000 stays
    expect(p.takeVirtualBefore(3001n)).toBe(3000n);
    expect(p.stats().slots).toBe(3);
  });

  it('records the gap errors of a fractional interval exactly', () => {
    const p = new Pacer({ intervalNs: 10n, intervalDivisor: 3n }); // 3.333… ns
    p.start(0n);
    const slots = drainVirtual(p, [30n]);
    expect(slots).toEqual([0n, 3n, 6n, 10n, 13n, 16n, 20n, 23n, 26n, 30n]);
    const errors = slots.slice(1).map((t, i) => Math.abs(Number(t - slots[i]!) - 10 / 3));
    const sorted = [...errors].sort((a, b) => a - b);
    const g = p.stats().gapErrorNs;
    expect(g.count).toBe(9);
    expect(g.mean).toBeCloseTo(errors.reduce((a, b) => a + b) / 9, 12);
    expect(g.p50).toBe(nearestRank(sorted, 50));
    expect(g.p99).toBe(nearestRank(sorted, 99));
    expect(g.max).toBe(sorted[8]);
  });

  it('refuses bad configuration and misuse, saying what to change', () => {
    expect(() => new Pacer({ intervalNs: 0n })).toThrow(/interval must be positive/);
    expect(() => new Pacer({ intervalNs: 1n, intervalDivisor: 2n })).toThrow(/below 1 ns/);
    expect(() => Pacer.fromRate(1.5, 100)).toThrow(/whole number of bits per second/);
    expect(() => Pacer.fromRate(1e6, 0)).toThrow(/packet size/);
    expect(() => new Pacer({ intervalNs: 100n, maxBurst: 0 })).toThrow(/maxBurst/);
    const p = new Pacer({ intervalNs: 100n });
    expect(() => p.takeVirtual(0n)).toThrow(/call start\(t0\) first/);
    p.start(0n);
    expect(() => p.start(0n)).toThrow(/already started/);
    p.takeVirtual(0n);
    expect(() => p.takeReal(0n)).toThrow(/runs in virtual time/);
  });
});

describe('Pacer in real time (token bucket)', () => {
  it('sends due slots per tick, caps a stall at maxBurst and counts the rest as missed', () => {
    const p = new Pacer({ intervalNs: 1000n, maxBurst: 4 });
    p.start(10_000n);
    const at = (t: number) => p.takeReal(10_000n + BigInt(t));
    expect(at(-5)).toBe(0); // before t0
    expect(at(0)).toBe(1); // slot 0
    expect(at(900)).toBe(0);
    expect(at(1500)).toBe(1); // slot 1
    expect(at(3100)).toBe(2); // slots 2, 3
    expect(at(20_000)).toBe(4); // slots 4…20 due: 17, burst 4, 13 missed
    expect(p.stats().missedSlots).toBe(13);
    expect(at(20_500)).toBe(0);
    expect(at(21_000)).toBe(1);
    const s = p.stats();
    expect(s.slots).toBe(9);
    expect(s.slots + s.missedSlots).toBe(22); // every slot up to 21 000 is sent or missed
    expect(s.achievedRateHz).toBeCloseTo((8 * 1e9) / 21_000, 6);
  });

  it('computes gap-error statistics from the actual send times (brute force check)', () => {
    const interval = 91_056.910_569_105_69; // 1400 B at 123 Mbit/s
    const p = Pacer.fromRate(123_000_000, 1400, { maxBurst: 6 });
    p.start(T0);
    const r = seededRandom(7);
    const sends: bigint[] = [];
    let now = T0;
    let ticks = 0;
    while (ticks++ < 5000) {
      // 1 ms timer with up to 0.5 ms of jitter, and a 40 ms stall now and then.
      now += BigInt(Math.round(1e6 + (r() - 0.5) * 1e6 + (r() < 0.005 ? 40e6 : 0)));
      const n = p.takeReal(now);
      expect(n).toBeLessThanOrEqual(6);
      for (let i = 0; i < n; i++) sends.push(now);
    }
    const errors = sends.slice(1).map((t, i) => Math.abs(Number(t - sends[i]!) - interval));
    const sorted = [...errors].sort((a, b) => a - b);
    const s = p.stats();
    expect(s.slots).toBe(sends.length);
    const due = Number(((now - T0) * 123_000_000n) / 11_200_000_000_000n) + 1;
    expect(s.slots + s.missedSlots).toBe(due);
    expect(s.missedSlots).toBeGreaterThan(0);
    expect(s.gapErrorNs.count).toBe(errors.length);
    expect(s.gapErrorNs.mean).toBeCloseTo(errors.reduce((a, b) => a + b) / errors.length, 3);
    expect(s.gapErrorNs.p50).toBe(nearestRank(sorted, 50));
    expect(s.gapErrorNs.p99).toBe(nearestRank(sorted, 99));
    expect(s.gapErrorNs.max).toBe(sorted[sorted.length - 1]);
    expect(s.achievedRateHz).toBeCloseTo(((sends.length - 1) * 1e9) / Number(now - sends[0]!), 6);
  });

  it('loses no slot with its default burst when a 1 ms timer fires on time', () => {
    const p = Pacer.fromRate(123_000_000, 1400);
    expect(p.maxBurst).toBe(Math.ceil(2e6 / ((1400 * 8 * 1e9) / 123e6))); // 22 slots: 2 ms
    p.start(0n);
    let sent = 0;
    for (let ms = 0n; ms <= 1000n; ms++) sent += p.takeReal(ms * 1_000_000n);
    expect(p.stats().missedSlots).toBe(0);
    expect(sent).toBe(Math.floor(1e9 / ((1400 * 8 * 1e9) / 123e6)) + 1);
    expect(new Pacer({ intervalNs: 10_000_000n }).maxBurst).toBe(4);
  });
});

describe('SampleReservoir', () => {
  it('is exact up to its capacity', () => {
    const res = new SampleReservoir(100);
    const values = Array.from({ length: 100 }, (_, i) => (i * 37) % 101);
    for (const v of values) res.add(v);
    const sorted = [...values].sort((a, b) => a - b);
    expect(res.exact).toBe(true);
    expect(res.summary()).toEqual({
      count: 100,
      mean: values.reduce((a, b) => a + b) / 100,
      p50: sorted[49],
      p99: sorted[98],
      max: sorted[99],
    });
    expect(new SampleReservoir(4).summary()).toEqual({ count: 0, mean: 0, p50: 0, p99: 0, max: 0 });
  });

  it('keeps a uniform sample beyond its capacity: percentiles estimated, count/mean/max exact', () => {
    const res = new SampleReservoir(2000, seededRandom(3));
    const r = seededRandom(4);
    let sum = 0;
    let max = 0;
    for (let i = 0; i < 200_000; i++) {
      // Values drift upwards over time, so a sample biased to early or late values would show.
      const v = r() * 1000 + i / 200;
      sum += v;
      max = Math.max(max, v);
      res.add(v);
    }
    const s = res.summary();
    expect(res.exact).toBe(false);
    expect(s.count).toBe(200_000);
    expect(s.mean).toBeCloseTo(sum / 200_000, 6);
    expect(s.max).toBe(max);
    // True median of U(0,1000) + U(0,1000) (the drift) is 1000; p99 is 2000 − 1000·√0.02 ≈ 1858.6.
    expect(Math.abs(s.p50 - 1000)).toBeLessThan(40);
    expect(Math.abs(s.p99 - 1858.6)).toBeLessThan(30);
  });
});
