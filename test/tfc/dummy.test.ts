import { describe, expect, it } from 'vitest';
import { checksumVerifies } from '../../src/codec/checksum.js';
import { EspDecapStage, EspEncapStage } from '../../src/esp/esp-stages.js';
import type { Packet } from '../../src/packet.js';
import { pipeline } from '../../src/stages/pipeline.js';
import { runStage } from '../../src/stages/run.js';
import type { Emit } from '../../src/stages/stage.js';
import {
  constantSchedule,
  DUMMY_IP_PROTOCOL,
  DummyInjectionStage,
  type DummySource,
  ipv4DummySource,
  poissonSchedule,
} from '../../src/tfc/dummy.js';
import { seededRandom } from '../../src/tfc/random.js';
import { rawPacket, saConfig, saPair, udpPacket } from '../esp/engine-fixtures.js';

const MS = 1_000_000n;
const T0 = 1_700_000_000n * 1_000_000_000n;

/** A source that records what it was asked for and emits a packet whose first byte says "dummy". */
class RecordingSource implements DummySource {
  readonly asked: { length: number; ts: bigint }[] = [];
  emitDummy(length: number, ts: bigint, emit: Emit): void {
    this.asked.push({ length, ts });
    emit({ data: Buffer.from([0xdd, length & 0xff]), ts, link: 228 });
  }
}

const real = (i: number, ts: bigint): Packet => ({ data: Buffer.from([0x45, i]), ts, link: 228 });
const label = (p: Packet) => (p.data[0] === 0xdd ? `d@${p.ts - T0}` : `r${p.data[1]}@${p.ts - T0}`);

async function run(stage: DummyInjectionStage, packets: Packet[], tickInterval?: bigint): Promise<string[]> {
  const out: string[] = [];
  await runStage(packets, stage, (p) => out.push(label(p)), tickInterval ? { tickInterval } : {});
  return out;
}

describe('DummyInjectionStage with a constant schedule', () => {
  it('emits a dummy at every t0 + k·interval up to the last packet, in time order with the real ones', async () => {
    const source = new RecordingSource();
    const stage = new DummyInjectionStage({ schedule: constantSchedule(10n * MS), source, length: 60 });
    const out = await run(stage, [
      real(1, T0),
      real(2, T0 + 25n * MS),
      real(3, T0 + 30n * MS),
      real(4, T0 + 71n * MS),
    ]);
    const ms = (n: number) => BigInt(n) * MS;
    expect(out).toEqual([
      'r1@0',
      `d@${ms(10)}`,
      `d@${ms(20)}`,
      `r2@${ms(25)}`,
      `d@${ms(30)}`, // a dummy due at a packet's own time goes first
      `r3@${ms(30)}`,
      `d@${ms(40)}`,
      `d@${ms(50)}`,
      `d@${ms(60)}`,
      `d@${ms(70)}`,
      `r4@${ms(71)}`,
    ]);
    expect(source.asked.every((a) => a.length === 60)).toBe(true);
    expect(stage.stats()).toMatchObject({ packetsIn: 4, packetsOut: 11, dummies: 7, dummiesRefused: 0 });
  });

  it('gives the same output however sparse the ticks', async () => {
    const packets = Array.from({ length: 40 }, (_, i) => real(i, T0 + BigInt(i * i) * 317_000n));
    const make = () =>
      new DummyInjectionStage({
        schedule: constantSchedule(1_234_567n),
        source: new RecordingSource(),
        length: 1,
      });
    const dense = await run(make(), packets);
    const sparse = await run(make(), packets, 50n * MS);
    expect(sparse).toEqual(dense);
    const last = 39n * 39n * 317_000n;
    expect(dense.filter((l) => l.startsWith('d')).length).toBe(Number(last / 1_234_567n));
  });

  it('draws each dummy length from lengthPolicy', async () => {
    const source = new RecordingSource();
    let n = 0;
    const stage = new DummyInjectionStage({
      schedule: constantSchedule(MS),
      source,
      lengthPolicy: () => 100 + n++,
    });
    await run(stage, [real(0, T0), real(1, T0 + 5n * MS)]);
    expect(source.asked.map((a) => a.length)).toEqual([100, 101, 102, 103, 104]);
    const bad = new DummyInjectionStage({ schedule: constantSchedule(MS), source, lengthPolicy: () => -1 });
    bad.tick(0n, () => {});
    expect(() => bad.tick(MS, () => {})).toThrow(/lengthPolicy\(\) must be a whole number/);
  });

  it('in real time emits due dummies at now, at most maxBurst per tick, counting the missed', () => {
    const stage = new DummyInjectionStage({
      schedule: constantSchedule(MS),
      source: new RecordingSource(),
      length: 8,
      time: 'real',
      maxBurst: 3,
    });
    const out: string[] = [];
    const sink: Emit = (p) => out.push(label(p));
    stage.tick(T0, sink);
    stage.tick(T0 + 2n * MS + 1n, sink); // 1 and 2 ms due
    stage.tick(T0 + 10n * MS, sink); // 3…10 due: 3 sent, 5 missed
    expect(out).toEqual([`d@${2n * MS + 1n}`, `d@${2n * MS + 1n}`, ...Array(3).fill(`d@${10n * MS}`)]);
    expect(stage.stats()).toMatchObject({ dummies: 5, missedDummies: 5 });
  });

  it('counts dummies its source refused', () => {
    const refusing: DummySource = { emitDummy: () => {} };
    const stage = new DummyInjectionStage({ schedule: constantSchedule(MS), source: refusing, length: 8 });
    stage.tick(0n, () => {});
    stage.tick(3n * MS, () => {});
    expect(stage.stats()).toMatchObject({ dummies: 0, dummiesRefused: 3, packetsOut: 0 });
  });

  it('refuses incomplete configuration', () => {
    const source = new RecordingSource();
    const schedule = constantSchedule(MS);
    expect(() => constantSchedule(0n)).toThrow(/interval > 0n/);
    expect(() => poissonSchedule(0.5)).toThrow(/mean interval ≥ 1 ns/);
    expect(() => new DummyInjectionStage({ schedule, source })).toThrow(
      /exactly one of length and lengthPolicy/,
    );
    expect(() => new DummyInjectionStage({ schedule, source, length: 1, lengthPolicy: () => 1 })).toThrow(
      /exactly one/,
    );
    expect(() => new DummyInjectionStage({ schedule, source, length: 1.5 })).toThrow(/whole number/);
    expect(() => new DummyInjectionStage({ schedule, source: {} as DummySource, length: 1 })).toThrow(
      /emitDummy/,
    );
  });
});

