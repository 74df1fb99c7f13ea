import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CaptureFileParser } from '../../src/io/capture-file.js';
import { CaptureFileError } from '../../src/io/capture-file-error.js';
import { PcapParser, PcapWriter, type PcapWriterOptions } from '../../src/io/pcap.js';
import type { Packet } from '../../src/packet.js';
import { hex } from '../helpers/bytes.js';
import {
  errorFields,
  memorySink,
  type Order,
  parseChunked,
  pcapFile,
  pcapFileHeader,
  pcapRecord,
} from './capture-bytes.js';

const EXAMPLE = new URL('../../examples/kernel-mix.pcap', import.meta.url);

async function writePcap(packets: Packet[], options: PcapWriterOptions): Promise<Buffer> {
  const sink = memorySink();
  const writer = new PcapWriter(sink.stream, options);
  for (const pkt of packets) await writer.writePacket(pkt);
  await writer.close();
  return sink.bytes();
}

function pkt(data: Buffer, ts: bigint, extra: Partial<Packet> = {}): Packet {
  return { data, ts, link: 1, origLen: data.length, ifIndex: 0, ...extra };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('PcapParser', () => {
  it('reads a real capture as tshark does (examples/kernel-mix.pcap, nanosecond, little endian)', () => {
    // tshark -r examples/kernel-mix.pcap -T fields -e frame.time_epoch -e frame.len -e frame.cap_len
    const tshark = [
      ['1795319758.841003253', 86, 86],
      ['1795319759.429108343', 90, 90],
      ['1795319759.557063473', 86, 86],
      ['1795319759.717123074', 90, 90],
      ['1795319759.845054346', 90, 90],
    ] as const;
    const parser = new PcapParser();
    const { packets, error } = parseChunked(readFileSync(EXAMPLE), [4096], parser);
    expect(error).toBeNull();
    expect(packets).toHaveLength(34);
    expect(parser.header).toEqual({
      byteOrder: 'le',
      nanosecond: true,
      versionMajor: 2,
      versionMinor: 4,
      snaplen: 262144,
      link: 1,
      fcsLength: 0,
    });
    tshark.forEach(([time, len, caplen], i) => {
      const p = packets[i]!;
      expect(p.ts).toBe(BigInt(time.replace('.', '')));
      expect(p.origLen).toBe(len);
      expect(p.data.length).toBe(caplen);
      expect(p.link).toBe(1);
      expect(p.ifIndex).toBe(0);
    });
  });

  it('reads hand-laid files in both byte orders and resolutions, timestamps exact to the ns', () => {
    const data = hex('ffffffffffff 020000000001 0806 0001');
    for (const order of ['le', 'be'] as Order[]) {
      const micro = pcapFile(order, false, [{ sec: 4294967295, frac: 999999, data, origLen: 60 }]);
      const nano = pcapFile(order, true, [{ sec: 4294967295, frac: 999999999, data }]);
      const m = parseChunked(micro, [micro.length], new PcapParser());
      expect(m.error).toBeNull();
      expect(m.packets).toEqual([{ data, ts: 4294967295999999000n, link: 1, origLen: 60, ifIndex: 0 }]);
      const n = parseChunked(nano, [nano.length], new PcapParser());
      expect(n.packets).toEqual([{ data, ts: 4294967295999999999n, link: 1, origLen: 16, ifIndex: 0 }]);
    }
  });

  it('passes any link type through and reads the FCS length bits', () => {
    for (const link of [1, 101, 113, 228, 229, 276, 147]) {
      const parser = new PcapParser();
      const { packets } = parseChunked(
        pcapFile('le', false, [{ sec: 1, frac: 2, data: hex('4500') }], 65535, link),
        [64],
        parser,
      );
      expect(packets[0]!.link).toBe(link);
      expect(parser.header!.link).toBe(link);
    }
    const parser = new PcapParser();
    const { packets } = parseChunked(
      pcapFile('be', false, [{ sec: 1, frac: 2, data: hex('00') }], 65535, 0x24000001),
      [64],
      parser,
    );
    expect(packets[0]!.link).toBe(1);
    expect(parser.header!.fcsLength).toBe(4);
  });

  it('keeps the wire length of records cut by the snap length, and accepts caplen > snaplen as libpcap does', () => {
    const data = Buffer.alloc(100, 7);
    const file = pcapFile(
      'le',
      true,
      [
        { sec: 10, frac: 5, data: data.subarray(0, 64), origLen: 1500 },
        { sec: 10, frac: 6, data },
      ],
      64,
    );
    const { packets, error } = parseChunked(file, [33]);
    expect(error).toBeNull();
    expect(packets.map((p) => [p.data.length, p.origLen])).toEqual([
      [64, 1500],
      [100, 100],
    ]);
  });

  it('gives the same packets whatever the chunking', () => {
    const records = Array.from({ length: 20 }, (_, i) => ({
      sec: 1000 + (i >> 2),
      frac: i * 7,
      data: Buffer.alloc(i * 13, i),
    }));
    const file = pcapFile('be', true, records);
    const whole = parseChunked(file);
    expect(whole.packets).toHaveLength(20);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }), (sizes) => {
        expect(parseChunked(file, sizes)).toEqual(whole);
      }),
    );
  });

  it('lends views into the pushed chunk, or copies when asked', () => {
    const file = pcapFile('le', false, [
      { sec: 1, frac: 1, data: Buffer.alloc(40, 1) },
      { sec: 1, frac: 2, data: Buffer.alloc(40, 2) },
    ]);
    const borrowed = new PcapParser();
    borrowed.push(file);
    const view = borrowed.next()!;
    expect(view.data.buffer).toBe(file.buffer);
    expect(view.data.byteOffset).toBe(file.byteOffset + 40);

    const copying = new PcapParser({ copy: true });
    const chunk = Buffer.from(file);
    copying.push(chunk);
    const first = copying.next()!;
    const second = copying.next()!;
    expect(copying.next()).toBeNull();
    chunk.fill(0xee); // the caller refills its buffer: copies are unaffected
    expect(first.data).toEqual(Buffer.alloc(40, 1));
    expect(second.data).toEqual(Buffer.alloc(40, 2));
    expect(first.data.buffer).not.toBe(chunk.buffer);
  });

  it('refuses push() while the previous chunk still holds records', () => {
    const parser = new PcapParser();
    parser.push(pcapFile('le', false, [{ sec: 1, frac: 1, data: Buffer.alloc(4) }]));
    expect(() => parser.push(Buffer.alloc(4))).toThrow(/call next\(\) until it returns null/);
  });
});

