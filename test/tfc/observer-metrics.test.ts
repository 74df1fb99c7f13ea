/**
 * What an observer learns, on hand-built traces with known answers: exact size histograms, distinct and
 * top sizes, gap statistics (CV, nearest-rank percentiles within the sketch's 0.05%), volume bins (chosen
 * and given), per-flow rows for every kind of flow key, and the bounded building blocks under them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { PacketParser } from '../../src/codec/parser.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { analyzeCapture } from '../../src/tfc/analysis/analyze-capture.js';
import { BinnedHistogram, gapEdgesNs, packetSizeEdges } from '../../src/tfc/analysis/histogram.js';
import { ObserverMetrics } from '../../src/tfc/analysis/observer-metrics.js';
import { bucketBounds, bucketIndex, QuantileSketch } from '../../src/tfc/analysis/quantile-sketch.js';
import { RunningStats } from '../../src/tfc/analysis/running-stats.js';
import { MAX_AUTO_BINS, VolumeSeries } from '../../src/tfc/analysis/volume-series.js';
import {
  anon4,
  arpFrame,
  at,
  esp4,
  ether,
  nattEsp4,
  packet,
  T0,
  tcp4,
  udp4,
  udp6,
  udpFragment4,
  writePcap,
} from './analysis-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'pktveil-observer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs packets through ObserverMetrics as analyze does (origin: the first packet). */
function observe(packets: Packet[], options = {}) {
  const parser = new PacketParser();
  const metrics = new ObserverMetrics(options);
  const t0 = packets[0]?.ts ?? null;
  for (const p of packets) {
    parser.parsePacket(p);
    metrics.add(parser, Number(p.ts - t0!), p.data.length);
  }
  return metrics.report(t0);
}

function populationStddev(xs: number[]): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
}

/** Nearest-rank percentile of a list, the definition the sketch approximates. */
function nearestRank(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(p * sorted.length)) - 1]!;
}

// Six raw IPv4 packets 10 ms apart: sizes 28, 60, 60, 100, 1500, 1600.
const SIZES = [28, 60, 60, 100, 1500, 1600];
const sixPackets = () => SIZES.map((size, i) => packet(udp4({ payload: size - 28, tag: i }), at(10 * i)));

describe('sizes', () => {
  it('puts each size in its documented 32-byte bin, the last bin open from 1536', () => {
    const r = observe(sixPackets());
    expect(r.sizes.histogram.binBytes).toBe(32);
    expect(r.sizes.histogram.bins).toHaveLength(49);
    expect(r.sizes.histogram.bins[0]).toEqual({ lo: 0, hi: 32, count: 1 });
    expect(r.sizes.histogram.bins.at(-1)).toEqual({ lo: 1536, hi: null, count: 1 });
    const nonEmpty = r.sizes.histogram.bins.filter((b) => b.count > 0);
    expect(nonEmpty).toEqual([
      { lo: 0, hi: 32, count: 1 },
      { lo: 32, hi: 64, count: 2 },
      { lo: 96, hi: 128, count: 1 },
      { lo: 1472, hi: 1504, count: 1 },
      { lo: 1536, hi: null, count: 1 },
    ]);
  });

  it('gives mean, population stddev, extremes, distinct sizes and the most common ones', () => {
    const r = observe(sixPackets());
    expect(r.packets).toBe(6);
    expect(r.bytes).toBe(3348);
    expect(r.sizes.mean).toBe(558);
    expect(r.sizes.stddev).toBeCloseTo(populationStddev(SIZES), 9);
    expect(r.sizes.min).toBe(28);
    expect(r.sizes.max).toBe(1600);
    expect(r.sizes.distinct).toBe(5);
    expect(r.sizes.top.slice(0, 3)).toEqual([
      { size: 60, packets: 2, share: 2 / 6 },
      { size: 28, packets: 1, share: 1 / 6 },
      { size: 100, packets: 1, share: 1 / 6 },
    ]);
  });

  it('counts sizes beyond 64 KiB (offloaded super-packets) as sizes too', () => {
    const counts = observe([packet(udp4({ payload: 100 }), at(0)), packet(udp4({ payload: 100 }), at(1))]);
    expect(counts.sizes.distinct).toBe(1);
    const histogram = new BinnedHistogram(packetSizeEdges());
    histogram.add(70_000);
    expect(histogram.bins().at(-1)?.count).toBe(1);
  });
});

