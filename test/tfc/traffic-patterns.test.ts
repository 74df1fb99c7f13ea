/**
 * The synthetic labelled traffic generator: deterministic per seed, valid raw IPv4 headers and checksums
 * (by our parser, and by tshark when present), each pattern with the sizes and timing it promises, turns
 * back to back with labels that match them, and pcap files of LINKTYPE_IPV4.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PacketParser } from '../../src/codec/parser.js';
import { Layer } from '../../src/codec/registry.js';
import { parseCaptureBuffer } from '../../src/io/capture-file.js';
import { LinkType, type Packet } from '../../src/packet.js';
import { parseLabels } from '../../src/tfc/analysis/labels.js';
import {
  asConstantRate,
  DEFAULT_TRAFFIC_START,
  generateTraffic,
  type PatternName,
  takeTurns,
  writeTraffic,
} from '../../src/tfc/traffic-patterns.js';
import { describeSystem } from '../helpers/system.js';
import { tsharkRows } from '../helpers/tshark.js';

const dir = mkdtempSync(join(tmpdir(), 'pktveil-patterns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  ts: bigint;
  size: number;
  src: string;
  dst: string;
  protocol: number;
  srcPort: number;
  dstPort: number;
}

/**
 * Decodes every generated packet and asserts (once, over all of them) that each is raw IPv4 with whole
 * headers, a total length equal to its bytes, and right IP and transport checksums.
 */
function decodeAll(packets: Iterable<Packet>): Seen[] {
  const parser = new PacketParser();
  const out: Seen[] = [];
  const faults: string[] = [];
  for (const p of packets) {
    parser.parsePacket(p);
    const udp = parser.has(Layer.udp);
    const transportOk = udp ? parser.udpChecksumOk() : parser.tcpChecksumOk();
    if (p.link !== LinkType.IPV4 || parser.error || !parser.ipv4.checksumOk() || transportOk !== true)
      faults.push(`${out.length}: link ${p.link} ${JSON.stringify(parser.error)} transport ${transportOk}`);
    if (parser.ipv4.totalLength !== p.data.length) faults.push(`${out.length}: total length`);
    const t = udp ? parser.udp : parser.tcp;
    out.push({
      ts: p.ts,
      size: p.data.length,
      src: `${parser.ipv4.src >>> 0}`,
      dst: `${parser.ipv4.dst >>> 0}`,
      protocol: parser.ipv4.protocol,
      srcPort: t.srcPort,
      dstPort: t.dstPort,
    });
  }
  expect(faults).toEqual([]);
  return out;
}

function one(pattern: PatternName, seconds: number, seed = 1): Seen[] {
  return decodeAll(generateTraffic({ seed, turns: [{ pattern, seconds }] }).packets());
}

function digest(packets: Iterable<Packet>): string {
  const h = createHash('sha256');
  for (const p of packets) h.update(`${p.ts}:`).update(p.data);
  return h.digest('hex');
}

const gapsMs = (xs: Seen[]) => xs.slice(1).map((x, i) => Number(x.ts - xs[i]!.ts) / 1e6);

describe('patterns', () => {
  it('voip: 200-byte UDP every 20 ms ± 1 ms in both directions', () => {
    const seen = one('voip', 10);
    expect(new Set(seen.map((s) => s.size))).toEqual(new Set([200]));
    for (const [srcPort, dstPort] of [
      [40000, 5004],
      [5004, 40000],
    ]) {
      const dir = seen.filter((s) => s.srcPort === srcPort && s.dstPort === dstPort);
      expect(dir.length).toBeGreaterThanOrEqual(498);
      expect(dir.length).toBeLessThanOrEqual(501);
      const gaps = gapsMs(dir);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(18);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(22);
    }
  });

  it('bulk: 1500-byte segments at 20 Mbit/s with an ACK for every second one', () => {
    const seen = one('bulk', 5);
    const data = seen.filter((s) => s.size === 1500);
    const acks = seen.filter((s) => s.size === 40);
    expect(data.length + acks.length).toBe(seen.length);
    expect(data.length).toBe(Math.ceil(5 / 600e-6)); // one every 600 µs
    expect(acks.length).toBe(Math.floor(data.length / 2));
    expect(acks.every((a) => a.srcPort === 50000 && a.dstPort === 443)).toBe(true);
    const bits = data.reduce((a, s) => a + s.size * 8, 0);
    expect(bits / 5 / 20e6).toBeCloseTo(1, 2);
  });

  it('web: requests, bursts of MTU-size segments at 100 Mbit/s, ACKs, think times', () => {
    const seen = one('web', 20);
    const requests = seen.filter((s) => s.dstPort === 443 && s.size > 40);
    expect(requests.length).toBeGreaterThan(20);
    for (const r of requests) {
      expect(r.size).toBeGreaterThanOrEqual(300);
      expect(r.size).toBeLessThanOrEqual(800);
    }
    const responses = seen.filter((s) => s.srcPort === 443);
    expect(responses.filter((s) => s.size === 1500).length).toBeGreaterThan(responses.length / 2);
    const gaps = gapsMs(responses);
    expect(Math.min(...gaps)).toBeCloseTo(0.12, 6); // back to back at 100 Mbit/s
    expect(gaps.filter((g) => g >= 100).length).toBeGreaterThan(10); // think times
    expect(new Set(requests.map((r) => r.srcPort)).size).toBe(requests.length); // a connection each
  });

  it('silence: nothing at all', () => {
    expect(one('silence', 3)).toEqual([]);
  });

  it('constant: one size at exactly the rate, on one schedule across turns', () => {
    const traffic = generateTraffic({
      seed: 1,
      turns: asConstantRate([
        { pattern: 'voip', seconds: 1.0015 },
        { pattern: 'bulk', seconds: 2 },
      ]),
      constant: { packetBytes: 700, packetsPerSecond: 400 },
    });
    const seen = decodeAll(traffic.packets());
    expect(seen.length).toBe(Math.ceil(3.0015 * 400));
    expect(new Set(seen.map((s) => s.size))).toEqual(new Set([700]));
    expect(new Set(gapsMs(seen))).toEqual(new Set([2.5]));
  });

  it('refuses a constant packet that cannot hold its headers, and turns of no length', () => {
    expect(() =>
      generateTraffic({ seed: 1, turns: [], constant: { packetBytes: 27, packetsPerSecond: 1 } }),
    ).toThrow(/packetBytes must be from 28 to 1500, got 27/);
    expect(() => generateTraffic({ seed: 1, turns: [{ pattern: 'voip', seconds: 0 }] })).toThrow(
      /turns\[0\]\.seconds must be positive, got 0/,
    );
  });
});