describe('PcapParser errors', () => {
  // Records of 0, 5 and 60 captured bytes after the 24-byte header.
  const records = [
    { sec: 1, frac: 0, data: Buffer.alloc(0), origLen: 60 },
    { sec: 2, frac: 500, data: hex('0102030405') },
    { sec: 3, frac: 999999, data: Buffer.alloc(60, 0x5a) },
  ];
  const file = pcapFile('le', false, records);
  const lengths = records.map((r) => 16 + r.data.length);
  const starts = lengths.map((_, i) => 24 + lengths.slice(0, i).reduce((a, b) => a + b, 0));

  function expectedAt(cut: number) {
    if (cut < 24)
      return {
        count: 0,
        error: {
          format: 'pcap',
          kind: 'truncated',
          recordIndex: -1,
          offset: 0,
          detail: `truncated at end of file: file header needs 24 bytes, ${cut} available`,
        },
      };
    const i = starts.findIndex((s, k) => cut >= s && cut < s + lengths[k]!);
    if (i < 0 || cut === starts[i]) return { count: i < 0 ? records.length : i, error: null };
    const have = cut - starts[i]!;
    const detail =
      have < 16
        ? `truncated at end of file: record header needs 16 bytes, ${have} available`
        : `truncated at end of file: record needs ${lengths[i]} bytes (16-byte header + ${lengths[i]! - 16} captured), ${have} available`;
    return {
      count: i,
      error: { format: 'pcap', kind: 'truncated', recordIndex: i, offset: starts[i], detail },
    };
  }

  it('yields every complete record of a file cut at any byte, then the exact truncation error', () => {
    for (let cut = 0; cut <= file.length; cut++) {
      const expected = expectedAt(cut);
      for (const sizes of [[file.length || 1], [1], [7, 3]]) {
        const { packets, error } = parseChunked(file.subarray(0, cut), sizes, new PcapParser());
        expect(packets.map((p) => p.ts)).toEqual(
          records.slice(0, expected.count).map((r) => BigInt(r.sec * 1e9 + r.frac * 1000)),
        );
        expect(errorFields(error)).toEqual(expected.error);
        if (error) expect(error).toBeInstanceOf(CaptureFileError);
      }
    }
  });

  it('names the format "capture" when fewer than 4 bytes do not tell it', () => {
    for (let cut = 0; cut < 4; cut++) {
      const { error } = parseChunked(file.subarray(0, cut), [1], new CaptureFileParser());
      expect(errorFields(error)).toEqual({
        format: 'capture',
        kind: 'truncated',
        recordIndex: -1,
        offset: 0,
        detail: `truncated at end of file: magic number needs 4 bytes, ${cut} available`,
      });
    }
    expect((parseChunked(file.subarray(0, 10), [1]).error as CaptureFileError).message).toBe(
      'pcap file header at byte offset 0: truncated at end of file: file header needs 24 bytes, 10 available',
    );
  });

  it('rejects a bad magic number, modified pcap and other versions', () => {
    const gif = Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(30)]);
    expect(errorFields(parseChunked(gif, [100], new PcapParser()).error)).toEqual({
      format: 'pcap',
      kind: 'bad-magic',
      recordIndex: -1,
      offset: 0,
      detail: 'magic number 0x47494638 is not pcap',
    });
    expect(errorFields(parseChunked(gif).error)).toMatchObject({ format: 'capture', kind: 'bad-magic' });
    const modified = Buffer.from(file);
    modified.writeUInt32LE(0xa1b2cd34, 0);
    expect(errorFields(parseChunked(modified).error)).toMatchObject({ kind: 'unsupported', recordIndex: -1 });
    const v3 = Buffer.from(file);
    v3.writeUInt16LE(3, 4);
    expect((parseChunked(v3).error as Error).message).toBe(
      'pcap file header at byte offset 0: pcap version 3 is not 2',
    );
  });

  it('reports a captured length past the sanity limit instead of buffering it, after the good records', () => {
    const bad = Buffer.concat([
      file,
      pcapRecord('le', { sec: 9, frac: 0, data: Buffer.alloc(0), caplen: 0x10000001 }),
    ]);
    const { packets, error } = parseChunked(bad, [50]);
    expect(packets).toHaveLength(3);
    expect(errorFields(error)).toEqual({
      format: 'pcap',
      kind: 'too-large',
      recordIndex: 3,
      offset: file.length,
      detail: 'captured length 268435457 exceeds the sanity limit of 268435456 bytes',
    });
    const limited = parseChunked(file, [file.length], new PcapParser({ maxRecordBytes: 59 }));
    expect(limited.packets).toHaveLength(2);
    expect(errorFields(limited.error)).toMatchObject({
      kind: 'too-large',
      recordIndex: 2,
      offset: starts[2],
    });
  });

  it('keeps throwing the first error', () => {
    const parser = new PcapParser();
    parser.push(Buffer.alloc(24));
    expect(() => parser.next()).toThrow(CaptureFileError);
    expect(() => parser.next()).toThrow(/is not pcap/);
    expect(() => parser.end()).toThrow(/is not pcap/);
  });

  it('never hangs or throws anything but CaptureFileError on corrupted files', () => {
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
    const random = fc
      .uint8Array({ maxLength: 200 })
      .map((a) => Buffer.concat([pcapFileHeader('be', true), Buffer.from(a)]));
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

describe('PcapWriter', () => {
  const data = hex('deadbeefcafe');
  const ts = 1700000000123456789n;

  it('lays out exactly the bytes of the format, into junk buffers (little endian, ns)', async () => {
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => Buffer.alloc(n, 0xa5));
    const bytes = await writePcap([pkt(data, ts)], { link: 1, snaplen: 65535, byteOrder: 'le' });
    expect(bytes.toString('hex')).toBe(
      hex(`4d3cb2a1 0200 0400 00000000 00000000 ffff0000 01000000
           00f15365 15cd5b07 06000000 06000000 deadbeefcafe`).toString('hex'),
    );
  });

  it('lays out big-endian µs files, truncating the ns digits (never rounding up)', async () => {
    vi.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => Buffer.alloc(n, 0xa5));
    const bytes = await writePcap(
      [pkt(data, ts, { origLen: 1514, link: 101 }), pkt(data, 1_999_999_999n, { link: 101 })],
      {
        link: 101,
        nanosecond: false,
        byteOrder: 'be',
        snaplen: 4,
      },
    );
    expect(bytes.toString('hex')).toBe(
      hex(`a1b2c3d4 0002 0004 00000000 00000000 00000004 00000065
           6553f100 0001e240 00000004 000005ea deadbeef
           00000001 000f423f 00000004 00000006 deadbeef`).toString('hex'),
    );
  });

  it('round-trips any packets in every byte order and resolution', async () => {
    const packetArb = fc
      .record({
        data: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        ts: fc.bigInt({ min: 0n, max: 4294967295_999999999n }),
        extra: fc.nat(3000),
      })
      .map(({ data, ts, extra }) => pkt(data, ts, { origLen: data.length + extra }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(packetArb, { maxLength: 20 }),
        fc.constantFrom<Order>('le', 'be'),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 3 }),
        async (packets, byteOrder, nanosecond, sizes) => {
          const bytes = await writePcap(packets, { link: 1, byteOrder, nanosecond, batchBytes: 256 });
          const parser = new PcapParser();
          const back = parseChunked(bytes, sizes, parser);
          expect(back.error).toBeNull();
          expect(parser.header).toMatchObject({ byteOrder, nanosecond, snaplen: 262144, link: 1 });
          expect(back.packets).toEqual(
            packets.map((p) => ({ ...p, ts: nanosecond ? p.ts : p.ts - (p.ts % 1000n) })),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('cuts packets at the snap length and keeps their wire length; stale origLen never undercuts the bytes', async () => {
    const big = Buffer.alloc(100, 3);
    const bytes = await writePcap(
      [pkt(big, 5n, { origLen: 1500 }), pkt(big, 6n, { origLen: 10 }), pkt(big, 7n, { origLen: undefined })],
      {
        link: 1,
        snaplen: 64,
      },
    );
    const { packets } = parseChunked(bytes);
    expect(packets.map((p) => [p.data.length, p.origLen])).toEqual([
      [64, 1500],
      [64, 100],
      [64, 100],
    ]);
    expect(packets[0]!.data).toEqual(big.subarray(0, 64));
  });

  it('refuses packets it cannot express, saying why', () => {
    const writer = new PcapWriter(memorySink().stream, { link: 1 });
    expect(() => writer.write(pkt(data, 1n, { link: 101 }))).toThrow(
      new RangeError('pcap file has link type 1, packet has 101: use pcapng for mixed links'),
    );
    expect(() => writer.write(pkt(data, -1n))).toThrow(/outside 0 … 2³²−1 seconds/);
    expect(() => writer.write(pkt(data, 4294967296n * 1_000_000_000n))).toThrow(RangeError);
    expect(writer.acceptsLink(1)).toBe(true);
    expect(writer.acceptsLink(101)).toBe(false);
    expect(() => new PcapWriter(memorySink().stream, { link: 1, snaplen: 0 })).toThrow(/snaplen/);
  });

  it('gathers small records into batch-sized writes', async () => {
    const sink = memorySink({ highWaterMark: 1 << 20 });
    const writer = new PcapWriter(sink.stream, { link: 1, batchBytes: 16384 });
    for (let i = 0; i < 1000; i++) writer.write(pkt(Buffer.alloc(100, i), BigInt(i)));
    await writer.close();
    const total = 24 + 1000 * 116;
    expect(sink.bytes().length).toBe(total);
    expect(writer.bytesWritten).toBe(total);
    expect(sink.writes).toBeGreaterThanOrEqual(Math.ceil(total / 16384));
    expect(sink.writes).toBeLessThanOrEqual(Math.ceil(total / 16384) + 1);
  });
});
