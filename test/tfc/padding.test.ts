import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Ipv4View } from '../../src/codec/ipv4.js';
import type { Packet } from '../../src/packet.js';
import { fixedSize, PaddingStage, randomPadding, sizeBuckets } from '../../src/tfc/padding.js';
import { seededRandom } from '../../src/tfc/random.js';
import { ipv6Packet, udpPacket } from '../esp/engine-fixtures.js';
import { junk } from '../helpers/bytes.js';

const ETH_HEADER = Buffer.from('02000000000202000000000108 00'.replace(/ /g, ''), 'hex');

/** An Ethernet frame around `ip` in a junk-filled buffer at an odd offset, plus `trailer` bytes after it. */
function ethFrame(ip: Buffer, trailer = 0, etherType = 0x0800): Buffer {
  const backing = junk(3 + 14 + ip.length + trailer + 5);
  const frame = backing.subarray(3, 3 + 14 + ip.length + trailer);
  ETH_HEADER.copy(frame, 0);
  frame.writeUInt16BE(etherType, 12);
  ip.copy(frame, 14);
  frame.fill(0x00, 14 + ip.length); // an Ethernet trailer as a NIC sends it
  return frame;
}

const udp = (payloadBytes: number) => udpPacket({ payload: Buffer.alloc(payloadBytes, 0x5c) });

/** Runs one packet through `stage`; returns a copy of what came out (null when nothing did). */
function pad(stage: PaddingStage, pkt: Packet): Packet | null {
  let out: Packet | null = null;
  stage.process(pkt, (p) => {
    out = { ...p, data: Buffer.from(p.data) };
  });
  return out;
}