describe('timing', () => {
  it('constant gaps: CV 0 and every percentile the gap itself', () => {
    const r = observe(sixPackets());
    expect(r.durationSeconds).toBeCloseTo(0.05, 12);
    expect(r.timing.count).toBe(5);
    expect(r.timing.meanSeconds).toBeCloseTo(0.01, 12);
    expect(r.timing.cv).toBe(0);
    expect(r.timing.percentilesSeconds).toEqual({
      p1: 0.01,
      p5: 0.01,
      p25: 0.01,
      p50: 0.01,
      p75: 0.01,
      p95: 0.01,
      p99: 0.01,
    });
    const bins = r.timing.histogram.bins.filter((b) => b.count > 0);
    expect(bins).toEqual([{ lo: 0.01, hi: 0.02, count: 5 }]);
  });

  it('gaps 1, 1, 2, 4 ms: mean 2 ms, CV sqrt(1.5)/2, nearest-rank percentiles, 1-2-5 bins', () => {
    const times = [0, 1, 2, 4, 8];
    const r = observe(times.map((ms, i) => packet(udp4({ tag: i }), at(ms))));
    expect(r.timing.count).toBe(4);
    expect(r.timing.meanSeconds).toBeCloseTo(0.002, 12);
    expect(r.timing.stddevSeconds).toBeCloseTo(Math.sqrt(1.5) * 1e-3, 12);
    expect(r.timing.cv).toBeCloseTo(Math.sqrt(1.5) / 2, 12);
    expect(r.timing.minSeconds).toBeCloseTo(0.001, 12);
    expect(r.timing.maxSeconds).toBeCloseTo(0.004, 12);
    const p = r.timing.percentilesSeconds!;
    // Each bucket holds one distinct gap here, so the percentiles are exact.
    expect(p.p25).toBe(0.001);
    expect(p.p50).toBe(0.001);
    expect(p.p75).toBe(0.002);
    expect(p.p99).toBe(0.004);
    expect(r.timing.histogram.bins.filter((b) => b.count > 0)).toEqual([
      { lo: 0.001, hi: 0.002, count: 2 },
      { lo: 0.002, hi: 0.005, count: 2 },
    ]);
  });

  it('leaves negative gaps (timestamps going back) out and counts them', () => {
    const r = observe([0, 10, 5, 20].map((ms, i) => packet(udp4({ tag: i }), at(ms))));
    expect(r.timing.outOfOrder).toBe(1);
    expect(r.timing.count).toBe(2);
    expect(r.timing.meanSeconds).toBeCloseTo(0.0125, 12); // gaps 10 and 15 ms
    expect(r.durationSeconds).toBeCloseTo(0.02, 12);
  });

  it('has the 1-2-5 gap bins from 1 µs to 10 s that --help documents', () => {
    const edges = gapEdgesNs();
    expect(edges.slice(0, 5)).toEqual([0, 1e3, 2e3, 5e3, 1e4]);
    expect(edges.at(-1)).toBe(1e10);
    expect(edges).toHaveLength(23);
  });
});

