import { describe, expect, it } from 'vitest';
import { EspDecapStage, EspEncapStage } from '../../src/esp/esp-stages.js';
import type { Packet } from '../../src/packet.js';
import { pipeline } from '../../src/stages/pipeline.js';
import { runStage } from '../../src/stages/run.js';
import type { Emit } from '../../src/stages/stage.js';
import { ConstantRateStage } from '../../src/tfc/constant-rate-stage.js';
import type { DummySource } from '../../src/tfc/dummy.js';
import { Pacer } from '../../src/tfc/pacer.js';
import { seededRandom } from '../../src/tfc/random.js';
import { rawPacket, saConfig, saPair, udpPacket } from '../esp/engine-fixtures.js';

const MS = 1_000_000n;
const T0 = 1_700_000_000n * 1_000_000_000n;

/** Fillers are one byte 0xff long, so output lines tell them apart from the real packets. */
const filler: DummySource = {
  emitDummy(_length: number, ts: bigint, emit: Emit) {
    emit({ data: Buffer.from([0xff]), ts, link: 228 });
  },
};

/** A capture-like source: every packet in one reused buffer (as a file reader or live capture does). */
function* reusingSource(packets: { name: string; ts: bigint }[]): Generator<Packet> {
  const buf = Buffer.alloc(64, 0xa5);
  for (const p of packets) {
    const n = buf.write(p.name, 0, 'latin1');
    yield { data: buf.subarray(0, n), ts: p.ts, link: 228 };
  }
}

const name = (p: Packet) => (p.data.length === 1 && p.data[0] === 0xff ? 'F' : p.data.toString('latin1'));

async function run(
  stage: ConstantRateStage,
  packets: { name: string; ts: bigint }[],
  tickInterval?: bigint,
): Promise<{ name: string; ts: bigint }[]> {
  const out: { name: string; ts: bigint }[] = [];
  await runStage(reusingSource(packets), stage, (p) => out.push({ name: name(p), ts: p.ts }), {
    ...(tickInterval !== undefined ? { tickInterval } : {}),
  });
  return out;
}

const at = (ms: number) => T0 + BigInt(ms * 1000) * 1000n;
const show = (out: { name: string; ts: bigint }[]) => out.map((o) => `${o.name}@${Number(o.ts - T0) / 1e6}`);