describe('padding policies', () => {
  it('fixedSize pads up to n and leaves longer packets alone', () => {
    const p = fixedSize(500);
    expect([1, 499, 500, 501, 1500].map((n) => p.target(n))).toEqual([500, 500, 500, 501, 1500]);
  });

  it('sizeBuckets picks the smallest bucket that holds the packet', () => {
    const p = sizeBuckets([1500, 128, 512, 128]);
    expect([1, 128, 129, 512, 513, 1499, 1500, 1501, 4000].map((n) => p.target(n))).toEqual([
      128, 128, 512, 512, 1500, 1500, 1500, 1501, 4000,
    ]);
    const m = sizeBuckets([128, 512, 1500], { above: 'multiple' });
    expect([1500, 1501, 3000, 3001].map((n) => m.target(n))).toEqual([1500, 3000, 3000, 4500]);
  });

  it('sizeBuckets agrees with a linear scan (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 20_000 }),
        (buckets, length) => {
          const largest = Math.max(...buckets);
          const expected = length > largest ? length : Math.min(...buckets.filter((b) => b >= length));
          expect(sizeBuckets(buckets).target(length)).toBe(expected);
          const multiple = length > largest ? Math.ceil(length / largest) * largest : expected;
          expect(sizeBuckets(buckets, { above: 'multiple' }).target(length)).toBe(multiple);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('randomPadding adds a uniform 0..max bytes', () => {
    const p = randomPadding({ max: 15, random: seededRandom(11) });
    const counts: number[] = new Array(16).fill(0);
    let outside = 0;
    for (let i = 0; i < 16_000; i++) {
      const extra = p.target(100) - 100;
      if (extra >= 0 && extra <= 15 && Number.isInteger(extra)) counts[extra]!++;
      else outside++;
    }
    expect(outside).toBe(0);
    // 1000 expected per value; a fair die stays well within ±15% at this count.
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    expect(randomPadding({ max: 0 }).target(77)).toBe(77);
  });

  it('refuses impossible configurations', () => {
    expect(() => fixedSize(0)).toThrow(/fixedSize must be a positive whole number/);
    expect(() => sizeBuckets([])).toThrow(/at least one bucket/);
    expect(() => sizeBuckets([100, 1.5])).toThrow(/bucket size/);
    expect(() => sizeBuckets([100], { above: 'round' as 'multiple' })).toThrow(/'unchanged' or 'multiple'/);
    expect(() => randomPadding({ max: -1 })).toThrow(/max must be/);
    expect(() => new PaddingStage({} as never)).toThrow(/needs a policy/);
  });
});

describe('PaddingStage', () => {
  it('appends zeros after an IPv4 datagram, leaving the header and every original byte as they were', () => {
    const ip = udp(100); // 128-byte datagram
    const frame = ethFrame(ip);
    const stage = new PaddingStage(fixedSize(300));
    const out = pad(stage, { data: frame, ts: 42n, link: 1, ifIndex: 3 })!;
    expect(out.data.length).toBe(14 + 300);
    expect(out.data.subarray(0, frame.length)).toEqual(frame);
    expect(out.data.subarray(frame.length).every((b) => b === 0)).toBe(true);
    expect(out).toMatchObject({ ts: 42n, link: 1, ifIndex: 3 });
    const v = new Ipv4View();
    expect(v.bind(out.data, 14)).toBeNull();
    expect(v.totalLength).toBe(128);
    expect(v.checksumOk()).toBe(true);
    expect(stage.stats()).toMatchObject({
      packetsIn: 1,
      packetsOut: 1,
      padded: 1,
      ipBytes: 128,
      bytesAdded: 172,
      overhead: 172 / 128,
      dropped: {},
    });
  });

  it('pads raw IPv4 and IPv6 packets by their own length fields', () => {
    const stage = new PaddingStage(sizeBuckets([256, 1024]));
    const v4 = udp(50);
    expect(pad(stage, { data: Buffer.from(v4), ts: 0n, link: 228 })!.data).toEqual(
      Buffer.concat([v4, Buffer.alloc(256 - v4.length)]),
    );
    const v6 = ipv6Packet(300); // 348 bytes
    const out = pad(stage, { data: Buffer.from(v6), ts: 0n, link: 229 })!;
    expect(out.data).toEqual(Buffer.concat([v6, Buffer.alloc(1024 - 348)]));
    expect(out.data.readUInt16BE(4)).toBe(308); // payload length untouched
  });

  it('counts an Ethernet trailer towards the target and keeps it', () => {
    const ip = udp(0); // 28 bytes: a 60-byte minimum frame carries an 18-byte trailer
    const frame = ethFrame(ip, 18);
    frame[14 + 28] = 0x77; // some NICs leave junk in the trailer: it is kept, not rewritten
    const stage = new PaddingStage(fixedSize(64));
    const out = pad(stage, { data: frame, ts: 0n, link: 1 })!;
    expect(out.data.length).toBe(14 + 64);
    expect(out.data.subarray(0, 60)).toEqual(frame);
    expect(out.data.subarray(60).every((b) => b === 0)).toBe(true);
    expect(stage.stats().bytesAdded).toBe(18);
  });

  it('never truncates: a packet at or above its target leaves as it came', () => {
    const stage = new PaddingStage(fixedSize(100));
    const frame = ethFrame(udp(200));
    const pkt: Packet = { data: frame, ts: 1n, link: 1 };
    let seen: Packet | null = null;
    stage.process(pkt, (p) => {
      seen = p;
    });
    expect(seen).toBe(pkt);
    const trailerOnly = ethFrame(udp(0), 18); // region 46 ≥ target 40
    expect(pad(new PaddingStage(fixedSize(40)), { data: trailerOnly, ts: 0n, link: 1 })!.data).toEqual(
      trailerOnly,
    );
    expect(stage.stats()).toMatchObject({ padded: 0, bytesAdded: 0, packetsOut: 1 });
  });

  it('reuses its buffer without leaking an earlier packet into the padding', () => {
    const stage = new PaddingStage(fixedSize(1400));
    const big = udp(1300);
    big.fill(0xee, 28);
    pad(stage, { data: ethFrame(big), ts: 0n, link: 1 });
    const small = udp(10);
    const out = pad(stage, { data: ethFrame(small), ts: 0n, link: 1 })!;
    expect(out.data.subarray(14, 14 + small.length)).toEqual(small);
    expect(out.data.subarray(14 + small.length).every((b) => b === 0)).toBe(true);
  });

  it('passes non-IP frames and drops IP packets it cannot size', () => {
    const stage = new PaddingStage(fixedSize(500));
    const arp = ethFrame(Buffer.alloc(28, 1), 0, 0x0806);
    expect(pad(stage, { data: arp, ts: 0n, link: 1 })!.data).toEqual(arp);
    const lying = udp(20);
    lying.writeUInt16BE(400, 2); // total length beyond the frame
    expect(pad(stage, { data: ethFrame(lying), ts: 0n, link: 1 })).toBeNull();
    const v6InV4 = ethFrame(ipv6Packet(20)); // EtherType IPv4, version 6
    expect(pad(stage, { data: v6InV4, ts: 0n, link: 1 })).toBeNull();
    const cut = ethFrame(udp(100)).subarray(0, 60);
    expect(pad(stage, { data: cut, ts: 0n, link: 1, origLen: 142 })).toBeNull();
    expect(stage.stats()).toMatchObject({
      packetsIn: 4,
      packetsOut: 1,
      passedThrough: 1,
      dropped: { malformed: 2, truncated: 1 },
      ipBytes: 0,
    });
  });

  it('pads any packet to max(target, what the frame carries) with zeros only (property)', () => {
    const stage = new PaddingStage(sizeBuckets([64, 256, 576, 1500], { above: 'multiple' }));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 30 }), (payload, trailer) => {
        const ip = udp(payload);
        const frame = ethFrame(ip, trailer);
        const target = sizeBuckets([64, 256, 576, 1500], { above: 'multiple' }).target(ip.length);
        const out = pad(stage, { data: frame, ts: 0n, link: 1 })!;
        expect(out.data.length).toBe(14 + Math.max(target, ip.length + trailer));
        expect(out.data.subarray(0, frame.length)).toEqual(frame);
        expect(out.data.subarray(frame.length).every((b) => b === 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