describe('volume over time', () => {
  it('chooses 1 ms bins for a 50 ms capture', () => {
    const r = observe(sixPackets());
    expect(r.volume.binSeconds).toBe(0.001);
    expect(r.volume.start).toBe('1700000000.000000000');
    expect(r.volume.bytes).toHaveLength(51);
    expect(r.volume.bytes.filter((b) => b > 0)).toEqual(SIZES);
    expect(r.volume.bytes[10]).toBe(60);
    expect(r.volume.packets.reduce((a, b) => a + b)).toBe(6);
  });

  it('uses a given width (--bin-ms 20)', () => {
    const r = observe(sixPackets(), { volumeBinNs: 20e6 });
    expect(r.volume.binSeconds).toBe(0.02);
    expect(r.volume.bytes).toEqual([88, 160, 3100]);
    expect(r.volume.packets).toEqual([2, 2, 2]);
  });

  it('widens along 1, 2, 10, 20, 100 ms … as the capture grows, keeping every byte in its bin', () => {
    const v = new VolumeSeries();
    v.add(0, 1);
    v.add(2.4999e9, 2); // needs 2500 bins of 1 ms: 1 → 2 → 10 ms
    const s = v.series();
    expect(s.binNs).toBe(10e6);
    expect(s.bytes).toHaveLength(250);
    expect(s.bytes[0]).toBe(1);
    expect(s.bytes[249]).toBe(2);
    v.add(99e9, 4); // 100 s: 200 ms bins
    expect(v.series().binNs).toBe(200e6);
  });

  it('agrees with direct binning at its final width, whatever the order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3_000_000_000 }), fc.integer({ min: 1, max: 1500 })), {
          minLength: 1,
          maxLength: 200,
        }),
        (items) => {
          const v = new VolumeSeries();
          for (const [t, size] of items) v.add(t, size);
          const s = v.series();
          expect(s.bytes.length).toBeLessThanOrEqual(MAX_AUTO_BINS);
          const expected = new Array<number>(s.bytes.length).fill(0);
          for (const [t, size] of items) expected[Math.floor(t / s.binNs)]! += size;
          expect(s.bytes).toEqual(expected);
          expect(s.packets.reduce((a, b) => a + b)).toBe(items.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a given width that would need more than a million bins', () => {
    const v = new VolumeSeries(1e6);
    expect(() => v.add(2e15, 1)).toThrow(/more than 1000000 volume bins of 1 ms: choose a wider bin/);
  });
});

