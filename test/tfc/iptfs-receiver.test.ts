import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IPTFS_HEADROOM, IptfsReceiver } from '../../src/tfc/iptfs-receiver.js';
import { IptfsSender } from '../../src/tfc/iptfs-sender.js';
import { collector, ipv4Packet, ipv6Packet } from './iptfs-fixtures.js';

/** A stream of `n` payloads of 120 bytes carrying packets that span payloads, and the packets. */
function stream(n: number): { payloads: Buffer[]; packets: Buffer[] } {
  const tx = new IptfsSender({ payloadSize: 120 });
  const packets: Buffer[] = [];
  for (let i = 0; tx.queuedBytes < n * 116; i++) {
    const p = i % 2 ? ipv4Packet(30 + ((i * 53) % 200), i) : ipv6Packet(40 + ((i * 71) % 150), i);
    tx.enqueue(p, 0, p.length, 0n);
    packets.push(p);
  }
  const payloads = Array.from({ length: n }, () => {
    const out = Buffer.alloc(120);
    tx.fill(out, 0, 0n);
    return out;
  });
  return { payloads, packets };
}

/** Delivers payloads (1-based sequence numbers) in the order given, at time `now`. */
function deliver(rx: IptfsReceiver, payloads: Buffer[], order: number[], emit = collector(), now = 0n) {
  for (const seq of order) rx.receive(0, seq, payloads[seq - 1]!, 0, 120, now, emit.emit);
  return emit;
}

describe('IptfsReceiver headroom', () => {
  it('lets the emit callback overwrite IPTFS_HEADROOM bytes in front of every packet without harm', () => {
    // Payloads placed IPTFS_HEADROOM bytes into buffers of their own (as IptfsDecapStage places them), split
    // packets and reordered payloads included: whatever buffer a packet comes in, the callback scribbles
    // over the bytes in front of it, as a link header would, and every packet still comes back whole.
    // Small packets, so held payloads have packets starting near their front, and now and then one that
    // spans payloads (reassembled in the receiver's own buffer).
    const tx = new IptfsSender({ payloadSize: 120 });
    const packets: Buffer[] = [];
    for (let i = 0; tx.queuedBytes < 12 * 116; i++) {
      const p = ipv4Packet(i % 5 === 4 ? 200 : 20 + ((i * 7) % 40), i);
      tx.enqueue(p, 0, p.length, 0n);
      packets.push(p);
    }
    const placed = Array.from({ length: 12 }, () => {
      const b = Buffer.alloc(IPTFS_HEADROOM + 120, 0x5a);
      tx.fill(b, IPTFS_HEADROOM, 0n);
      return b;
    });
    const got: Buffer[] = [];
    const emit = (buf: Uint8Array, off: number, len: number) => {
      expect(off).toBeGreaterThanOrEqual(IPTFS_HEADROOM);
      got.push(Buffer.from(buf.subarray(off, off + len)));
      buf.fill(0xee, off - IPTFS_HEADROOM, off);
    };
    const rx = new IptfsReceiver({ reorderWindow: 3 });
    // Every even payload waits in the reorder window for the odd one before it.
    for (const seq of [2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11])
      rx.receive(0, seq, placed[seq - 1]!, IPTFS_HEADROOM, 120, 0n, emit);
    expect(rx.stats().reordered).toBe(6);
    expect(got.length).toBeGreaterThanOrEqual(15);
    expect(got).toEqual(packets.slice(0, got.length));
  });
});

