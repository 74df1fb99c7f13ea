import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Packet } from '../../src/packet.js';
import { runStage } from '../../src/stages/run.js';
import type { Emit } from '../../src/stages/stage.js';
import { DelayStage, type DelayStageOptions } from '../../src/tfc/delay.js';
import { type HeldPacket, PacketPool } from '../../src/tfc/held-packets.js';
import { HeldHeap } from '../../src/tfc/packet-queues.js';
import { seededRandom } from '../../src/tfc/random.js';

const MS = 1_000_000n;
const T0 = 1_700_000_000n * 1_000_000_000n;

/** Packets named p0, p1, … in one reused buffer (as a capture reader hands them out). */
function* reusingSource(times: bigint[]): Generator<Packet> {
  const buf = Buffer.alloc(16, 0xa5);
  for (let i = 0; i < times.length; i++) {
    const n = buf.write(`p${i}`, 0, 'latin1');
    yield { data: buf.subarray(0, n), ts: times[i]!, link: 228 };
  }
}

type Out = { i: number; ts: bigint };

async function run(stage: DelayStage, times: bigint[], tickInterval?: bigint): Promise<Out[]> {
  const out: Out[] = [];
  await runStage(
    reusingSource(times),
    stage,
    (p) => out.push({ i: Number(p.data.toString('latin1').slice(1)), ts: p.ts }),
    tickInterval !== undefined ? { tickInterval } : {},
  );
  return out;
}

/** Arrival times: T0 plus seeded gaps of 0 to 2 ms. */
function arrivals(n: number, seed: number): bigint[] {
  const r = seededRandom(seed);
  let t = T0;
  return Array.from({ length: n }, () => (t += BigInt(Math.floor(r() * 2_000_000))));
}