describe('flows', () => {
  // Ethernet frames, so non-IP (ARP) frames fit in the same capture.
  const frames: [Buffer, number][] = [
    [ether(tcp4({ src: '198.18.0.1', dst: '198.18.0.2', srcPort: 40000, dstPort: 443, payload: 100 })), 0],
    [ether(tcp4({ src: '198.18.0.2', dst: '198.18.0.1', srcPort: 443, dstPort: 40000, payload: 1400 })), 10],
    [ether(tcp4({ src: '198.18.0.1', dst: '198.18.0.2', srcPort: 40000, dstPort: 443, payload: 0 })), 30],
    [ether(tcp4({ src: '198.18.0.1', dst: '198.18.0.2', srcPort: 40000, dstPort: 443, payload: 300 })), 70],
    [ether(esp4({ src: '198.18.0.1', dst: '198.18.0.9', spi: 0xa5f8, payload: 64 })), 1],
    [ether(esp4({ src: '198.18.0.1', dst: '198.18.0.9', spi: 0xa5f9, payload: 64 })), 2],
    [ether(nattEsp4({ src: '198.18.0.1', dst: '198.18.0.9', spi: 0x1000, srcPort: 4500, payload: 64 })), 3],
    [ether(anon4({ src: '198.18.255.255', dst: '198.18.0.9', sid: 0x0011223344556677n, transport: 8 })), 4],
    [ether(udpFragment4({ src: '198.18.0.1', dst: '198.18.0.2', bytes: 80, fragOffset: 185 })), 5],
    [
      ether(
        udp6({ src: '2001:db8::1', dst: '2001:db8::2', srcPort: 5353, dstPort: 5353, payload: 12 }),
        0x86dd,
      ),
      6,
    ],
    [arpFrame(), 7],
    [arpFrame(), 8],
  ];
  const packets = () =>
    frames.map(([data, ms]) => packet(data, at(ms), LinkType.ETHERNET)).sort((a, b) => Number(a.ts - b.ts));

  it('keys each flow by what the wire shows in clear and sums it', () => {
    const r = observe(packets());
    expect(r.flows.count).toBe(9);
    const find = (pred: (f: (typeof r.flows.top)[number]) => boolean) => r.flows.top.filter(pred);
    const up = find((f) => f.protocol === 6 && f.srcPort === 40000);
    expect(up).toHaveLength(1);
    expect(up[0]).toEqual({
      network: 'ipv4',
      src: '198.18.0.1',
      dst: '198.18.0.2',
      protocol: 6,
      srcPort: 40000,
      dstPort: 443,
      packets: 3,
      bytes: 154 + 54 + 354,
      firstTs: '1700000000.000000000',
      lastTs: '1700000000.070000000',
      durationSeconds: 0.07,
      size: { mean: expect.closeTo(562 / 3, 9), stddev: populationStddev([154, 54, 354]), min: 54, max: 354 },
      gap: {
        meanSeconds: 0.035,
        stddevSeconds: 0.005,
        cv: 0.005 / 0.035,
        minSeconds: 0.03,
        maxSeconds: 0.04,
      },
    });
    expect(find((f) => f.spi !== undefined && f.protocol === 50).map((f) => f.spi)).toEqual([
      '0x0000a5f8',
      '0x0000a5f9',
    ]);
    expect(find((f) => f.spi === '0x00001000')).toMatchObject([
      { protocol: 17, srcPort: 4500, dstPort: 4500, packets: 1, bytes: 14 + 36 + 64 },
    ]);
    expect(find((f) => f.sid !== undefined)).toMatchObject([
      { src: '198.18.255.255', protocol: 253, sid: '0011223344556677', packets: 1 },
    ]);
    // A non-first fragment shows no ports: it keys on addresses and protocol.
    expect(find((f) => f.protocol === 17 && f.srcPort === undefined && f.network === 'ipv4')).toMatchObject([
      { src: '198.18.0.1', dst: '198.18.0.2', packets: 1, bytes: 14 + 20 + 80 },
    ]);
    expect(find((f) => f.network === 'ipv6')).toMatchObject([
      { src: '2001:db8::1', dst: '2001:db8::2', protocol: 17, srcPort: 5353, dstPort: 5353, bytes: 14 + 60 },
    ]);
    expect(find((f) => f.network === 'other')).toMatchObject([
      { etherType: 0x0806, packets: 2, bytes: 84, gap: { meanSeconds: 0.001 } },
    ]);
  });

  it('lists the flows with the most bytes first and as many as asked', () => {
    const r = observe(packets(), { topFlows: 3 });
    expect(r.flows.top.map((f) => f.bytes)).toEqual([1454, 562, 14 + 36 + 64]);
    const rows = observe(packets()).flows.top.map((f) => f.bytes);
    expect(rows).toEqual([...rows].sort((a, b) => b - a));
  });

  it('counts flows beyond the table limit as untracked, not as new rows', () => {
    const r = observe(packets(), { maxFlows: 2 });
    expect(r.flows.count).toBe(2);
    expect(r.flows.top).toHaveLength(2);
    expect(r.flows.untracked.packets + r.flows.top.reduce((a, f) => a + f.packets, 0)).toBe(12);
    expect(r.flows.untracked.bytes + r.flows.top.reduce((a, f) => a + f.bytes, 0)).toBe(r.bytes);
  });

  it('tells apart many flows through its hash table (growth and rehash)', () => {
    const many = Array.from({ length: 3000 }, (_, i) =>
      packet(udp4({ srcPort: 1024 + (i % 1500), dstPort: 53, payload: i % 1500 === 7 ? 100 : 0 }), at(i)),
    );
    const r = observe(many, { topFlows: 1 });
    expect(r.flows.count).toBe(1500);
    expect(r.flows.top[0]).toMatchObject({ srcPort: 1031, packets: 2, bytes: 256 });
  });
});