describe('IptfsReceiver ordering', () => {
  const { payloads, packets } = stream(8);
  const inOrder = deliver(new IptfsReceiver(), payloads, [1, 2, 3, 4, 5, 6, 7, 8]).packets;

  it('delivers the stream in order as sent (the reference for the tests below)', () => {
    expect(inOrder.length).toBeGreaterThanOrEqual(5);
    expect(inOrder).toEqual(packets.slice(0, inOrder.length));
  });

  it('delivers the same packets in the same order when payloads arrive reordered within the window', () => {
    const rx = new IptfsReceiver({ reorderWindow: 3 });
    const got = deliver(rx, payloads, [2, 1, 4, 5, 3, 8, 6, 7]);
    expect(got.packets).toEqual(inOrder);
    expect(rx.stats()).toMatchObject({ reordered: 4, lostPayloads: 0, dropped: {} });
  });

  it('waits for the first payloads when the first to arrive overtook them', () => {
    const rx = new IptfsReceiver();
    const got = deliver(rx, payloads, [3, 2]);
    expect(got.packets).toEqual([]);
    deliver(rx, payloads, [1, 4, 5, 6, 7, 8], got);
    expect(got.packets).toEqual(inOrder);
  });

  it('declares the gap lost when a payload arrives beyond the window, and the late one too old', () => {
    const rx = new IptfsReceiver({ reorderWindow: 1 });
    const got = deliver(rx, payloads, [1, 3, 4, 2, 5, 6, 7, 8]);
    expect(rx.stats()).toMatchObject({ lostPayloads: 1, dropped: { 'too-old': 1 } });
    // Exactly what in-order delivery without payload 2 gives.
    const without2 = deliver(new IptfsReceiver({ reorderWindow: 0 }), payloads, [1, 3, 4, 5, 6, 7, 8]);
    expect(got.packets).toEqual(without2.packets);
    expect(got.packets.length).toBeLessThan(inOrder.length);
  });

  it('uses nothing out of order with a window of 0', () => {
    const rx = new IptfsReceiver({ reorderWindow: 0 });
    deliver(rx, payloads, [1, 3, 2]);
    expect(rx.stats()).toMatchObject({ lostPayloads: 1, reordered: 0, dropped: { 'too-old': 1 } });
    // A first payload above 1 cannot have overtaken anything either.
    const late = new IptfsReceiver({ reorderWindow: 0 });
    deliver(late, payloads, [2, 1]);
    expect(late.stats()).toMatchObject({ lostPayloads: 0, dropped: { 'too-old': 1 } });
  });

  it('counts duplicates, processed or still waiting in the window, and uses each payload once', () => {
    const rx = new IptfsReceiver();
    const got = deliver(rx, payloads, [1, 1, 3, 3, 2, 2, 4, 5, 6, 7, 8, 5]);
    expect(got.packets).toEqual(inOrder);
    expect(rx.stats().dropped).toEqual({ duplicate: 4 });
  });

  it('declares missing payloads lost on the drop timer and emits what waited behind them at its own time', () => {
    const rx = new IptfsReceiver({ dropTimeNs: 1000n });
    const got = collector();
    rx.receive(0, 1, payloads[0]!, 0, 120, 0n, got.emit);
    const before = got.packets.length;
    rx.receive(0, 3, payloads[2]!, 0, 120, 10n, got.emit);
    rx.receive(0, 4, payloads[3]!, 0, 120, 20n, got.emit);
    rx.tick(1009n, got.emit);
    expect(got.packets.length).toBe(before);
    rx.tick(1010n, got.emit);
    expect(rx.stats().lostPayloads).toBe(1);
    const expected = deliver(new IptfsReceiver({ reorderWindow: 0 }), payloads, [1, 3, 4]).packets;
    expect(got.packets).toEqual(expected);
    expect(got.ts.slice(before).every((t) => t === 10n || t === 20n)).toBe(true);
    // Payload 2 arriving now is too late. The packet payload 1 ended inside went with payload 2.
    rx.receive(0, 2, payloads[1]!, 0, 120, 1011n, got.emit);
    expect(payloads[1]!.readUInt16BE(2)).toBeGreaterThan(0);
    expect(rx.stats().dropped).toEqual({ 'partial-discarded': 1, 'too-old': 1 });
  });

  it('runs the drop timer on receive too', () => {
    const rx = new IptfsReceiver({ dropTimeNs: 100n });
    const got = collector();
    deliver(rx, payloads, [1, 3], got, 0n);
    rx.receive(0, 4, payloads[3]!, 0, 120, 100n, got.emit);
    expect(rx.stats().lostPayloads).toBe(1);
    expect(got.packets).toEqual(
      deliver(new IptfsReceiver({ reorderWindow: 0 }), payloads, [1, 3, 4]).packets,
    );
  });

  it('processes what is held at flush and discards a packet left unfinished', () => {
    const rx = new IptfsReceiver();
    const got = deliver(rx, payloads, [1, 3]);
    rx.flush(got.emit);
    expect(got.packets).toEqual(deliver(new IptfsReceiver({ reorderWindow: 0 }), payloads, [1, 3]).packets);
    expect(rx.stats().lostPayloads).toBe(1);
    // Payloads 1 and 3 both end inside a packet (BlockOffset of 2 and 4 > 0): the first is discarded with
    // lost payload 2, the second at flush.
    expect(payloads[1]!.readUInt16BE(2)).toBeGreaterThan(0);
    expect(payloads[3]!.readUInt16BE(2)).toBeGreaterThan(0);
    expect(rx.stats().dropped).toEqual({ 'partial-discarded': 2 });
  });

  it('joins a flow mid-stream without waiting for numbers far before its first payload', () => {
    const rx = new IptfsReceiver({ reorderWindow: 0 });
    const got = collector();
    for (const [i, p] of payloads.entries()) rx.receive(0, 1000 + i, p, 0, 120, 0n, got.emit);
    expect(rx.stats().lostPayloads).toBe(0);
    expect(got.packets).toEqual(inOrder);
  });

  it('orders 64-bit sequence numbers across the 2^32 boundary', () => {
    const rx = new IptfsReceiver();
    const got = collector();
    const seqs: Array<[number, number]> = [
      [0, 0xfffffffe],
      [1, 0],
      [0, 0xffffffff],
      [1, 1],
    ];
    for (const [i, [hi, lo]] of seqs.entries()) {
      const p = payloads[[0, 2, 1, 3][i]!]!;
      rx.receive(hi, lo, p, 0, 120, 0n, got.emit);
    }
    expect(got.packets).toEqual(deliver(new IptfsReceiver(), payloads, [1, 2, 3, 4]).packets);
    // The first payload it saw was 2^32 − 2, so it waited for the 3 numbers before it (the window), lost.
    expect(rx.stats()).toMatchObject({ lostPayloads: 3, reordered: 1 });
  });

  it('drops sequence numbers that are not 53-bit numbers and refuses bad settings', () => {
    const rx = new IptfsReceiver();
    const p = payloads[0]!;
    rx.receive(0x200000, 0, p, 0, 120, 0n, collector().emit);
    rx.receive(0, -1, p, 0, 120, 0n, collector().emit);
    rx.receive(0, 2 ** 32, p, 0, 120, 0n, collector().emit);
    expect(rx.stats().dropped).toEqual({ 'bad-sequence': 3 });
    expect(() => rx.receive(0, 1, p, 100, 120, 0n, collector().emit)).toThrow(/outside the 120-byte buffer/);
    expect(() => new IptfsReceiver({ reorderWindow: -1 })).toThrow(/reorderWindow/);
    expect(() => new IptfsReceiver({ reorderWindow: 1.5 })).toThrow(/reorderWindow/);
    expect(() => new IptfsReceiver({ dropTimeNs: -1n })).toThrow(/dropTimeNs/);
  });
});

