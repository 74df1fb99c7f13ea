import { describe, expect, it } from 'vitest';
import { AggfragView } from '../../src/codec/aggfrag.js';
import { IptfsReceiver } from '../../src/tfc/iptfs-receiver.js';
import { IptfsSender } from '../../src/tfc/iptfs-sender.js';
import { hex, junk } from '../helpers/bytes.js';
import { readVectors } from '../helpers/vectors.js';
import { basicHeader, collector, feed, ipv4Packet, ipv6Packet } from './iptfs-fixtures.js';

interface FlowExample {
  id: string;
  esp_payload_size_each: number;
  aggfrag_header_octets: number;
  datablock_octets_per_packet: number;
  inner_packet_lengths: number[];
  block_offsets: number[];
  layout: string;
  derived_aggfrag_headers_hex: string[];
}

// RFC 9347 Appendix A as structured data in the shared vectors file (the RFC publishes no hex).
const example = readVectors<{ examples: FlowExample[] }>('iptfs-rfc9347-encodings.json').examples.find(
  (e) => e.id === 'rfc9347-appA-flow',
)!;

/** One piece of a payload's data blocks: `bytes` of inner packet `packet` (-1 = pad), from its byte `from`. */
interface Piece {
  packet: number;
  from: number;
  bytes: number;
}

/**
 * Reads the example's layout text, e.g. "[ESP2: last 100 of 750 | 60 | 240 | first 1000 of 3000]": a bare
 * number or "first N of L" starts the next inner packet, "next"/"last N of L" continue the current one.
 */
function parseLayout(layout: string, lengths: number[]): Piece[][] {
  const payloads: Piece[][] = [];
  let packet = -1;
  let sent = 0;
  for (const [, n, body] of layout.matchAll(/\[ESP(\d+): ([^\]]+)\]/g)) {
    expect(Number(n)).toBe(payloads.length + 1);
    const pieces: Piece[] = [];
    for (const text of body!.split(' | ')) {
      const whole = /^(\d+)$/.exec(text);
      const part = /^(first|next|last) (\d+) of (\d+)$/.exec(text);
      const pad = /^pad \((\d+)\)$/.exec(text);
      if (whole || part?.[1] === 'first') {
        packet++;
        sent = 0;
      }
      if (pad) {
        pieces.push({ packet: -1, from: 0, bytes: Number(pad[1]) });
        continue;
      }
      const bytes = Number(whole ? whole[1] : part![2]);
      expect(lengths[packet]).toBe(Number(whole ? whole[1] : part![3]));
      pieces.push({ packet, from: sent, bytes });
      sent += bytes;
    }
    payloads.push(pieces);
  }
  return payloads;
}

describe('RFC 9347 Appendix A: the example flow', () => {
  const lengths = example.inner_packet_lengths;
  const inner = lengths.map((l, i) => ipv4Packet(l, i + 1));
  const layout = parseLayout(example.layout, lengths);
  const size = example.esp_payload_size_each;

  it('the vectors agree with themselves: 4 payloads of a 4-byte header and 1400 data-block bytes', () => {
    expect(layout).toHaveLength(example.block_offsets.length);
    expect(size - example.aggfrag_header_octets).toBe(example.datablock_octets_per_packet);
    for (const pieces of layout)
      expect(pieces.reduce((n, p) => n + p.bytes, 0)).toBe(example.datablock_octets_per_packet);
  });

  it('our sender builds exactly those payloads: headers, BlockOffsets, pieces and pad', () => {
    const tx = new IptfsSender({ payloadSize: size });
    for (const p of inner) expect(tx.enqueue(p, 0, p.length, 0n)).toBe(true);
    const view = new AggfragView();
    layout.forEach((pieces, i) => {
      const out = junk(size);
      const carried = tx.fill(out, 0, 0n);
      expect(out.subarray(0, 4).toString('hex')).toBe(example.derived_aggfrag_headers_hex[i]);
      expect(view.bind(out, 0)).toBeNull();
      expect(view.subType).toBe(0);
      expect(view.blockOffset).toBe(example.block_offsets[i]);
      let at = example.aggfrag_header_octets;
      for (const piece of pieces) {
        const got = out.subarray(at, at + piece.bytes);
        if (piece.packet < 0) {
          expect(got[0]! >> 4).toBe(0); // pad block type (§2.2.1), running to the end of the payload
          expect(at + piece.bytes).toBe(size);
        } else {
          expect(got).toEqual(inner[piece.packet]!.subarray(piece.from, piece.from + piece.bytes));
        }
        at += piece.bytes;
      }
      expect(carried).toBe(pieces.filter((p) => p.packet >= 0).reduce((n, p) => n + p.bytes, 0));
    });
    expect(tx.pending).toBe(false);
    expect(tx.stats()).toEqual({
      packetsIn: 5,
      payloads: 4,
      allPadPayloads: 0,
      innerPackets: 5,
      innerBytes: 4800,
      padBytes: 800,
      fragmentedPackets: 2,
      dropped: {},
    });
  });

  it('the receiver gets the five packets back from the payloads built byte by byte from the layout', () => {
    // Independent of our sender: header hex from the vectors, data blocks cut as the layout says.
    const payloads = layout.map((pieces, i) =>
      Buffer.concat([
        hex(example.derived_aggfrag_headers_hex[i]!),
        ...pieces.map((p) =>
          p.packet < 0 ? Buffer.alloc(p.bytes) : inner[p.packet]!.subarray(p.from, p.from + p.bytes),
        ),
      ]),
    );
    const rx = new IptfsReceiver();
    const got = collector();
    for (const [i, p] of payloads.entries())
      rx.receive(0, i + 1, p, 0, p.length, BigInt(10 * (i + 1)), got.emit);
    expect(got.packets).toEqual(inner);
    // Each packet carries the time of the payload that completed it: ESP1, ESP2 ×3, ESP4.
    expect(got.ts).toEqual([10n, 20n, 20n, 20n, 40n]);
    expect(rx.stats()).toMatchObject({ payloadsIn: 4, innerPackets: 5, innerBytes: 4800, dropped: {} });
  });
});

