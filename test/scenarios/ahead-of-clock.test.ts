/**
 * AheadOfClock (scenarios/lib/ahead-of-clock.ts): a virtual-time stage driven by the wall clock, a lead
 * ahead of it, one bounded step per tick, held while the sink needs a drain; and the tc arguments of the
 * kernel shaper behind it.
 */
import { describe, expect, it } from 'vitest';
import { AheadOfClock, kernelShaperArgs } from '../../scenarios/lib/ahead-of-clock.js';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { LinkType, type Packet } from '../../src/packet.js';
import type { Emit, Stage } from '../../src/stages/stage.js';
import { emptyStats } from '../../src/stages/stage.js';
import { IptfsEncapStage } from '../../src/tfc/iptfs-stages.js';

const MS = 1_000_000n;
const T0 = 1_700_000_000_000_000_000n;

/** A stage that records the times it is ticked with. */
function recorder(): Stage & { ticks: bigint[] } {
  const ticks: bigint[] = [];
  return {
    name: 'recorder',
    ticks,
    process() {},
    tick(now: bigint) {
      ticks.push(now);
    },
    stats: emptyStats,
  };
}

const none: Emit = () => {};

describe('AheadOfClock', () => {
  it('starts the stage at the real time, then runs it the lead ahead, at most maxStep further per tick', () => {
    const inner = recorder();
    const ahead = new AheadOfClock(inner, 20n * MS, { maxStepNs: 5n * MS });
    for (let i = 0; i <= 8; i++) ahead.tick(T0 + BigInt(i) * MS, none);
    // 0, then +5 ms per tick until now + 20 ms is reached at the 6th tick, then now + 20 ms.
    expect(inner.ticks.map((t) => Number((t - T0) / MS))).toEqual([0, 5, 10, 15, 20, 25, 26, 27, 28]);
    expect(ahead.stats().behindNs).toBe(0);
    // A 50 ms stall: caught up by maxStep per tick, behind meanwhile.
    ahead.tick(T0 + 58n * MS, none);
    expect(inner.ticks.at(-1)).toBe(T0 + 33n * MS);
    expect(ahead.stats().behindNs).toBe(Number(45n * MS));
  });

  it('never moves the stage back, and holds it while the downstream needs a drain', () => {
    const inner = recorder();
    const downstream = { needsDrain: false, drain: () => Promise.resolve() };
    const ahead = new AheadOfClock(inner, MS, { downstream, maxStepNs: 10n * MS });
    ahead.tick(T0, none);
    ahead.tick(T0 + 5n * MS, none);
    ahead.tick(T0 + 2n * MS, none); // a clock that stepped back: the stage stays where it was
    expect(inner.ticks).toEqual([T0, T0 + 6n * MS, T0 + 6n * MS]);
    downstream.needsDrain = true;
    ahead.tick(T0 + 7n * MS, none);
    ahead.tick(T0 + 8n * MS, none);
    expect(inner.ticks).toHaveLength(3);
    expect(ahead.stats().heldTicks).toBe(2);
    downstream.needsDrain = false;
    ahead.tick(T0 + 9n * MS, none);
    expect(inner.ticks.at(-1)).toBe(T0 + 10n * MS);
  });

  it('refuses a stage without tick() and a negative lead or step, saying so', () => {
    const noTick: Stage = { name: 'plain', process() {}, stats: emptyStats };
    expect(() => new AheadOfClock(noTick, MS)).toThrow(/plain has no tick/);
    expect(() => new AheadOfClock(recorder(), -1n)).toThrow(/lead must be ≥ 0/);
    expect(() => new AheadOfClock(recorder(), MS, { maxStepNs: 0n })).toThrow(/maxStepNs must be > 0/);
  });

  it('drives IP-TFS in virtual time: every slot sent once, in order, exact, at most the lead early', () => {
    const sa = new SecurityAssociation({
      spi: 0x100,
      mode: 'iptfs',
      suite: 'chacha20-poly1305',
      encKey: new Uint8Array(36).fill(7),
      tunnel: { src: '198.18.21.1', dst: '198.18.21.3' },
    });
    // 1000-byte outer packets at 8 Mbit/s: a slot every 1 ms.
    const encap = new IptfsEncapStage(sa, {
      packetSize: 1000,
      mode: { kind: 'fixed-rate', bitsPerSecond: 8e6 },
    });
    const lead = 20n * MS;
    const ahead = new AheadOfClock(encap, lead);
    const sent: { ts: bigint; at: bigint; length: number }[] = [];
    let now = T0;
    const emit: Emit = (pkt: Packet) => sent.push({ ts: pkt.ts, at: now, length: pkt.data.length });
    // Ticks about 1.1 ms apart with a 30 ms stall, and an inner packet on the way.
    for (let i = 0; i < 400; i++) {
      now += i === 200 ? 30n * MS : 1_100_000n;
      if (i === 100) {
        const inner = Buffer.alloc(200);
        inner[0] = 0x45;
        inner.writeUInt16BE(200, 2);
        ahead.process({ data: inner, ts: now, link: LinkType.IPV4 }, emit);
      }
      ahead.tick(now, emit);
    }
    expect(sent.length).toBeGreaterThan(400);
    sent.forEach((p, k) => {
      expect(p.ts).toBe(T0 + 1_100_000n + BigInt(k) * MS); // the schedule starts at the first tick
      expect(p.ts - p.at).toBeLessThanOrEqual(lead); // never handed over more than the lead early
      expect(p.length).toBe(1000);
    });
    const stats = ahead.stats();
    expect(stats.innerPackets).toBe(1);
    expect(stats.missedSlots).toBe(0);
    expect(stats.behindNs).toBe(0); // caught up after the stall
  });
});

describe('kernelShaperArgs', () => {
  it('is a tbf at the frame rate, a bucket under two frames, a queue of whole frames', () => {
    expect(kernelShaperArgs('veth0', 1014, 1000, 500)).toEqual([
      ...['qdisc', 'replace', 'dev', 'veth0', 'root', 'tbf'],
      ...['rate', '8112000bit', 'burst', '2027', 'limit', '507000'],
    ]);
    // 1414-byte frames at 100 Mbit/s of 1400-byte packets: 8928.57… frames/s, rounded to whole bits.
    expect(kernelShaperArgs('v', 1414, 1e8 / 11200, 10)[7]).toBe('101000000bit');
  });
});
