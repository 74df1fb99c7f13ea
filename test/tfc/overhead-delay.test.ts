/**
 * What a TFC transform costs, on traces with known answers: overhead (bytes, packets, bit rates over each
 * capture's span) and added delay, matching the packets before the transform to those delivered by their
 * IP bytes with TTL and header checksum ignored, counting the unmatched on both sides; and the matcher
 * and fingerprint under it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PacketParser } from '../../src/codec/parser.js';
import { LinkType } from '../../src/packet.js';
import { analyzeCapture } from '../../src/tfc/analysis/analyze-capture.js';
import { DelayMatcher } from '../../src/tfc/analysis/delay-matcher.js';
import { fingerprintIpPacket } from '../../src/tfc/analysis/ip-packet-hash.js';
import { at, esp4, ether, packet, udp4, udp6, writePcap } from './analysis-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'pktveil-costs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fingerprint(data: Buffer, link: number = LinkType.IPV4): string | null {
  const parser = new PacketParser();
  parser.parse(data, link);
  const out = new Uint32Array(2);
  return fingerprintIpPacket(parser, out) ? `${out[0]}:${out[1]}` : null;
}

function nearestRank(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

describe('IP packet fingerprint', () => {
  it('ignores what forwarding changes (TTL, header checksum) and the link layer around the packet', () => {
    const sent = udp4({ payload: 100, ttl: 64, tag: 5 });
    const forwarded = udp4({ payload: 100, ttl: 61, tag: 5 });
    expect(forwarded.readUInt16BE(10)).not.toBe(sent.readUInt16BE(10)); // the checksum did change
    expect(fingerprint(forwarded)).toBe(fingerprint(sent));
    expect(fingerprint(ether(sent), LinkType.ETHERNET)).toBe(fingerprint(sent));
    // Ethernet padding after a short packet is not part of it.
    const padded = Buffer.concat([ether(udp4({ tag: 5 })), Buffer.alloc(18)]);
    expect(fingerprint(padded, LinkType.ETHERNET)).toBe(fingerprint(udp4({ tag: 5 })));
  });

  it('tells apart packets differing in any other byte', () => {
    const base = udp4({ payload: 37, tag: 1 });
    const seen = new Set([fingerprint(base)]);
    for (let i = 0; i < base.length; i++) {
      if (i === 8 || i === 10 || i === 11) continue; // TTL and checksum
      const changed = Buffer.from(base);
      changed[i]! ^= 0x01;
      seen.add(fingerprint(changed));
    }
    expect(seen.size).toBe(base.length - 3 + 1 - 1); // every change gives a new fingerprint…
    expect(seen.has(null)).toBe(true); // …except where the change makes the header undecodable
  });

  it('ignores the IPv6 hop limit alone', () => {
    const a = udp6({ src: '2001:db8::1', dst: '2001:db8::2', srcPort: 1, dstPort: 2, payload: 10 });
    const b = Buffer.from(a);
    b[7] = 3;
    expect(fingerprint(b, LinkType.RAW)).toBe(fingerprint(a, LinkType.RAW));
    b[6] = 59;
    expect(fingerprint(b, LinkType.RAW)).not.toBe(fingerprint(a, LinkType.RAW));
  });

  it('has none for frames without IP', () => {
    expect(fingerprint(Buffer.alloc(60), LinkType.ETHERNET)).toBeNull();
  });
});

describe('DelayMatcher', () => {
  it('pairs identical packets first sent with first delivered, and counts what stays unpaired', () => {
    const m = new DelayMatcher(10e9);
    m.sent(1, 2, 0);
    m.sent(1, 2, 10);
    m.sent(3, 4, 20);
    expect(m.delivered(1, 2, 15)).toBe(15);
    expect(m.delivered(1, 2, 16)).toBe(6);
    expect(m.delivered(1, 2, 17)).toBe(-1);
    expect(m.delivered(1, 99, 18)).toBe(-1); // same first hash, different second: no pair
    m.finish();
    expect([m.matched, m.unmatchedSent, m.unmatchedDelivered]).toEqual([2, 1, 2]);
  });

  it('gives up on a sent packet after the horizon', () => {
    const m = new DelayMatcher(100);
    m.sent(7, 7, 0);
    m.sent(8, 8, 50);
    m.expire(120);
    expect(m.pending).toBe(1);
    expect(m.delivered(7, 7, 120)).toBe(-1);
    expect(m.delivered(8, 8, 120)).toBe(70);
    expect([m.matched, m.unmatchedSent, m.unmatchedDelivered]).toEqual([1, 1, 1]);
  });

  it('holds many packets in flight, delivered in any order (ring growth, index rebuilds)', () => {
    const m = new DelayMatcher(1e12);
    const n = 20_000;
    for (let i = 0; i < n; i++) m.sent(i * 2654435761, i, i);
    for (let i = n - 1; i >= 0; i--) expect(m.delivered(i * 2654435761, i, n + i)).toBe(n);
    expect(m.pending).toBe(0);
    m.finish();
    expect([m.matched, m.unmatchedSent, m.unmatchedDelivered]).toEqual([n, 0, 0]);
  });

  it('matches every delivered packet to its own send, whatever the reordering (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 1000 })), {
          minLength: 1,
          maxLength: 300,
        }),
        fc.integer({ min: 0, max: 600 }), // past the end: nothing lost
        (items, lost) => {
          // Packet i (fingerprint class c, so duplicates abound) is sent at 10·i and delivered after d.
          const m = new DelayMatcher(1e9);
          const deliveries = items
            .map(([c, d], i) => ({ c, sentAt: 10 * i, at: 10 * i + d, i }))
            .filter((x) => x.i !== lost)
            .sort((a, b) => a.at - b.at || a.i - b.i);
          let next = 0;
          let delaySum = 0;
          for (const x of deliveries) {
            while (next < items.length && 10 * next <= x.at) {
              m.sent(items[next]![0], 0, 10 * next);
              next++;
            }
            const delay = m.delivered(x.c, 0, x.at);
            expect(delay).toBeGreaterThanOrEqual(0);
            delaySum += delay;
          }
          for (; next < items.length; next++) m.sent(items[next]![0], 0, 10 * next);
          m.finish();
          expect(m.matched).toBe(deliveries.length);
          expect(m.unmatchedSent).toBe(items.length - deliveries.length);
          // Without loss, pairing within a class may swap partners but the delays add up to the true total
          // (a lost packet among identical ones makes the pairing ambiguous: first sent, first delivered).
          if (lost >= items.length)
            expect(delaySum).toBe(deliveries.reduce((a, x) => a + x.at - x.sentAt, 0));
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });
});

describe('overhead and added delay of a capture pair', () => {
  // PLAIN: 100 UDP packets of 128 bytes every 10 ms.
  const N = 100;
  const plain = Array.from({ length: N }, (_, i) => ({
    data: udp4({ payload: 100, id: i, tag: i }),
    ms: 10 * i,
  }));
  // After a forwarding TFC stage: packet i leaves (i mod 10) + 1 ms later with TTL 63; three are lost;
  // 20 dummies of the same size are added at 5 ms past each 50 ms.
  const lost = new Set([7, 42, 99]);
  const delayMs = (i: number) => (i % 10) + 1;
  const after = [
    ...plain
      .map((p, i) => ({ data: udp4({ payload: 100, id: i, tag: i, ttl: 63 }), ms: p.ms + delayMs(i), i }))
      .filter((p) => !lost.has(p.i)),
    ...Array.from({ length: 20 }, (_, k) => ({
      data: udp4({ payload: 100, dstPort: 9, tag: 1000 + k }),
      ms: 50 * k + 5,
    })),
  ].sort((a, b) => a.ms - b.ms);
  const delays = plain
    .map((_, i) => i)
    .filter((i) => !lost.has(i))
    .map((i) => delayMs(i) * 1e-3);

  it('match the forwarded packets in FILE itself: counts, exact delays, overhead', async () => {
    const plainFile = join(dir, 'plain.pcap');
    const afterFile = join(dir, 'after.pcap');
    await writePcap(
      plainFile,
      plain.map((p) => packet(p.data, at(p.ms))),
    );
    await writePcap(
      afterFile,
      after.map((p) => packet(p.data, at(p.ms))),
    );
    const r = await analyzeCapture(afterFile, { before: plainFile });
    expect(r.delay).toMatchObject({
      deliveredFile: afterFile,
      matched: 97,
      unmatchedBefore: 3,
      unmatchedDelivered: 20,
      notIpBefore: 0,
      notIpDelivered: 0,
      horizonSeconds: 10,
      count: 97,
      minSeconds: 0.001,
      maxSeconds: 0.01,
    });
    const d = r.delay!;
    expect(d.meanSeconds).toBeCloseTo(delays.reduce((a, b) => a + b) / delays.length, 12);
    // One delay per millisecond from 1 to 10: every bucket holds one value, so percentiles are exact.
    expect(d.percentilesSeconds!.p50).toBeCloseTo(nearestRank(delays, 0.5), 12);
    expect(d.percentilesSeconds!.p99).toBeCloseTo(nearestRank(delays, 0.99), 12);
    expect(d.histogram.bins.filter((b) => b.count > 0)).toEqual([
      { lo: 0.001, hi: 0.002, count: 10 },
      { lo: 0.002, hi: 0.005, count: 29 },
      { lo: 0.005, hi: 0.01, count: 49 }, // 5–9 ms, packet 7 (8 ms) lost
      { lo: 0.01, hi: 0.02, count: 9 }, // 10 ms, packet 99 lost
    ]);
    const spanAfter = (after.at(-1)!.ms - after[0]!.ms) / 1e3;
    expect(r.overhead).toEqual({
      before: {
        packets: 100,
        bytes: 12_800,
        firstTs: '1700000000.000000000',
        lastTs: '1700000000.990000000',
        durationSeconds: 0.99,
        bitsPerSecond: (12_800 * 8) / 0.99,
        packetsPerSecond: 100 / 0.99,
      },
      after: {
        packets: 117,
        bytes: 117 * 128,
        firstTs: '1700000000.001000000',
        lastTs: '1700000000.989000000', // packet 98 (99 is lost)
        durationSeconds: spanAfter,
        bitsPerSecond: (117 * 128 * 8) / spanAfter,
        packetsPerSecond: 117 / spanAfter,
      },
      bytesRatio: 1.17,
      packetsRatio: 1.17,
      extraBytes: 17 * 128,
      extraPackets: 17,
      extraBitsPerSecond: (117 * 128 * 8) / spanAfter - (12_800 * 8) / 0.99,
    });
  });

  it('match in --delivered when FILE is encrypted: FILE gives the overhead, the delivered capture the delay', async () => {
    const plainFile = join(dir, 'plain2.pcap');
    const tunnelFile = join(dir, 'tunnel.pcap');
    const deliveredFile = join(dir, 'delivered.pcap');
    await writePcap(
      plainFile,
      plain.map((p) => packet(p.data, at(p.ms))),
    );
    // The tunnel: 200 ESP packets of 300 bytes every 5 ms (constant rate, padded), from 1 ms.
    await writePcap(
      tunnelFile,
      Array.from({ length: 200 }, (_, k) =>
        packet(esp4({ spi: 0x100, seq: k + 1, payload: 272 }), at(1 + 5 * k)),
      ),
    );
    // Decapsulated on the far side, over Ethernet, each 2.5 ms after it was sent, TTL 63.
    await writePcap(
      deliveredFile,
      plain.map((p, i) =>
        packet(ether(udp4({ payload: 100, id: i, tag: i, ttl: 63 })), at(p.ms + 2.5), LinkType.ETHERNET),
      ),
      LinkType.ETHERNET,
    );
    const r = await analyzeCapture(tunnelFile, { before: plainFile, delivered: deliveredFile });
    expect(r.delay).toMatchObject({
      deliveredFile,
      matched: 100,
      unmatchedBefore: 0,
      unmatchedDelivered: 0,
      minSeconds: 0.0025,
      maxSeconds: 0.0025,
      percentilesSeconds: { p1: 0.0025, p50: 0.0025, p99: 0.0025 },
    });
    expect(r.overhead).toMatchObject({
      bytesRatio: (200 * 300) / 12_800,
      packetsRatio: 2,
      extraBytes: 60_000 - 12_800,
    });
    expect(r.overhead!.after.durationSeconds).toBeCloseTo(0.995, 12);
    // Without --delivered, nothing of the encrypted tunnel matches, and the report says so in numbers.
    const alone = await analyzeCapture(tunnelFile, { before: plainFile });
    expect(alone.delay).toMatchObject({
      matched: 0,
      unmatchedBefore: 100,
      unmatchedDelivered: 200,
      count: 0,
    });
    expect(alone.delay!.meanSeconds).toBeNull();
  });

  it('counts a packet delivered later than the horizon as lost', async () => {
    const plainFile = join(dir, 'plain3.pcap');
    const lateFile = join(dir, 'late.pcap');
    const one = udp4({ payload: 4, tag: 1 });
    const two = udp4({ payload: 4, tag: 2 });
    await writePcap(plainFile, [packet(one, at(0)), packet(two, at(1))]);
    await writePcap(lateFile, [packet(two, at(2)), packet(one, at(15_000))]);
    const r = await analyzeCapture(lateFile, { before: plainFile, delayHorizonNs: 10e9 });
    expect(r.delay).toMatchObject({
      matched: 1,
      unmatchedBefore: 1,
      unmatchedDelivered: 1,
      maxSeconds: 0.001,
    });
    const patient = await analyzeCapture(lateFile, { before: plainFile, delayHorizonNs: 20e9 });
    expect(patient.delay).toMatchObject({ matched: 2, maxSeconds: 15 });
  });

  it('names the capture it could not read', async () => {
    const good = join(dir, 'good.pcap');
    await writePcap(good, [packet(udp4(), at(0))]);
    await expect(analyzeCapture(good, { before: join(dir, 'missing.pcap') })).rejects.toThrow(
      /^before capture .*missing\.pcap: ENOENT/,
    );
    await expect(analyzeCapture(good, { before: good, delivered: join(dir, 'nope.pcap') })).rejects.toThrow(
      /^delivered capture .*nope\.pcap: ENOENT/,
    );
    await expect(analyzeCapture(good, { delivered: good })).rejects.toThrow(/needs the capture before/);
  });
});
