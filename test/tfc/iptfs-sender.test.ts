import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AGGFRAG_DELAY_MAX, AGGFRAG_RTT_MAX, AggfragView } from '../../src/codec/aggfrag.js';
import { IptfsReceiver } from '../../src/tfc/iptfs-receiver.js';
import { IptfsSender } from '../../src/tfc/iptfs-sender.js';
import { hex, junk } from '../helpers/bytes.js';
import { collector, ipv4Packet, ipv6Packet } from './iptfs-fixtures.js';

/** Fills `n` payloads of `tx` into fresh buffers. */
function payloads(tx: IptfsSender, n: number, now = 0n): Buffer[] {
  return Array.from({ length: n }, () => {
    const out = Buffer.alloc(tx.payloadSize);
    tx.fill(out, 0, now);
    return out;
  });
}

describe('IptfsSender payloads', () => {
  it('writes every byte of every payload: the same input into junk and into zeros gives the same bytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 600 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 20, max: 1500 }), { maxLength: 8 }),
        (payloadSize, congestionControl, lengths) => {
          if (congestionControl && payloadSize <= 24) return;
          const a = new IptfsSender({ payloadSize, congestionControl });
          const b = new IptfsSender({ payloadSize, congestionControl });
          for (const [i, l] of lengths.entries()) {
            const p = i % 2 ? ipv6Packet(Math.max(l, 40), i) : ipv4Packet(l, i);
            a.enqueue(p, 0, p.length, 0n);
            b.enqueue(p, 0, p.length, 0n);
          }
          // At an odd offset inside a bigger junk buffer: nothing before or after is touched either.
          const fromJunk: Buffer[] = [];
          const fromZeros: Buffer[] = [];
          do {
            const inJunk = junk(payloadSize + 7);
            const inZeros = Buffer.alloc(payloadSize);
            expect(a.fill(inJunk, 3, 0n)).toBe(b.fill(inZeros, 0, 0n));
            fromJunk.push(inJunk);
            fromZeros.push(Buffer.concat([junk(3), inZeros, junk(4)]));
          } while (a.pending);
          expect(Buffer.concat(fromJunk)).toEqual(Buffer.concat(fromZeros));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('builds an all-pad payload when nothing is queued: header, then a pad block of zeros', () => {
    const tx = new IptfsSender({ payloadSize: 64 });
    const out = junk(64);
    expect(tx.fill(out, 0, 0n)).toBe(0);
    expect(out).toEqual(Buffer.concat([hex('00 00 00 00'), Buffer.alloc(60)]));
    expect(tx.stats()).toMatchObject({ payloads: 1, allPadPayloads: 1, padBytes: 60, innerBytes: 0 });
  });

  it('aggregates small packets and pads the rest', () => {
    const a = ipv4Packet(40, 1);
    const b = ipv6Packet(50, 2);
    const tx = new IptfsSender({ payloadSize: 100 });
    tx.enqueue(a, 0, 40, 0n);
    tx.enqueue(b, 0, 50, 0n);
    const [p] = payloads(tx, 1);
    expect(p).toEqual(Buffer.concat([hex('00 00 00 00'), a, b, Buffer.alloc(6)]));
  });

  it('continues a split packet with its remaining length as BlockOffset, and 0 once it ends on a boundary', () => {
    const big = ipv4Packet(250, 3);
    const tx = new IptfsSender({ payloadSize: 104 });
    tx.enqueue(big, 0, 250, 0n);
    const [p1, p2, p3, p4] = payloads(tx, 4);
    expect(p1!.subarray(0, 4)).toEqual(hex('00 00 00 00'));
    expect(p2!.subarray(0, 4)).toEqual(hex('00 00 00 96')); // 150 left
    expect(p3!.subarray(0, 4)).toEqual(hex('00 00 00 32')); // 50 left
    expect(p3!.subarray(54)).toEqual(Buffer.alloc(50));
    expect(p4).toEqual(Buffer.concat([hex('00 00 00 00'), Buffer.alloc(100)]));
    expect(Buffer.concat([p1!.subarray(4), p2!.subarray(4), p3!.subarray(4, 54)])).toEqual(big);
    expect(tx.stats()).toMatchObject({ fragmentedPackets: 1, innerPackets: 1, allPadPayloads: 1 });
  });

  it('starts a packet in the few bytes left, splitting its length field (no implicit end pad, §2.2.2)', () => {
    const tx = new IptfsSender({ payloadSize: 50 });
    const a = ipv4Packet(44, 4);
    const b = ipv4Packet(30, 5);
    tx.enqueue(a, 0, 44, 0n);
    tx.enqueue(b, 0, 30, 0n);
    const [p1, p2] = payloads(tx, 2);
    expect(p1).toEqual(Buffer.concat([hex('00 00 00 00'), a, b.subarray(0, 2)]));
    expect(p2).toEqual(Buffer.concat([hex('00 00 00 1c'), b.subarray(2), Buffer.alloc(18)]));
  });

  it('carries the congestion-control fields in sub-type 1 headers, saturating RTT and delays', () => {
    const tx = new IptfsSender({ payloadSize: 60, congestionControl: true });
    const first = junk(60);
    tx.fill(first, 0, 0n);
    expect(first.subarray(0, 24)).toEqual(Buffer.concat([hex('01 00 00 00'), Buffer.alloc(20)]));

    tx.setCongestionInfo({
      probe: true,
      ecn: false,
      lossEventRate: 0x01020304,
      rtt: 0x3fffff + 5,
      echoDelay: 0x1fffff + 1,
      transmitDelay: 7,
      tval: 0xdeadbeef,
      techo: 0xcafef00d,
    });
    const big = ipv4Packet(60, 6);
    tx.enqueue(big, 0, 60, 0n);
    const [p1, p2] = payloads(tx, 2);
    const view = new AggfragView();
    for (const [p, blockOffset] of [
      [p1!, 0],
      [p2!, 24],
    ] as const) {
      expect(view.bind(p, 0)).toBeNull();
      expect(view.toRepr()).toEqual({
        blockOffset,
        payloadLength: 36,
        cc: {
          probe: true,
          ecn: false,
          lossEventRate: 0x01020304,
          rtt: AGGFRAG_RTT_MAX,
          echoDelay: AGGFRAG_DELAY_MAX,
          transmitDelay: 7,
          tval: 0xdeadbeef,
          techo: 0xcafef00d,
        },
      });
    }
    // P flag (0x02) in the second octet; RTT|echo|transmit as one 64-bit word (22+21+21 bits).
    expect(p1!.subarray(0, 24)).toEqual(hex('01 02 00 00 01020304 ffffffffffe00007 deadbeef cafef00d'));
    expect(Buffer.concat([p1!.subarray(24), p2!.subarray(24, 48)])).toEqual(big);
  });
});

describe('IptfsSender queue', () => {
  it('drops what is not an IPv4/IPv6 packet of the length given', () => {
    const tx = new IptfsSender({ payloadSize: 200 });
    const v4 = ipv4Packet(40, 7);
    const longer = Buffer.concat([v4, Buffer.alloc(4)]);
    const ihl4 = Buffer.from(v4);
    ihl4[0] = 0x44;
    const arp = Buffer.alloc(28, 0x00);
    expect(tx.enqueue(arp, 0, 28, 0n)).toBe(false);
    expect(tx.enqueue(v4, 0, 0, 0n)).toBe(false);
    expect(tx.enqueue(v4, 0, 19, 0n)).toBe(false); // shorter than a header
    expect(tx.enqueue(longer, 0, 44, 0n)).toBe(false); // Total Length 40, 44 given
    expect(tx.enqueue(ihl4, 0, 40, 0n)).toBe(false);
    expect(tx.enqueue(ipv6Packet(60), 0, 39, 0n)).toBe(false);
    expect(tx.enqueue(longer, 0, 40, 0n)).toBe(true);
    expect(tx.stats()).toMatchObject({ packetsIn: 7, dropped: { 'not-ip': 1, 'malformed-inner': 5 } });
    expect(tx.queuedPackets).toBe(1);
    expect(tx.queuedBytes).toBe(40);
  });

  it('copies what it queues: the caller may reuse its buffer at once', () => {
    const tx = new IptfsSender({ payloadSize: 100 });
    const pkt = ipv4Packet(60, 8);
    const scratch = Buffer.concat([Buffer.alloc(5), pkt]);
    tx.enqueue(scratch, 5, 60, 0n);
    scratch.fill(0x66);
    const [p] = payloads(tx, 1);
    expect(p!.subarray(4, 64)).toEqual(pkt);
  });

  it('refuses packets beyond maxQueueBytes and takes them again once payloads drained the queue', () => {
    const tx = new IptfsSender({ payloadSize: 404, maxQueueBytes: 1000 });
    const pkt = ipv4Packet(600, 9);
    expect(tx.enqueue(pkt, 0, 600, 0n)).toBe(true);
    expect(tx.enqueue(pkt, 0, 600, 0n)).toBe(false);
    expect(tx.stats().dropped).toEqual({ 'queue-full': 1 });
    payloads(tx, 1); // 400 bytes out, 200 left
    expect(tx.queuedBytes).toBe(200);
    expect(tx.enqueue(pkt, 0, 600, 0n)).toBe(true);
    expect(tx.queuedBytes).toBe(800);
    expect(tx.queuedPackets).toBe(2);
  });

  it('drops packets that waited longer than maxDelayNs, but never one already partly sent', () => {
    const tx = new IptfsSender({ payloadSize: 104, maxDelayNs: 1000n });
    const big = ipv4Packet(150, 10);
    const small = ipv4Packet(40, 11);
    const late = ipv4Packet(30, 12);
    tx.enqueue(big, 0, 150, 0n);
    tx.enqueue(late, 0, 30, 0n);
    tx.enqueue(small, 0, 40, 500n);
    const p1 = Buffer.alloc(104);
    tx.fill(p1, 0, 1000n); // exactly maxDelay old: still sent; big is split
    const p2 = Buffer.alloc(104);
    tx.fill(p2, 0, 1001n); // big continues, `late` is too late, `small` (501 ns old) goes
    expect(Buffer.concat([p1.subarray(4), p2.subarray(4, 54)])).toEqual(big);
    expect(p2.subarray(54, 94)).toEqual(small);
    expect(tx.stats().dropped).toEqual({ 'too-late': 1 });
    expect(tx.pending).toBe(false);
  });

  it('under dontFragment never splits: a packet that does not fit waits, one bigger than a payload is too big', () => {
    const tx = new IptfsSender({ payloadSize: 104, dontFragment: true });
    const a = ipv4Packet(60, 13);
    const b = ipv4Packet(60, 14);
    expect(tx.enqueue(ipv4Packet(101), 0, 101, 0n)).toBe(false);
    expect(tx.enqueue(ipv4Packet(100, 15), 0, 100, 0n)).toBe(true);
    tx.enqueue(a, 0, 60, 0n);
    tx.enqueue(b, 0, 60, 0n);
    const [p1, p2, p3] = payloads(tx, 3);
    expect(p1!.subarray(0, 4)).toEqual(hex('00 00 00 00'));
    expect(p2).toEqual(Buffer.concat([hex('00 00 00 00'), a, Buffer.alloc(40)]));
    expect(p3).toEqual(Buffer.concat([hex('00 00 00 00'), b, Buffer.alloc(40)]));
    expect(tx.stats()).toMatchObject({ fragmentedPackets: 0, dropped: { 'too-big': 1 } });
  });

  it('keeps BlockOffset within 16 bits: a 65575-byte IPv6 packet starts where its tail fits', () => {
    const jumbo = ipv6Packet(65575, 16);
    const head = ipv4Packet(1460, 17);
    const tx = new IptfsSender({ payloadSize: 1500 });
    tx.enqueue(head, 0, head.length, 0n);
    expect(tx.enqueue(jumbo, 0, jumbo.length, 0n)).toBe(true);
    const [p1, p2, p3] = payloads(tx, 3);
    // 36 bytes were left after `head`: 65539 would remain, more than BlockOffset holds, so pad instead.
    expect(p1!.subarray(1464)).toEqual(Buffer.alloc(36));
    expect(p2!.subarray(0, 4)).toEqual(hex('00 00 00 00'));
    expect(p3!.readUInt16BE(2)).toBe(65575 - 1496);
    const rest = payloads(tx, 44);
    expect(tx.pending).toBe(false);
    const rx = new IptfsReceiver();
    const got = collector();
    for (const [i, p] of [p1!, p2!, p3!, ...rest].entries())
      rx.receive(0, i + 1, p, 0, p.length, 0n, got.emit);
    expect(got.packets).toEqual([head, jumbo]);
    // With 26 data bytes a payload could never leave a tail of 65549 that BlockOffset holds.
    expect(new IptfsSender({ payloadSize: 30 }).enqueue(jumbo, 0, jumbo.length, 0n)).toBe(false);
  });

  it('wraps and grows its byte ring without corrupting packets', () => {
    // A 5000-byte bound with packets of up to 1500 bytes wraps the ring many times.
    const tx = new IptfsSender({ payloadSize: 700, maxQueueBytes: 5000 });
    const rx = new IptfsReceiver();
    const got = collector();
    const sent: Buffer[] = [];
    let seq = 1;
    for (let i = 0; i < 300; i++) {
      const p = i % 3 ? ipv4Packet(20 + ((i * 337) % 1480), i) : ipv6Packet(40 + ((i * 211) % 1460), i);
      if (tx.enqueue(p, 0, p.length, 0n)) sent.push(p);
      if (i % 2) for (const out of payloads(tx, 1)) rx.receive(0, seq++, out, 0, 700, 0n, got.emit);
    }
    while (tx.pending) for (const out of payloads(tx, 1)) rx.receive(0, seq++, out, 0, 700, 0n, got.emit);
    expect(got.packets).toEqual(sent);
    // And the default bound grows past the first 64 KiB of ring.
    const big = new IptfsSender({ payloadSize: 1400 });
    const many = Array.from({ length: 100 }, (_, i) => ipv4Packet(1000, i));
    for (const p of many) expect(big.enqueue(p, 0, p.length, 0n)).toBe(true);
    expect(big.queuedBytes).toBe(100_000);
    const rx2 = new IptfsReceiver();
    const got2 = collector();
    seq = 1;
    while (big.pending)
      for (const out of payloads(big, 1)) rx2.receive(0, seq++, out, 0, 1400, 0n, got2.emit);
    expect(got2.packets).toEqual(many);
  });
});

describe('IptfsSender configuration', () => {
  it('refuses settings it cannot honour, saying what to change', () => {
    expect(() => new IptfsSender({ payloadSize: 4 })).toThrow(/payloadSize must be an integer from 5/);
    expect(() => new IptfsSender({ payloadSize: 24, congestionControl: true })).toThrow(/from 25/);
    expect(() => new IptfsSender({ payloadSize: 70000 })).toThrow(/to 65535/);
    expect(() => new IptfsSender({ payloadSize: 100, maxQueueBytes: 0 })).toThrow(/maxQueueBytes/);
    expect(() => new IptfsSender({ payloadSize: 100, maxDelayNs: -1n })).toThrow(/maxDelayNs/);
    expect(() =>
      new IptfsSender({ payloadSize: 100 }).setCongestionInfo({
        probe: false,
        ecn: false,
        lossEventRate: 0,
        rtt: 0,
        echoDelay: 0,
        transmitDelay: 0,
        tval: 0,
        techo: 0,
      }),
    ).toThrow(/congestionControl: true/);
    const tx = new IptfsSender({ payloadSize: 100 });
    expect(() => tx.fill(Buffer.alloc(100), 1, 0n)).toThrow(/needs 100 bytes at offset 1/);
    expect(() => tx.enqueue(Buffer.alloc(10), 5, 10, 0n)).toThrow(/outside the 10-byte buffer/);
  });
});