describe('poissonSchedule', () => {
  it('has exponential gaps with the asked mean (10^4 gaps, seeded: mean within 3%, CV within 5% of 1)', () => {
    const mean = 2_500_000;
    const s = poissonSchedule(mean, seededRandom(2024));
    const gaps = Array.from({ length: 10_000 }, () => Number(s.nextGapNs()));
    const m = gaps.reduce((a, b) => a + b) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - m) ** 2, 0) / (gaps.length - 1));
    expect(Math.abs(m - mean) / mean).toBeLessThan(0.03);
    expect(Math.abs(sd / m - 1)).toBeLessThan(0.05);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1);
    // Memorylessness, roughly: P(gap > mean) = e^-1.
    expect(Math.abs(gaps.filter((g) => g > mean).length / 10_000 - Math.exp(-1))).toBeLessThan(0.02);
  });

  it('drives the stage: dummies at the running sums of the gaps', async () => {
    const expectedGaps = poissonSchedule(MS, seededRandom(5));
    const stage = new DummyInjectionStage({
      schedule: poissonSchedule(MS, seededRandom(5)),
      source: new RecordingSource(),
      length: 0,
    });
    const out = await run(stage, [real(0, T0), real(1, T0 + 200n * MS)]);
    const times: string[] = [];
    for (let t = expectedGaps.nextGapNs(); t <= 200n * MS; t += expectedGaps.nextGapNs())
      times.push(`d@${t}`);
    expect(out).toEqual(['r0@0', ...times, `r1@${200n * MS}`]);
    expect(times.length).toBeGreaterThan(150); // ~200 expected
  });
});

describe('ipv4DummySource', () => {
  it('makes a valid IPv4 packet, protocol 253, with a random payload of the asked length', () => {
    const src = ipv4DummySource({ src: '198.18.0.1', dst: '198.18.0.2' });
    const got: Packet[] = [];
    src.emitDummy(100, 7n, (p) => got.push({ ...p, data: Buffer.from(p.data) }));
    src.emitDummy(100, 8n, (p) => got.push({ ...p, data: Buffer.from(p.data) }));
    src.emitDummy(0, 9n, (p) => got.push({ ...p, data: Buffer.from(p.data) }));
    const [a, b, c] = got as [Packet, Packet, Packet];
    expect(a.link).toBe(228);
    expect(a.ts).toBe(7n);
    expect(a.data.length).toBe(120);
    expect(a.data.readUInt16BE(2)).toBe(120);
    expect(a.data[0]).toBe(0x45);
    expect(a.data[9]).toBe(DUMMY_IP_PROTOCOL);
    expect(a.data.subarray(12, 20)).toEqual(Buffer.from([198, 18, 0, 1, 198, 18, 0, 2]));
    expect(checksumVerifies(a.data, 0, 20)).toBe(true);
    expect(b.data.readUInt16BE(4)).toBe(a.data.readUInt16BE(4) + 1); // IP ID counts up
    expect(a.data.subarray(20)).not.toEqual(b.data.subarray(20));
    expect(c.data.length).toBe(20);
    expect(checksumVerifies(c.data, 0, 20)).toBe(true);
    expect(src.dummies).toBe(3);
    expect(() => src.emitDummy(65_516, 0n, () => {})).toThrow(/0–65515 payload bytes/);
    expect(() => ipv4DummySource({ src: '198.18.0.1', dst: 'nowhere' })).toThrow(/not an IPv4 address/);
  });
});

describe('dummies from the ESP encapsulator', () => {
  it('are ESP that the receiver authenticates and drops as dummy, real packets coming through intact', async () => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
    const encap = new EspEncapStage([tx]);
    const inject = new DummyInjectionStage({
      schedule: constantSchedule(3n * MS),
      source: encap,
      length: 80,
    });
    const inner = Array.from({ length: 10 }, (_, i) =>
      udpPacket({ id: i, payload: Buffer.from(`packet ${i}`) }),
    );
    const wire: Packet[] = [];
    await runStage(
      inner.map((d, i) => rawPacket(d, T0 + BigInt(i) * 4n * MS)),
      pipeline(encap, inject),
      (p) => wire.push({ ...p, data: Buffer.from(p.data) }),
    );
    expect(inject.stats().dummies).toBe(12); // every 3 ms up to 36 ms
    expect(wire.length).toBe(22);
    for (let i = 1; i < wire.length; i++) expect(wire[i]!.ts).toBeGreaterThanOrEqual(wire[i - 1]!.ts);
    expect(wire.every((p) => p.data[9] === 50)).toBe(true); // all ESP on the wire

    const decap = new EspDecapStage([rx]);
    const back: Buffer[] = [];
    for (const p of wire) decap.process(p, (q) => back.push(Buffer.from(q.data)));
    expect(back).toEqual(inner);
    expect(decap.stats().dropped).toEqual({ dummy: 12 });
  });
});