describe('ConstantRateStage in virtual time', () => {
  it('sends one packet per slot in arrival order, fillers in empty slots, a packet on the slot at its own time', async () => {
    const stage = new ConstantRateStage({ pacer: new Pacer({ intervalNs: MS }), filler, fillerLength: 0 });
    const out = await run(stage, [
      { name: 'a', ts: at(0) },
      { name: 'b', ts: at(0) },
      { name: 'c', ts: at(0.5) },
      { name: 'd', ts: at(5) },
    ]);
    expect(show(out)).toEqual(['a@0', 'b@1', 'c@2', 'F@3', 'F@4', 'd@5']);
    expect(stage.stats()).toMatchObject({
      packetsIn: 4,
      packetsOut: 6,
      fillers: 2,
      idleSlots: 0,
      slots: 6,
      maxQueued: 2,
      queued: 0,
      dropped: {},
    });
  });

  it('drains the queue at the following slot times on flush, one per slot', async () => {
    const stage = new ConstantRateStage({
      pacer: new Pacer({ intervalNs: 2n * MS }),
      filler,
      fillerLength: 0,
    });
    const burst = ['a', 'b', 'c', 'd', 'e'].map((n) => ({ name: n, ts: at(1) }));
    const out = await run(stage, [...burst, { name: 'f', ts: at(2.5) }]);
    expect(show(out)).toEqual(['a@1', 'b@3', 'c@5', 'd@7', 'e@9', 'f@11']);
    expect(stage.stats()).toMatchObject({ fillers: 0, slots: 6, queued: 0 });
  });

  it('drops what does not fit in the queue, keeping the earliest', async () => {
    const stage = new ConstantRateStage({ pacer: new Pacer({ intervalNs: MS }), queueLimit: 3 });
    const out = await run(
      stage,
      ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => ({ name: n, ts: at(0) })),
    );
    expect(show(out)).toEqual(['a@0', 'b@1', 'c@2', 'd@3']);
    expect(stage.stats()).toMatchObject({ packetsIn: 6, packetsOut: 4, dropped: { 'queue-full': 2 } });
  });

  it('leaves slots empty without a filler and counts them', async () => {
    const stage = new ConstantRateStage({ pacer: new Pacer({ intervalNs: MS }) });
    const out = await run(stage, [
      { name: 'a', ts: at(0) },
      { name: 'b', ts: at(3.2) },
    ]);
    expect(show(out)).toEqual(['a@0', 'b@4']);
    expect(stage.stats()).toMatchObject({ idleSlots: 3, fillers: 0, slots: 5 });
  });

  it('spaces a random trace exactly at 1400 B / 123 Mbit/s, as a brute-force schedule says', async () => {
    const r = seededRandom(99);
    const packets: { name: string; ts: bigint }[] = [];
    let t = T0;
    for (let i = 0; i < 3000; i++) {
      // Bursts and pauses: mostly back to back (faster than the rate), sometimes a gap of up to 5 ms.
      t += BigInt(r() < 0.9 ? Math.floor(r() * 30_000) : Math.floor(r() * 5_000_000));
      packets.push({ name: `p${i}`, ts: t });
    }
    const limit = 8;
    const stage = new ConstantRateStage({
      pacer: Pacer.fromRate(123_000_000, 1400),
      filler,
      fillerLength: 0,
      queueLimit: limit,
    });
    const out = await run(stage, packets);

    // Brute force: slot k at t0 + ⌊k·11200e9/123e6⌋ (t0: the first packet) carries the oldest packet that
    // arrived by then.
    const t0 = packets[0]!.ts;
    const slot = (k: number) => t0 + (BigInt(k) * 11_200_000_000_000n) / 123_000_000n;
    const expected: { name: string; ts: bigint }[] = [];
    const queue: string[] = [];
    let k = 0;
    let dropped = 0;
    for (const p of packets) {
      for (; slot(k) < p.ts; k++) expected.push({ name: queue.shift() ?? 'F', ts: slot(k) });
      if (queue.length < limit) queue.push(p.name);
      else dropped++;
      for (; slot(k) <= p.ts; k++) expected.push({ name: queue.shift() ?? 'F', ts: slot(k) });
    }
    for (; queue.length > 0; k++) expected.push({ name: queue.shift()!, ts: slot(k) });

    expect(out.length).toBe(expected.length);
    expect(out).toEqual(expected);
    expect(dropped).toBeGreaterThan(0); // the trace does overflow the queue
    const s = stage.stats();
    expect(s.dropped).toEqual({ 'queue-full': dropped });
    expect(s.slots).toBe(k);
    expect(s.fillers).toBe(k - (packets.length - dropped));
    expect((s.gapErrorNs as Record<string, number>).max).toBeLessThan(1);
  });

  it('gives the same output with sparse ticks as with a tick before every packet', async () => {
    const packets = Array.from({ length: 200 }, (_, i) => ({
      name: `p${i}`,
      ts: at((i * i) % 97) + BigInt(i),
    }));
    packets.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    const make = () =>
      new ConstantRateStage({ pacer: new Pacer({ intervalNs: 333_333n }), filler, fillerLength: 0 });
    expect(await run(make(), packets, 10n * MS)).toEqual(await run(make(), packets));
  });

  it('keeps ESP sequence numbers in order with the encapsulator as filler: the receiver takes everything', async () => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
    const encap = new EspEncapStage([tx]);
    const rate = new ConstantRateStage({
      pacer: Pacer.fromRate(10_000_000, 200),
      filler: encap,
      fillerLength: 100,
    });
    const inner = Array.from({ length: 50 }, (_, i) => udpPacket({ id: i, payload: Buffer.alloc(i * 3, i) }));
    const wire: Packet[] = [];
    await runStage(
      inner.map((d, i) => rawPacket(d, T0 + BigInt(Math.floor(i / 5)) * 1_000_000n)),
      pipeline(encap, rate),
      (p) => wire.push({ ...p, data: Buffer.from(p.data) }),
    );
    const gaps = new Set(wire.slice(1).map((p, i) => p.ts - wire[i]!.ts));
    expect([...gaps]).toEqual([160_000n]); // 200 B at 10 Mbit/s
    const decap = new EspDecapStage([rx]);
    const back: Buffer[] = [];
    for (const p of wire) decap.process(p, (q) => back.push(Buffer.from(q.data)));
    expect(back).toEqual(inner);
    expect(decap.stats().dropped).toEqual({ dummy: rate.stats().fillers });
    expect(rate.stats().fillers).toBeGreaterThan(0);
  });
});

describe('ConstantRateStage in real time', () => {
  it('sends on ticks as the token bucket allows, at now, and flushes the rest at the last tick', () => {
    const stage = new ConstantRateStage({
      pacer: new Pacer({ intervalNs: MS, maxBurst: 2 }),
      time: 'real',
      filler,
      fillerLength: 0,
    });
    const out: string[] = [];
    const sink: Emit = (p) => out.push(`${name(p)}@${Number(p.ts - T0) / 1e6}`);
    const input = (n: string) => stage.process({ data: Buffer.from(n), ts: T0, link: 228 }, sink);
    stage.tick(at(0), sink); // starts the pacer: slot 0, nothing queued
    for (const n of ['a', 'b', 'c', 'd', 'e']) input(n);
    expect(out).toEqual(['F@0']); // packets wait for a tick
    stage.tick(at(1.2), sink); // slot 1
    stage.tick(at(5), sink); // slots 2…5 due, burst 2: 2 missed
    stage.flush(sink);
    expect(out).toEqual(['F@0', 'a@1.2', 'b@5', 'c@5', 'd@5', 'e@5']);
    expect(stage.stats()).toMatchObject({
      slots: 4,
      missedSlots: 2,
      fillers: 1,
      flushedUnpaced: 2,
      queued: 0,
    });
  });

  it('refuses incomplete configuration', () => {
    const pacer = new Pacer({ intervalNs: MS });
    expect(() => new ConstantRateStage({} as never)).toThrow(/needs a pacer/);
    expect(() => new ConstantRateStage({ pacer, filler })).toThrow(/fillerLength/);
    expect(() => new ConstantRateStage({ pacer, queueLimit: 0 })).toThrow(/queueLimit/);
    expect(() => new ConstantRateStage({ pacer, time: 'wall' as 'real' })).toThrow(/'virtual' or 'real'/);
  });
});