describe('a capture file end to end', () => {
  it('reads a pcap of any link type and reports the same as the metrics', async () => {
    const file = join(dir, 'six.pcap');
    await writePcap(file, sixPackets());
    const r = await analyzeCapture(file);
    expect(r).toMatchObject({
      file,
      packets: 6,
      bytes: 3348,
      firstTs: '1700000000.000000000',
      lastTs: '1700000000.050000000',
    });
    expect(r.durationSeconds).toBeCloseTo(0.05, 12);
    expect(r.classifier).toBeUndefined();
    expect(r.overhead).toBeUndefined();
    expect(r.delay).toBeUndefined();
  });

  it('reports an empty capture as empty, not as an error', async () => {
    const file = join(dir, 'empty.pcap');
    await writePcap(file, []);
    const r = await analyzeCapture(file);
    expect(r.packets).toBe(0);
    expect(r.durationSeconds).toBe(0);
    expect(r.firstTs).toBeNull();
    expect(r.timing.percentilesSeconds).toBeNull();
    expect(r.volume.bytes).toEqual([]);
  });

  it('counts timestamps relative to the first packet exactly, far from the epoch', async () => {
    const file = join(dir, 'late.pcap');
    const late = 4_000_000_000_123_456_789n; // year 2096: beyond 2^53 ns, so no float would do
    await writePcap(file, [packet(udp4(), late), packet(udp4({ tag: 1 }), late + 1n)]);
    const r = await analyzeCapture(file);
    expect(r.firstTs).toBe('4000000000.123456789');
    expect(r.lastTs).toBe('4000000000.123456790');
    expect(r.timing.minSeconds).toBe(1e-9);
  });
});

describe('building blocks', () => {
  it('RunningStats: population variance, CV, and nulls when empty', () => {
    const s = new RunningStats();
    expect(s.summary()).toEqual({ count: 0, mean: null, stddev: null, min: null, max: null });
    for (const x of [2, 4, 4, 4, 5, 5, 7, 9]) s.add(x);
    expect(s.mean).toBe(5);
    expect(s.stddev).toBe(2);
    expect(s.cv).toBe(0.4);
    expect(s.summary(0.1)).toEqual({ count: 8, mean: 50, stddev: 20, min: 20, max: 90 });
  });

  it('QuantileSketch buckets: exact below 2048, 1024 per power of two above', () => {
    expect(bucketIndex(2047)).toBe(2047);
    expect(bucketBounds(bucketIndex(2048))).toEqual({ lo: 2048, width: 2 });
    expect(bucketBounds(bucketIndex(4097))).toEqual({ lo: 4096, width: 4 });
    // Both ways of finding the bucket (bit operations below 2^32, a logarithm above) agree at the seam.
    expect(bucketIndex(2 ** 32)).toBe(bucketIndex(2 ** 32 - 1) + 1);
    for (const v of [2 ** 20, 2 ** 20 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, 2 ** 52 + 1]) {
      const { lo, width } = bucketBounds(bucketIndex(v));
      expect(v).toBeGreaterThanOrEqual(lo);
      expect(v).toBeLessThan(lo + width);
      expect(width / lo).toBeLessThanOrEqual(2 ** -10);
    }
  });

  it('QuantileSketch: nearest-rank percentiles within 0.1% of the exact ones (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: 2 ** 40 })), {
          minLength: 1,
          maxLength: 300,
        }),
        fc.constantFrom(0.01, 0.25, 0.5, 0.9, 0.99, 1),
        (values, p) => {
          const sketch = new QuantileSketch();
          for (const v of values) sketch.add(v);
          const exact = nearestRank(values, p);
          expect(Math.abs(sketch.quantile(p) - exact)).toBeLessThanOrEqual(exact / 1024);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
    // Repeated values come back exactly, whatever their magnitude.
    const repeated = new QuantileSketch();
    for (const v of [20_000_000, 20_000_000, 1_234_567_891]) repeated.add(v);
    expect([repeated.quantile(0.5), repeated.quantile(1)]).toEqual([20_000_000, 1_234_567_891]);
    expect(new QuantileSketch().quantile(0.5)).toBeNaN();
    expect(() => new QuantileSketch().quantile(0)).toThrow(/0 < p <= 1/);
  });

  it('BinnedHistogram refuses edges that do not ascend', () => {
    expect(() => new BinnedHistogram([0, 10, 10])).toThrow(/must ascend/);
    expect(() => new BinnedHistogram([])).toThrow(/at least one/);
  });

  it('a histogram bin holds [lo, hi): a value on an edge goes up', () => {
    const h = new BinnedHistogram([0, 10, 20]);
    for (const v of [-1, 0, 9.99, 10, 20, 1e9]) h.add(v);
    expect(Array.from(h.counts)).toEqual([3, 1, 2]);
  });

  it('T0 of the fixtures is where the timestamps start', () => {
    expect(at(0)).toBe(T0);
  });
});