describe('schedules and labels', () => {
  const turns = takeTurns(['voip', 'silence', 'web', 'bulk'], 2, [2, 4], 3);

  it('takeTurns rotates the patterns, with seeded lengths in the range', () => {
    expect(turns.map((t) => t.pattern)).toEqual([
      'voip',
      'silence',
      'web',
      'bulk',
      'voip',
      'silence',
      'web',
      'bulk',
    ]);
    for (const t of turns) {
      expect(t.seconds).toBeGreaterThanOrEqual(2);
      expect(t.seconds).toBeLessThanOrEqual(4);
    }
    expect(takeTurns(['voip', 'web'], 3, [2, 4], 3)).toEqual(takeTurns(['voip', 'web'], 3, [2, 4], 3));
    expect(takeTurns(['voip'], 2, 5)).toEqual([
      { pattern: 'voip', seconds: 5 },
      { pattern: 'voip', seconds: 5 },
    ]);
  });

  it('is deterministic per seed, and the seed matters', () => {
    const a = generateTraffic({ seed: 9, turns });
    expect(digest(a.packets())).toBe(digest(generateTraffic({ seed: 9, turns }).packets()));
    expect(digest(a.packets())).not.toBe(digest(generateTraffic({ seed: 10, turns }).packets()));
  });

  it('labels each turn back to back from the start, and every packet falls in its turn', () => {
    const traffic = generateTraffic({ seed: 9, turns, windowSeconds: 0.5 });
    const labels = parseLabels(traffic.labels, 'generated');
    expect(labels.windowNs).toBe(500_000_000n);
    expect(labels.windows.map((w) => w.class)).toEqual(turns.map((t) => t.pattern));
    expect(labels.windows[0]!.start).toBe(DEFAULT_TRAFFIC_START);
    for (let i = 1; i < labels.windows.length; i++)
      expect(labels.windows[i]!.start).toBe(labels.windows[i - 1]!.end);
    expect(labels.windows.at(-1)!.end).toBe(traffic.end);
    let previous = 0n;
    let backwards = 0;
    const perClass: Record<string, number> = {};
    for (const p of traffic.packets()) {
      if (p.ts < previous) backwards++;
      previous = p.ts;
      const w = labels.windows.find((x) => p.ts >= x.start && p.ts < x.end);
      const c = w?.class ?? 'outside';
      perClass[c] = (perClass[c] ?? 0) + 1;
    }
    expect(backwards).toBe(0);
    expect(Object.keys(perClass).sort()).toEqual(['bulk', 'voip', 'web']); // none silent, none outside
  });

  it('writes a ns pcap of raw IPv4 (228) that reads back packet for packet', async () => {
    const traffic = generateTraffic({ seed: 5, turns: takeTurns(['voip', 'web'], 1, 2) });
    const file = join(dir, 'traffic.pcap');
    const n = await writeTraffic(file, traffic);
    const bytes = readFileSync(file);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b23c4d); // nanosecond magic
    expect(bytes.readUInt32LE(20)).toBe(LinkType.IPV4);
    const back = [...parseCaptureBuffer(bytes)];
    expect(back).toHaveLength(n);
    expect(digest(back)).toBe(digest(traffic.packets()));
  });
});

describeSystem('generated traffic read by tshark', ['tshark'], () => {
  it('has no malformed packet or bad checksum, and tshark verified them', async () => {
    const file = join(dir, 'tshark.pcap');
    const n = await writeTraffic(
      file,
      generateTraffic({ seed: 3, turns: takeTurns(['voip', 'web', 'bulk'], 1, 1) }),
    );
    const rows = await tsharkRows(file, {
      fields: [
        'ip.checksum.status',
        'udp.checksum.status',
        'tcp.checksum.status',
        '_ws.malformed',
        'frame.len',
      ],
      decodeAs: ['tcp.port==443,data', 'udp.port==5004,data'],
    });
    expect(rows).toHaveLength(n);
    // Status 1 is "Good" (0 Bad, 2 Unverified): every IP header and every transport checksum verified.
    const verdicts = new Set(
      rows.map(([ip, udp, tcp, malformed]) => `ip ${ip} transport ${udp || tcp} ${malformed}`),
    );
    expect([...verdicts]).toEqual(['ip 1 transport 1 ']);
    expect(Math.min(...rows.map((r) => Number(r[4])))).toBe(40);
  });
});
