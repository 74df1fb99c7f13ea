import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IptfsReceiver } from '../../src/tfc/iptfs-receiver.js';
import { IptfsSender } from '../../src/tfc/iptfs-sender.js';
import { seededRandom } from '../../src/tfc/random.js';
import { collector, ipv4Packet, ipv6Packet } from './iptfs-fixtures.js';

const innerPacket = fc.oneof(
  fc.record({ v6: fc.constant(false), len: fc.integer({ min: 20, max: 9000 }), seed: fc.nat() }),
  fc.record({ v6: fc.constant(true), len: fc.integer({ min: 40, max: 9000 }), seed: fc.nat() }),
);

const scenario = fc.record({
  /** Inner packets, each after 0–2 payloads were built (so packets arrive while others are half sent). */
  steps: fc.array(fc.record({ inner: innerPacket, fillsBefore: fc.integer({ min: 0, max: 2 }) }), {
    maxLength: 16,
  }),
  payloadSize: fc.integer({ min: 64, max: 1500 }),
  congestionControl: fc.boolean(),
  reorderWindow: fc.integer({ min: 0, max: 5 }),
  lossPercent: fc.integer({ min: 0, max: 30 }),
  networkSeed: fc.nat(),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

/**
 * Sender → network (loss, duplicates, reordering within the window) → receiver. Checks that the receiver
 * yields exactly the accepted inner packets none of whose bytes travelled in a lost payload, byte for byte
 * and in order, with the counters that go with it.
 */
function roundTrip(s: Scenario, dontFragment: boolean): void {
  const tx = new IptfsSender({
    payloadSize: s.payloadSize,
    congestionControl: s.congestionControl,
    dontFragment,
  });
  const payloads: Buffer[] = [];
  /** Inner-stream bytes [from, to) each payload carried (the sender sends the stream in order). */
  const carried: Array<[number, number]> = [];
  let streamBytes = 0;
  const fill = () => {
    const out = Buffer.alloc(s.payloadSize);
    const n = tx.fill(out, 0, 0n);
    payloads.push(out);
    carried.push([streamBytes, streamBytes + n]);
    streamBytes += n;
  };
  const accepted: Array<{ pkt: Buffer; from: number }> = [];
  let queuedUpTo = 0;
  for (const { inner, fillsBefore } of s.steps) {
    for (let i = 0; i < fillsBefore; i++) fill();
    const pkt = inner.v6 ? ipv6Packet(inner.len, inner.seed) : ipv4Packet(inner.len, inner.seed);
    if (tx.enqueue(pkt, 0, pkt.length, 0n)) {
      accepted.push({ pkt, from: queuedUpTo });
      queuedUpTo += pkt.length;
    } else {
      // The only refusal here: under DF, bigger than a payload's data blocks.
      expect(dontFragment && pkt.length > s.payloadSize - tx.headerLength).toBe(true);
    }
  }
  while (tx.pending) fill();
  fill(); // and an all-pad one at the end
  expect(streamBytes).toBe(queuedUpTo);

  if (dontFragment)
    for (const { pkt, from } of accepted)
      expect(carried.some(([a, b]) => a <= from && from + pkt.length <= b)).toBe(true);

  // The network: payload seq = index + 1. A kept payload first arrives at most `window` places late, so it
  // is never too old; duplicates may come much later (then they are duplicate or too old).
  const random = seededRandom(s.networkSeed);
  const w = s.reorderWindow;
  const lost = payloads.map(() => random() * 100 < s.lossPercent);
  const arrivals: Array<{ seq: number; key: number }> = [];
  let duplicates = 0;
  for (let i = 0; i < payloads.length; i++) {
    if (lost[i]) continue;
    arrivals.push({ seq: i + 1, key: i + Math.floor(random() * (w + 1)) });
    if (random() < 0.1) {
      arrivals.push({ seq: i + 1, key: i + random() * (3 * w + 3) });
      duplicates++;
    }
  }
  arrivals.sort((x, y) => x.key - y.key);

  const rx = new IptfsReceiver({ reorderWindow: w });
  const got = collector();
  for (const { seq } of arrivals) rx.receive(0, seq, payloads[seq - 1]!, 0, s.payloadSize, 0n, got.emit);
  rx.flush(got.emit);

  const lostRanges = carried.filter((_, i) => lost[i]);
  const expected = accepted
    .filter(({ pkt, from }) => !lostRanges.some(([a, b]) => a < b && a < from + pkt.length && from < b))
    .map(({ pkt }) => pkt);
  // Same lengths in the same order and the same bytes end to end: the same packets (and fast on 9000-byte ones).
  expect(got.packets.map((p) => p.length)).toEqual(expected.map((p) => p.length));
  expect(Buffer.concat(got.packets).equals(Buffer.concat(expected))).toBe(true);

  // Losses the receiver can know of: from where it started waiting to the last payload it got.
  const stats = rx.stats();
  const kept = arrivals.map((a) => a.seq);
  const start = kept.length ? Math.max(1, arrivals[0]!.seq - w) : 0;
  const last = kept.length ? Math.max(...kept) : 0;
  expect(stats.lostPayloads).toBe(lost.filter((l, i) => l && i + 1 >= start && i + 1 < last).length);
  expect(stats.payloadsIn).toBe(arrivals.length);
  expect(stats.innerPackets).toBe(expected.length);
  const { duplicate = 0, 'too-old': tooOld = 0, 'partial-discarded': _partial, ...others } = stats.dropped;
  expect(duplicate + tooOld).toBe(duplicates);
  expect(others).toEqual({});
}

describe('IP-TFS sender → lossy, reordering network → receiver', () => {
  it('yields exactly the inner packets no lost payload carried a byte of, in order (fragmenting)', () => {
    fc.assert(
      fc.property(scenario, (s) => roundTrip(s, false)),
      { numRuns: 300 },
    );
  });

  it('the same with dontFragment: no packet spans payloads, and packets bigger than one are refused', () => {
    fc.assert(
      fc.property(scenario, (s) => roundTrip(s, true)),
      { numRuns: 200 },
    );
  });
});