describe('IptfsReceiver robustness', () => {
  const { payloads } = stream(6);

  it('never throws on random or mutated payloads, in any order, and keeps its counters consistent', () => {
    const mutated = fc
      .tuple(
        fc.integer({ min: 0, max: payloads.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(120),
      )
      .map(([i, edits, cut]) => {
        const m = Buffer.from(payloads[i]!);
        for (const [at, b] of edits) m[at % m.length] = b;
        return m.subarray(0, cut);
      });
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      mutated,
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 12 }), payload, fc.boolean()), { maxLength: 30 }),
        fc.integer({ min: 0, max: 4 }),
        (steps, reorderWindow) => {
          const rx = new IptfsReceiver({ reorderWindow, dropTimeNs: 50n });
          let now = 0n;
          let emitted = 0;
          const emit = (buf: Uint8Array, off: number, length: number) => {
            const inner = buf.subarray(off, off + length);
            // Whatever it emits is a whole IPv4/IPv6 packet by its own length field.
            const v = inner[0]! >> 4;
            expect(v === 4 || v === 6).toBe(true);
            const len = v === 4 ? (inner[2]! << 8) | inner[3]! : ((inner[4]! << 8) | inner[5]!) + 40;
            expect(inner.length).toBe(len);
            emitted++;
          };
          for (const [seq, bytes, tick] of steps) {
            now += 20n;
            rx.receive(0, seq, bytes, 0, bytes.length, now, emit);
            if (tick) rx.tick(now, emit);
          }
          rx.flush(emit);
          const s = rx.stats();
          expect(s.payloadsIn).toBe(steps.length);
          expect(s.innerPackets).toBe(emitted);
        },
      ),
      { numRuns: 300 },
    );
  });
});
