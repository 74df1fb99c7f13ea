import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CaptureFileError } from '../../src/io/capture-file-error.js';
import { PcapngParser, PcapngWriter, type PcapngWriterOptions } from '../../src/io/pcapng.js';
import type { Packet } from '../../src/packet.js';
import { hex } from '../helpers/bytes.js';
import {
  block,
  epb,
  errorFields,
  idb,
  memorySink,
  type Order,
  obsoletePb,
  option,
  parseChunked,
  shb,
  spb,
} from './capture-bytes.js';

async function writePcapng(packets: Packet[], options: PcapngWriterOptions): Promise<Buffer> {
  const sink = memorySink();
  const writer = new PcapngWriter(sink.stream, options);
  for (const pkt of packets) await writer.writePacket(pkt);
  await writer.close();
  return sink.bytes();
}

function pkt(data: Buffer, ts: bigint, extra: Partial<Packet> = {}): Packet {
  return { data, ts, link: 1, origLen: data.length, ifIndex: 0, ...extra };
}

/** Parses in a few awkward chunkings and insists they agree; returns the packets and error. */
function parse(bytes: Buffer) {
  const whole = parseChunked(bytes, [bytes.length || 1], new PcapngParser());
  for (const sizes of [[1], [5, 11], [64]])
    expect(parseChunked(bytes, sizes, new PcapngParser())).toEqual(whole);
  return whole;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('PcapngParser', () => {
  const A = Buffer.alloc(14, 0xa);
  const B = hex('4500001c 00000000 4011 0000 c6120001 c6120002 0000000000000000');
  const C = Buffer.alloc(10, 0xc);
  const D = Buffer.alloc(20, 0xd);
  const E = Buffer.alloc(100, 0xe);

  // Section 1 (little endian): two interfaces of different link types and resolutions, packets in
  // every packet block type, and blocks we do not read (unknown, custom, NRB, ISB) in between.
  // Section 2 (big endian): interfaces start again from 0.
  const file = Buffer.concat([
    shb('le', [option('le', 4, Buffer.from('hand-laid'))]),
    idb('le', { link: 1, snaplen: 0 }),
    idb('le', { link: 101, snaplen: 128, tsresol: 0x80 | 10, tsoffset: 100n, name: 'raw0' }),
    block('le', 0x12345678, Buffer.from('junk!')),
    block('le', 0x00000bad, Buffer.from('custom block body')),
    block('le', 4, Buffer.alloc(16, 0xff)),
    epb('le', 0, 1700000000123456n, A, 1514),
    epb('le', 1, 1234567n, B),
    spb('le', 10, C),
    obsoletePb('le', 0, 1700000000999999n, D),
    block('le', 5, Buffer.alloc(20)),
    shb('be'),
    idb('be', { link: 113, snaplen: 64, tsresol: 3 }),
    epb('be', 0, 5n, D),
    spb('be', 100, E.subarray(0, 64)),
  ]);

  it('reads every packet block type across sections, interfaces and resolutions', () => {
    const parser = new PcapngParser();
    const { packets, error } = parseChunked(file, [file.length], parser);
    expect(error).toBeNull();
    expect(packets).toEqual([
      { data: A, ts: 1700000000123456000n, link: 1, origLen: 1514, ifIndex: 0 },
      // 2^-10 s units: floor(1234567 · 10⁹ / 1024) ns, plus the 100 s offset
      {
        data: B,
        ts: (1234567n * 1_000_000_000n) / 1024n + 100_000_000_000n,
        link: 101,
        origLen: B.length,
        ifIndex: 1,
      },
      { data: C, ts: 0n, link: 1, origLen: 10, ifIndex: 0 },
      { data: D, ts: 1700000000999999000n, link: 1, origLen: D.length, ifIndex: 0 },
      { data: D, ts: 5_000_000n, link: 113, origLen: D.length, ifIndex: 0 },
      { data: E.subarray(0, 64), ts: 0n, link: 113, origLen: 100, ifIndex: 0 },
    ]);
    expect(parser.sectionCount).toBe(2);
    expect(parser.byteOrder).toBe('be');
    expect(parser.interfaces).toMatchObject([{ link: 113, snaplen: 64, tsresol: 3, tsoffset: 0n }]);
    expect(parser.packetCount).toBe(6);
    expect(parser.offset).toBe(file.length);
  });

  it('gives the same packets whatever the chunking', () => {
    const whole = parseChunked(file);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 6 }), (sizes) => {
        expect(parseChunked(file, sizes)).toEqual(whole);
      }),
    );
  });

  it('converts every if_tsresol (10^-n and 2^-n) and if_tsoffset exactly, flooring below 1 ns', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 0, max: 19 }), fc.integer({ min: 0x80, max: 0x80 + 63 })),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }),
        fc.constantFrom<Order>('le', 'be'),
        (tsresol, units, tsoffset, order) => {
          const bytes = Buffer.concat([
            shb(order),
            idb(order, { link: 1, tsresol, tsoffset }),
            epb(order, 0, units, A),
          ]);
          const base = tsresol & 0x80 ? 2n ** BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
          const { packets, error } = parseChunked(bytes);
          expect(error).toBeNull();
          expect(packets[0]!.ts).toBe((units * 1_000_000_000n) / base + tsoffset * 1_000_000_000n);
        },
      ),
    );
  });

  it('limits a simple packet to interface 0’s snap length and needs an interface first', () => {
    const snapped = Buffer.concat([
      shb('le'),
      idb('le', { link: 1, snaplen: 8 }),
      spb('le', 100, Buffer.alloc(8, 1)),
    ]);
    expect(parse(snapped).packets).toEqual([
      { data: Buffer.alloc(8, 1), ts: 0n, link: 1, origLen: 100, ifIndex: 0 },
    ]);
    const orphan = Buffer.concat([shb('le'), spb('le', 4, Buffer.alloc(4))]);
    expect(errorFields(parse(orphan).error)).toEqual({
      format: 'pcapng',
      kind: 'unknown-interface',
      recordIndex: 1,
      offset: 28,
      detail: 'simple packet block before any interface description',
    });
    const short = Buffer.concat([shb('le'), idb('le', { link: 1 }), spb('le', 100, Buffer.alloc(8))]);
    expect(errorFields(parse(short).error)).toMatchObject({
      kind: 'bad-length',
      recordIndex: 2,
      detail: 'captured length 100 exceeds the 8 bytes the block holds',
    });
  });

  it('lends views into the pushed chunk, or copies when asked', () => {
    const bytes = Buffer.concat([shb('le'), idb('le', { link: 1 }), epb('le', 0, 1n, A)]);
    const borrowed = new PcapngParser();
    borrowed.push(bytes);
    expect(borrowed.next()!.data.buffer).toBe(bytes.buffer);
    const copying = new PcapngParser({ copy: true });
    const chunk = Buffer.from(bytes);
    copying.push(chunk);
    const p = copying.next()!;
    chunk.fill(0);
    expect(p.data).toEqual(A);
  });
});