describe('DelayStage', () => {
  it('keeps order and releases at exactly max(previous, ts + delay + uniform jitter) in virtual time', async () => {
    const times = arrivals(2000, 1);
    const d = 5_000_000;
    const j = 3_000_000;
    const options: DelayStageOptions = {
      delayNs: BigInt(d),
      jitter: { kind: 'uniform', maxNs: BigInt(j) },
      random: seededRandom(42),
    };
    const out = await run(new DelayStage(options), times);
    // Brute force with the same random sequence: one draw per packet, uniform whole ns in [−j, j].
    const r = seededRandom(42);
    let previous = 0n;
    let heldBack = 0;
    const expected = times.map((ts, i) => {
      const own = ts + BigInt(d + Math.floor(r() * (2 * j + 1)) - j);
      if (own < previous) heldBack++;
      else previous = own;
      return { i, ts: previous };
    });
    expect(out).toEqual(expected);
    expect(heldBack).toBeGreaterThan(100); // keeping order did hold packets back
  });

  it('without keepOrder releases in release order (arrival order among equals), within the jitter bounds', async () => {
    const times = arrivals(2000, 2);
    const d = 5_000_000;
    const j = 3_000_000;
    const stage = new DelayStage({
      delayNs: BigInt(d),
      jitter: { kind: 'uniform', maxNs: BigInt(j) },
      random: seededRandom(7),
      keepOrder: false,
    });
    const out = await run(stage, times);
    const r = seededRandom(7);
    const own = times.map((ts, i) => ({ i, ts: ts + BigInt(d + Math.floor(r() * (2 * j + 1)) - j) }));
    const expected = [...own].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.i - b.i));
    expect(out).toEqual(expected);
    expect(out.some((o, k) => o.i !== k)).toBe(true); // packets did overtake each other
    for (const o of out) {
      const added = o.ts - times[o.i]!;
      expect(added >= BigInt(d - j) && added <= BigInt(d + j)).toBe(true);
    }
  });

  it('spreads uniform jitter over the whole ±j and exponential jitter with the asked mean', () => {
    const collect = (options: DelayStageOptions): number[] => {
      const stage = new DelayStage({ ...options, keepOrder: false });
      const added: number[] = [];
      const sink: Emit = (p) => added.push(Number(p.ts - T0));
      for (let i = 0; i < 10_000; i++)
        stage.process({ data: Buffer.from([i & 0xff]), ts: T0, link: 228 }, sink);
      stage.flush(sink);
      return added;
    };
    const u = collect({ delayNs: 1000n, jitter: { kind: 'uniform', maxNs: 1000n }, random: seededRandom(3) });
    expect(Math.min(...u)).toBe(0); // 0 and 2000 are each hit ~5 times in 10^4 draws of 2001 values
    expect(Math.max(...u)).toBe(2000);
    const mean = u.reduce((a, b) => a + b) / u.length;
    expect(Math.abs(mean - 1000)).toBeLessThan(15);

    const e = collect({
      delayNs: 500n,
      jitter: { kind: 'exponential', meanNs: 2000n },
      random: seededRandom(4),
    });
    expect(Math.min(...e)).toBeGreaterThanOrEqual(500);
    const eMean = e.reduce((a, b) => a + b) / e.length;
    expect(Math.abs(eMean - 2500) / 2000).toBeLessThan(0.03);
  });

  it('gives the same output with sparse ticks as with a tick before every packet', async () => {
    const times = arrivals(500, 5);
    const make = () =>
      new DelayStage({
        delayNs: 2n * MS,
        jitter: { kind: 'exponential', meanNs: MS },
        random: seededRandom(9),
      });
    expect(await run(make(), times, 20n * MS)).toEqual(await run(make(), times));
  });

  it('releases everything still held on flush, in order, each at its release time', async () => {
    const stage = new DelayStage({ delayNs: 10n * MS });
    const out = await run(stage, [T0, T0 + MS, T0 + 3n * MS, T0 + 12n * MS]);
    expect(out).toEqual([
      { i: 0, ts: T0 + 10n * MS }, // released by the tick at 12 ms
      { i: 1, ts: T0 + 11n * MS },
      { i: 2, ts: T0 + 13n * MS }, // the rest by flush
      { i: 3, ts: T0 + 22n * MS },
    ]);
    expect(stage.stats()).toMatchObject({
      packetsIn: 4,
      packetsOut: 4,
      held: 0,
      maxHeld: 3,
      addedDelayNs: { mean: 10e6, max: 10e6 },
    });
  });

  it('passes a zero-delay packet straight through at its own time', async () => {
    expect(await run(new DelayStage({ delayNs: 0n }), [T0, T0, T0 + 5n])).toEqual([
      { i: 0, ts: T0 },
      { i: 1, ts: T0 },
      { i: 2, ts: T0 + 5n },
    ]);
  });

  it('drops packets beyond its limit', async () => {
    const stage = new DelayStage({ delayNs: MS, limit: 2 });
    const out = await run(stage, [T0, T0 + 1n, T0 + 2n, T0 + MS]);
    expect(out.map((o) => o.i)).toEqual([0, 1, 3]);
    expect(stage.stats()).toMatchObject({ packetsIn: 4, packetsOut: 3, dropped: { 'queue-full': 1 } });
  });

  it('in real time releases due packets at now on ticks', () => {
    const stage = new DelayStage({ delayNs: 10n * MS, time: 'real' });
    const out: string[] = [];
    const sink: Emit = (p) => out.push(`${p.data.toString()}@${(p.ts - T0) / MS}`);
    stage.process({ data: Buffer.from('a'), ts: T0, link: 228 }, sink);
    stage.process({ data: Buffer.from('b'), ts: T0 + 4n * MS, link: 228 }, sink);
    stage.tick(T0 + 9n * MS, sink);
    expect(out).toEqual([]);
    stage.tick(T0 + 12n * MS, sink);
    stage.flush(sink);
    expect(out).toEqual(['a@12', 'b@14']);
  });

  it('refuses impossible configuration', () => {
    expect(() => new DelayStage({ delayNs: -1n })).toThrow(/delayNs must be a bigint ≥ 0n/);
    expect(() => new DelayStage({ delayNs: 5n, jitter: { kind: 'uniform', maxNs: 6n } })).toThrow(
      /needs delayNs ≥ 6/,
    );
    expect(() => new DelayStage({ delayNs: 5n, jitter: { kind: 'normal' } as never })).toThrow(
      /jitter must be/,
    );
    expect(() => new DelayStage({ delayNs: 5n, limit: 0 })).toThrow(/limit must be a positive integer/);
  });
});

describe('HeldHeap', () => {
  it('gives packets out by due time, arrival order among equals (property)', () => {
    const pool = new PacketPool();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (dues) => {
        const heap = new HeldHeap(1000);
        const held: HeldPacket[] = dues.map((due) => {
          const h = pool.hold({ data: Buffer.alloc(1), ts: 0n, link: 228 });
          h.due = BigInt(due);
          heap.push(h);
          return h;
        });
        const expected = [...held].sort((a, b) => Number(a.due - b.due) || a.order - b.order);
        const got: HeldPacket[] = [];
        for (let h = heap.shift(); h; h = heap.shift()) got.push(h);
        expect(got).toEqual(expected);
        for (const h of held) pool.give(h);
      }),
      { numRuns: 200 },
    );
  });
});