describe('IptfsReceiver on AGGFRAG payloads built field by field from RFC 9347 §2.2 and §6.1', () => {
  it('reads two whole packets and stops at the pad block', () => {
    const a = ipv4Packet(100, 1);
    const b = ipv6Packet(80, 2);
    const payload = Buffer.concat([hex('00 00 00 00'), a, b, Buffer.alloc(20)]);
    const rx = new IptfsReceiver();
    const got = collector();
    feed(rx, [payload], got);
    expect(got.packets).toEqual([a, b]);
    expect(rx.stats()).toMatchObject({ innerPackets: 2, innerBytes: 180, allPadPayloads: 0, dropped: {} });
  });

  it('joins a packet split over 3 payloads, BlockOffset pointing past the end of the middle one', () => {
    const big = ipv4Packet(500, 3);
    const after = ipv6Packet(60, 4);
    const p1 = Buffer.concat([basicHeader(0), big.subarray(0, 200)]);
    // 300 bytes of `big` remain but this payload holds 200 data bytes: the next block starts in p3.
    const p2 = Buffer.concat([hex('00 00 01 2c'), big.subarray(200, 400)]);
    const p3 = Buffer.concat([hex('00 00 00 64'), big.subarray(400), after, Buffer.alloc(40)]);
    const rx = new IptfsReceiver();
    const got = collector();
    rx.receive(0, 1, p1, 0, p1.length, 1n, got.emit);
    rx.receive(0, 2, p2, 0, p2.length, 2n, got.emit);
    expect(got.packets).toEqual([]);
    rx.receive(0, 3, p3, 0, p3.length, 3n, got.emit);
    expect(got.packets).toEqual([big, after]);
    expect(got.ts).toEqual([3n, 3n]);
  });

  it('joins an IPv6 packet split across payloads', () => {
    const v6 = ipv6Packet(1000, 5);
    const got = collector();
    feed(
      new IptfsReceiver(),
      [
        Buffer.concat([basicHeader(0), v6.subarray(0, 700)]),
        Buffer.concat([basicHeader(300), v6.subarray(700), Buffer.alloc(9)]),
      ],
      got,
    );
    expect(got.packets).toEqual([v6]);
  });

  // §2.2.2: no implicit end padding, so a payload may end inside the inner header, before its length.
  for (const [name, make, lastCut] of [
    ['IPv4 Total Length (bytes 2-3)', ipv4Packet, 3],
    ['IPv6 Payload Length (bytes 4-5)', ipv6Packet, 5],
  ] as const) {
    it(`reads the ${name} when the payload ends after any of the bytes before it`, () => {
      for (let cut = 1; cut <= lastCut; cut++) {
        const first = ipv4Packet(40, 10 + cut);
        const split = make(70, 20 + cut);
        const p1 = Buffer.concat([basicHeader(0), first, split.subarray(0, cut)]);
        const p2 = Buffer.concat([basicHeader(70 - cut), split.subarray(cut), Buffer.alloc(3)]);
        const rx = new IptfsReceiver();
        const got = collector();
        feed(rx, [p1, p2], got);
        expect(got.packets, `cut after ${cut} bytes`).toEqual([first, split]);
        expect(rx.stats().dropped).toEqual({});
      }
    });
  }

  it('takes an all-pad payload as carrying nothing, also between two fragments (§2.2.3)', () => {
    const pkt = ipv4Packet(150, 6);
    const allPad = Buffer.concat([hex('00 00 00 00'), Buffer.alloc(60)]);
    const rx = new IptfsReceiver();
    const got = collector();
    feed(
      rx,
      [
        allPad,
        Buffer.concat([basicHeader(0), pkt.subarray(0, 100)]),
        allPad,
        Buffer.concat([basicHeader(50), pkt.subarray(100), Buffer.alloc(10)]),
      ],
      got,
    );
    expect(got.packets).toEqual([pkt]);
    expect(rx.stats()).toMatchObject({ allPadPayloads: 2, innerPackets: 1, lostPayloads: 0, dropped: {} });
  });

  it('reads data blocks after a sub-type 1 (congestion control) header', () => {
    const pkt = ipv4Packet(90, 7);
    const cc = (blockOffset: string) =>
      // Sub-type 1 | reserved 0, P=1, E=1 | BlockOffset | LossEventRate | RTT/Echo/Transmit delay | TVal | TEcho
      hex(`01 03 ${blockOffset} 00000100 0000040000200003 deadbeef 01020304`);
    const p1 = Buffer.concat([cc('00 00'), pkt.subarray(0, 50)]);
    const p2 = Buffer.concat([cc('00 28'), pkt.subarray(50), Buffer.alloc(5)]);
    expect(p1.length).toBe(24 + 50);
    const got = collector();
    feed(new IptfsReceiver(), [p1, p2], got);
    expect(got.packets).toEqual([pkt]);
  });

  it('loses the packet a lost payload carried part of and resynchronises at the next BlockOffset', () => {
    const a = ipv4Packet(60, 8);
    const b = ipv4Packet(300, 9);
    const c = ipv6Packet(50, 10);
    const p1 = Buffer.concat([basicHeader(0), a, b.subarray(0, 50)]);
    const p2 = Buffer.concat([basicHeader(250), b.subarray(50, 150)]); // lost
    const p3 = Buffer.concat([basicHeader(150), b.subarray(150, 260)]); // all of it is b's
    const p4 = Buffer.concat([basicHeader(40), b.subarray(260), c, Buffer.alloc(4)]);
    const rx = new IptfsReceiver({ reorderWindow: 0 });
    const got = collector();
    rx.receive(0, 1, p1, 0, p1.length, 0n, got.emit);
    rx.receive(0, 3, p3, 0, p3.length, 0n, got.emit);
    rx.receive(0, 4, p4, 0, p4.length, 0n, got.emit);
    expect(p2.length).toBe(104);
    expect(got.packets).toEqual([a, c]);
    expect(rx.stats()).toMatchObject({
      lostPayloads: 1,
      innerPackets: 2,
      dropped: { 'partial-discarded': 1 },
    });
  });

  it('counts garbage after the header as malformed, never throws, and resynchronises', () => {
    const good = ipv4Packet(40, 11);
    const cases: Array<[string, Buffer]> = [
      ['block type 5', hex('00 00 00 00 51 02 03 04 05 06 07 08')],
      ['IPv4 header length 16 bytes', hex('00 00 00 00 44 00 00 28 00 00 00 00')],
      ['IPv4 Total Length 19', hex('00 00 00 00 45 00 00 13 00 00 00 00')],
      ['IPv4 Total Length below its 24-byte header', hex('00 00 00 00 46 00 00 16 00 00 00 00')],
    ];
    for (const [what, garbage] of cases) {
      const rx = new IptfsReceiver();
      const got = collector();
      // The next payload's BlockOffset (8) skips what the garbage's sender thought was left of it.
      const next = Buffer.concat([basicHeader(8), Buffer.alloc(8, 0xee), good]);
      feed(rx, [garbage, next], got);
      expect(got.packets, what).toEqual([good]);
      expect(rx.stats().dropped, what).toEqual({ malformed: 1 });
    }
  });

  it('drops payloads whose header is unusable as malformed-header', () => {
    const rx = new IptfsReceiver();
    const got = collector();
    feed(
      rx,
      [hex('02 00 00 00 45 00 00 14'), hex('00 00 00'), hex('01 00 00 00 45 00'), Buffer.alloc(0)],
      got,
    );
    expect(got.packets).toEqual([]);
    expect(rx.stats().dropped).toEqual({ 'malformed-header': 4 });
  });

  it('counts a BlockOffset that contradicts the stream and trusts it to find the next block', () => {
    const a = ipv4Packet(40, 12);
    const b = ipv4Packet(100, 13);
    const c = ipv4Packet(24, 14);
    const rx = new IptfsReceiver();
    const got = collector();
    feed(
      rx,
      [
        Buffer.concat([basicHeader(0), a]), // ends on a block boundary …
        Buffer.concat([basicHeader(10), Buffer.alloc(10, 0x45), c]), // … so nothing can continue here
        Buffer.concat([basicHeader(0), b.subarray(0, 60)]),
        Buffer.concat([basicHeader(30), b.subarray(60, 90), c]), // 40 bytes of b are left, not 30
      ],
      got,
    );
    expect(got.packets).toEqual([a, c, c]);
    expect(rx.stats().dropped).toEqual({ 'block-offset-mismatch': 2 });
  });
});