describe('PcapngParser errors', () => {
  const head = Buffer.concat([shb('le'), idb('le', { link: 1 }), idb('le', { link: 101, tsresol: 9 })]);
  const good = epb('le', 1, 42n, Buffer.alloc(5, 1));
  const at = head.length + good.length;

  /** The file head, one good packet, then `bad`; the good packet must come out before the error. */
  function afterGood(bad: Buffer) {
    const { packets, error } = parse(Buffer.concat([head, good, bad]));
    expect(packets).toEqual([{ data: Buffer.alloc(5, 1), ts: 42n, link: 101, origLen: 5, ifIndex: 1 }]);
    expect(error).toBeInstanceOf(CaptureFileError);
    return errorFields(error);
  }
  const lengthAt = (b: Buffer, v: number, off = 4) => {
    const c = Buffer.from(b);
    c.writeUInt32LE(v, off);
    return c;
  };

  it('reports each kind of damage exactly, naming block index and offset', () => {
    const err = (kind: string, detail: string, recordIndex = 4, offset = at) => ({
      format: 'pcapng',
      kind,
      recordIndex,
      offset,
      detail,
    });
    expect(afterGood(lengthAt(good, 8))).toEqual(
      err('bad-length', 'block total length 8 is below the minimum of 12'),
    );
    expect(afterGood(lengthAt(good, 30))).toEqual(
      err('bad-length', 'block total length 30 is not a multiple of 4'),
    );
    expect(afterGood(lengthAt(good, 36, good.length - 4))).toEqual(
      err('length-mismatch', `block total length ${good.length} at the start but 36 at the end`),
    );
    expect(afterGood(lengthAt(good, 0x7ffffff0))).toEqual(
      err('too-large', 'block total length 2147483632 exceeds the sanity limit of 268435456 bytes'),
    );
    expect(afterGood(epb('le', 5, 1n, Buffer.alloc(4)))).toEqual(
      err('unknown-interface', 'interface id 5 but the section describes 2 interface(s)'),
    );
    expect(afterGood(epb('le', 0, 1n, Buffer.alloc(8), 100, 100))).toEqual(
      err('bad-length', 'captured length 100 exceeds the 8 bytes the block holds'),
    );
    expect(afterGood(block('le', 6, Buffer.alloc(4)))).toEqual(
      err('bad-length', 'enhanced packet block total length 16 is below its minimum of 32'),
    );
    // An IDB whose only option header claims one value byte the block does not have.
    expect(
      afterGood(
        block('le', 1, Buffer.concat([Buffer.alloc(8), option('le', 9, Buffer.alloc(1)).subarray(0, 4)])),
      ),
    ).toEqual(err('malformed', 'option 9 of length 1 runs past the end of its block'));
    expect(afterGood(idb('le', { link: 1, tsresol: 9 }).fill(2, 18, 19))).toEqual(
      err('malformed', 'option 9 has length 2, expected 1'),
    );
    expect(afterGood(shb('le', [], 2))).toEqual(err('unsupported', 'pcapng major version 2 is not 1'));
    const badBom = lengthAt(shb('le'), 0x11223344, 8);
    expect(afterGood(badBom)).toEqual(
      err('bad-magic', 'section header byte-order magic 0x44332211 is neither 1a2b3c4d nor 4d3c2b1a'),
    );
  });

  it('forgets the interfaces of a section when a new one starts', () => {
    expect(afterGood(Buffer.concat([shb('be'), epb('be', 1, 1n, Buffer.alloc(4))]))).toEqual({
      format: 'pcapng',
      kind: 'unknown-interface',
      recordIndex: 5,
      offset: at + 28,
      detail: 'interface id 1 but the section describes 0 interface(s)',
    });
  });

  it('needs a section header block first', () => {
    const { error } = parse(Buffer.concat([idb('le', { link: 1 }), good]));
    expect((error as Error).message).toBe(
      'pcapng block 0 at byte offset 0: file does not start with a section header block (block type 0x00000001)',
    );
  });

  it('yields every complete packet of a file cut at any byte, then the exact truncation error', () => {
    const blocks = [
      shb('le', [option('le', 4, Buffer.from('x'))]),
      idb('le', { link: 1, tsresol: 9 }),
      epb('le', 0, 1n, Buffer.alloc(0)),
      block('le', 0x2000, Buffer.alloc(3)),
      epb('le', 0, 2n, Buffer.alloc(5, 5)),
      epb('le', 0, 3n, Buffer.alloc(13, 13)),
    ];
    const isPacket = [false, false, true, false, true, true];
    const starts = blocks.map((_, i) => blocks.slice(0, i).reduce((n, b) => n + b.length, 0));
    const file = Buffer.concat(blocks);
    for (let cut = 0; cut <= file.length; cut++) {
      let i = starts.findIndex((s, k) => cut >= s && cut < s + blocks[k]!.length);
      if (i < 0) i = blocks.length;
      const have = cut - (starts[i] ?? cut);
      const count = isPacket.slice(0, i).filter(Boolean).length;
      const { packets, error } = parse(file.subarray(0, cut));
      expect(packets.map((p) => p.ts)).toEqual([1n, 2n, 3n].slice(0, count));
      if (i === blocks.length || (have === 0 && i > 0)) {
        expect(error).toBeNull();
        continue;
      }
      const detail =
        have < 12
          ? `truncated at end of file: block needs at least 12 bytes, ${have} available`
          : `truncated at end of file: block needs ${blocks[i]!.length} bytes (its total length), ${have} available`;
      expect(errorFields(error)).toEqual({
        format: 'pcapng',
        kind: 'truncated',
        recordIndex: i,
        offset: starts[i],
        detail,
      });
    }
  });

  it('never hangs or throws anything but CaptureFileError on corrupted files', () => {
    const file = Buffer.concat([
      head,
      good,
      epb('le', 0, 7n, Buffer.alloc(9)),
      spb('le', 3, Buffer.alloc(3)),
    ]);
    const corrupted = fc
      .tuple(
        fc.array(fc.tuple(fc.nat(file.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(file.length),
      )
      .map(([edits, cut]) => {
        const b = Buffer.from(file);
        for (const [i, v] of edits) b[i] = v;
        return b.subarray(0, cut);
      });
    const random = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.concat([shb('be'), Buffer.from(a)]));
    fc.assert(
      fc.property(
        fc.oneof(corrupted, random),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 4 }),
        (bytes, sizes) => {
          const { error } = parseChunked(bytes, sizes);
          if (error !== null) expect(error).toBeInstanceOf(CaptureFileError);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('PcapngWriter', () => {
  it('lays out exactly the bytes of the format, into junk buffers', async () => {
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => Buffer.alloc(n, 0xa5));
    const bytes = await writePcapng([pkt(hex('deadbeefcafe'), 1700000000123456789n)], {
      link: 1,
      byteOrder: 'le',
    });
    expect(bytes.toString('hex')).toBe(
      hex(`0a0d0d0a 2c000000 4d3c2b1a 0100 0000 ffffffffffffffff 0400 0700 706b747665696c00 00000000 2c000000
           01000000 20000000 0100 0000 00000400 0900 0100 09000000 00000000 20000000
           06000000 28000000 00000000 fe9c9717 15cd853d 06000000 06000000 deadbeefcafe0000 28000000`).toString(
        'hex',
      ),
    );
  });

  it('declares one interface per link type and round-trips any packets, both byte orders, ns and µs', async () => {
    const links = [1, 101, 113, 228, 276];
    const packetArb = fc
      .record({
        data: fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
        ts: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        link: fc.constantFrom(...links),
        extra: fc.nat(100),
      })
      .map(({ data, ts, link, extra }) => pkt(data, ts, { link, origLen: data.length + extra }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(packetArb, { maxLength: 15 }),
        fc.constantFrom<Order>('le', 'be'),
        fc.boolean(),
        async (packets, byteOrder, nanosecond) => {
          const bytes = await writePcapng(packets, { byteOrder, nanosecond, batchBytes: 128 });
          const parser = new PcapngParser();
          const back = parseChunked(bytes, [97], parser);
          expect(back.error).toBeNull();
          const order = [...new Set(packets.map((p) => p.link))];
          expect(parser.interfaces.map((i) => [i.link, i.tsresol])).toEqual(
            order.map((l) => [l, nanosecond ? 9 : 6]),
          );
          expect(back.packets).toEqual(
            packets.map((p) => ({
              ...p,
              ts: nanosecond ? p.ts : (p.ts / 1000n) * 1000n,
              ifIndex: order.indexOf(p.link),
            })),
          );
          expect(parser.byteOrder).toBe(byteOrder);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('keeps the given interfaces, their names and snap lengths, and refuses packets that do not fit them', async () => {
    const interfaces = [{ link: 1, name: 'eth0' }, { link: 1, name: 'eth1', snaplen: 4 }, { link: 101 }];
    const packets = [
      pkt(Buffer.alloc(10, 1), 1n, { ifIndex: 1 }),
      pkt(Buffer.alloc(10, 2), 2n, { ifIndex: 2, link: 101 }),
      pkt(Buffer.alloc(10, 3), 3n, { ifIndex: 0 }),
    ];
    const bytes = await writePcapng(packets, { interfaces });
    const parser = new PcapngParser();
    const { packets: back } = parseChunked(bytes, [bytes.length], parser);
    expect(parser.interfaces.map((i) => [i.link, i.name, i.snaplen])).toEqual([
      [1, 'eth0', 262144],
      [1, 'eth1', 4],
      [101, undefined, 262144],
    ]);
    expect(back.map((p) => [p.ifIndex, p.link, p.data.length, p.origLen])).toEqual([
      [1, 1, 4, 10],
      [2, 101, 10, 10],
      [0, 1, 10, 10],
    ]);
    const writer = new PcapngWriter(memorySink().stream, { interfaces });
    expect(() => writer.write(pkt(Buffer.alloc(1), 1n, { ifIndex: 3 }))).toThrow(
      new RangeError('pcapng writer: packet names interface 3, 3 declared'),
    );
    expect(() => writer.write(pkt(Buffer.alloc(1), 1n, { ifIndex: 2 }))).toThrow(
      new RangeError('pcapng writer: interface 2 has link type 101, packet has 1'),
    );
    expect(() => writer.write(pkt(Buffer.alloc(1), -1n))).toThrow(/negative/);
    expect(writer.acceptsLink(101)).toBe(true);
    expect(writer.acceptsLink(113)).toBe(false);
  });
});
