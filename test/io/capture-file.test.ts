import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  detectCaptureFormat,
  openCaptureWriter,
  parseCaptureBuffer,
  readCapture,
  writeCapture,
} from '../../src/io/capture-file.js';
import { CaptureFileError } from '../../src/io/capture-file-error.js';
import { clonePacket, type Packet } from '../../src/packet.js';
import {
  epb,
  errorFields,
  idb,
  memorySink,
  pcapFile,
  pcapFileHeader,
  pcapRecord,
  shb,
} from './capture-bytes.js';

const dir = mkdtempSync(join(tmpdir(), `pktveil-capture-${process.pid}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pkt(data: Buffer, ts: bigint, extra: Partial<Packet> = {}): Packet {
  return { data, ts, link: 1, origLen: data.length, ifIndex: 0, ...extra };
}

/** Packets with distinct contents and timestamps. */
function samplePackets(n: number, size = (i: number) => 20 + ((i * 37) % 200)): Packet[] {
  return Array.from({ length: n }, (_, i) =>
    pkt(Buffer.alloc(size(i), i & 0xff), 1_700_000_000_000_000_000n + BigInt(i) * 1_234_567n),
  );
}

async function collect(source: AsyncIterable<Packet>): Promise<{ packets: Packet[]; error: unknown }> {
  const packets: Packet[] = [];
  try {
    for await (const p of source) packets.push(clonePacket(p));
    return { packets, error: null };
  } catch (error) {
    return { packets, error };
  }
}

/** A stream of the given bytes in chunks of the given sizes (cycled). */
function chunked(bytes: Buffer, sizes: number[]): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return Readable.from(chunks, { objectMode: false });
}

/** heapUsed + arrayBuffers: what a reader holding the file in memory would grow. */
function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('detectCaptureFormat', () => {
  it('tells pcap (both orders, both resolutions) from pcapng from anything else', () => {
    expect(detectCaptureFormat(pcapFileHeader('le', false))).toBe('pcap');
    expect(detectCaptureFormat(pcapFileHeader('be', false))).toBe('pcap');
    expect(detectCaptureFormat(pcapFileHeader('le', true))).toBe('pcap');
    expect(detectCaptureFormat(pcapFileHeader('be', true))).toBe('pcap');
    expect(detectCaptureFormat(shb('be'))).toBe('pcapng');
    expect(detectCaptureFormat(Buffer.from('GIF89a'))).toBeNull();
    expect(detectCaptureFormat(Buffer.from([0x0a, 0x0d, 0x0d]))).toBeNull();
  });
});

describe('readCapture', () => {
  const packets = samplePackets(300);

  it('reads files by path and by stream, whatever the chunk size, the same as the in-memory parser', async () => {
    for (const format of ['pcap', 'pcapng'] as const) {
      const path = join(dir, `sample.${format}`);
      expect(await writeCapture(path, packets, { format, link: 1 })).toBe(300);
      const bytes = readFileSync(path);
      const expected = [...parseCaptureBuffer(bytes, { copy: true })];
      expect(expected).toEqual(packets);
      for (const chunkBytes of [7, 100, 4096, undefined]) {
        const reader = readCapture(path, { chunkBytes });
        expect(await collect(reader)).toEqual({ packets: expected, error: null });
        expect(reader.format).toBe(format);
        expect(reader.bytesRead).toBe(bytes.length);
        expect(reader.packetCount).toBe(300);
      }
      expect(await collect(readCapture(chunked(bytes, [1, 13, 1000])))).toEqual({
        packets: expected,
        error: null,
      });
      expect(await collect(readCapture(createReadStream(path, { highWaterMark: 333 })))).toEqual({
        packets: expected,
        error: null,
      });
      const asUint8 = Readable.from([new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)], {
        objectMode: true,
      });
      expect((await collect(readCapture(asUint8))).packets).toHaveLength(300);
    }
  });

  it('delivers every good packet of a damaged file before throwing CaptureFileError', async () => {
    const path = join(dir, 'damaged.pcap');
    const good = pcapFile('le', true, [
      { sec: 1, frac: 1, data: Buffer.alloc(30, 1) },
      { sec: 1, frac: 2, data: Buffer.alloc(30, 2) },
    ]);
    writeFileSync(
      path,
      Buffer.concat([good, pcapRecord('le', { sec: 1, frac: 3, data: Buffer.alloc(30, 3) }).subarray(0, 20)]),
    );
    for (const chunkBytes of [5, 64, undefined]) {
      const { packets: got, error } = await collect(readCapture(path, { chunkBytes }));
      expect(got.map((p) => p.data[0])).toEqual([1, 2]);
      expect(error).toBeInstanceOf(CaptureFileError);
      expect((error as Error).message).toBe(
        `pcap record 2 at byte offset ${good.length}: truncated at end of file: record needs 46 bytes (16-byte header + 30 captured), 20 available`,
      );
    }
  });

  it('yields all complete records of a stream cut at any byte, then the exact error (pcap and pcapng)', async () => {
    const files = {
      pcap: pcapFile('be', false, [
        { sec: 5, frac: 6, data: Buffer.alloc(3, 1) },
        { sec: 5, frac: 7, data: Buffer.alloc(9, 2) },
      ]),
      pcapng: Buffer.concat([
        shb('le'),
        idb('le', { link: 1 }),
        epb('le', 0, 1n, Buffer.alloc(3, 1)),
        epb('le', 0, 2n, Buffer.alloc(9, 2)),
      ]),
    };
    const boundaries = { pcap: [24, 24 + 19], pcapng: [28, 28 + 20, 28 + 20 + 36] };
    for (const [format, file] of Object.entries(files)) {
      for (let cut = 0; cut < file.length; cut++) {
        const bytes = file.subarray(0, cut);
        const inMemory: Packet[] = [];
        let expectedError: unknown = null;
        try {
          for (const p of parseCaptureBuffer(bytes, { copy: true })) inMemory.push(p);
        } catch (e) {
          expectedError = e;
        }
        const { packets: got, error } = await collect(readCapture(chunked(bytes, [3, 8])));
        expect(got, `${format} cut at ${cut}`).toEqual(inMemory);
        expect(errorFields(error)).toEqual(errorFields(expectedError));
        // The only clean cuts are record (block) boundaries; every other cut is a CaptureFileError.
        expect(error === null, `${format} cut at ${cut}`).toBe(
          boundaries[format as keyof typeof boundaries].includes(cut),
        );
        if (error !== null) expect(error).toBeInstanceOf(CaptureFileError);
      }
    }
  });

  it('rejects a file that is empty, too short for a magic number, or not a capture', async () => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    expect(errorFields((await collect(readCapture(empty))).error)).toEqual({
      format: 'capture',
      kind: 'truncated',
      recordIndex: -1,
      offset: 0,
      detail: 'truncated at end of file: magic number needs 4 bytes, 0 available',
    });
    const text = (await collect(readCapture(Readable.from([Buffer.from('hello, world')])))).error;
    expect((text as Error).message).toBe(
      'capture file header at byte offset 0: magic number 0x68656c6c is neither pcap nor pcapng',
    );
    const missing = await collect(readCapture(join(dir, 'no-such-file')));
    expect(missing.error).toMatchObject({ code: 'ENOENT' });
    const strings = await collect(readCapture(Readable.from(['not bytes'])));
    expect(strings.error).toBeInstanceOf(TypeError);
  });

  it('lends pkt.data until the next packet is requested; copy: true gives bytes of its own', async () => {
    const path = join(dir, 'lifetime.pcap');
    await writeCapture(
      path,
      samplePackets(20, () => 40),
      { format: 'pcap', link: 1 },
    );
    const keep = async (copy: boolean) => {
      const kept: Buffer[] = [];
      for await (const p of readCapture(path, { chunkBytes: 64, copy })) kept.push(p.data);
      return kept;
    };
    const borrowed = await keep(false);
    const copied = await keep(true);
    // Packet 0 lay in the first 64-byte read; the read buffer has since been refilled.
    expect(borrowed[0]).not.toEqual(Buffer.alloc(40, 0));
    expect(copied).toEqual(samplePackets(20, () => 40).map((p) => p.data));
  });

  it('refuses a chunk size it cannot read with', () => {
    expect(() => readCapture('x', { chunkBytes: 0 })).toThrow(/chunkBytes must be a positive integer, got 0/);
  });

  it('can be iterated once', async () => {
    const reader = readCapture(Readable.from([pcapFileHeader('le', false)]));
    await collect(reader);
    expect(() => reader[Symbol.asyncIterator]()).toThrow(/only once/);
  });
});

describe('readCapture backpressure and memory', () => {
  it('pulls from a stream only as fast as packets are consumed, and stops it on break', async () => {
    const record = pcapRecord('le', { sec: 1, frac: 0, data: Buffer.alloc(1000, 7) });
    let produced = 0;
    let sentHeader = false;
    const endless = new Readable({
      highWaterMark: 16 * 1024,
      read() {
        const chunk = sentHeader ? record : Buffer.concat([pcapFileHeader('le', false), record]);
        sentHeader = true;
        produced += chunk.length;
        this.push(chunk);
      },
    });
    let consumed = 0;
    let producedAt10 = 0;
    for await (const _ of readCapture(endless)) {
      await sleep(2);
      if (++consumed === 10) producedAt10 = produced;
      if (consumed === 50) break;
    }
    // Once the stream's 16 KiB buffer is full, it produces only as much as is consumed: 40 records
    // consumed (over 80 ms or more) let it make about 40 more, not as many as it could in that time.
    expect(produced - producedAt10).toBeLessThanOrEqual(42 * record.length);
    expect(produced).toBeLessThanOrEqual(24 + 50 * record.length + 2 * 16 * 1024);
    expect(endless.destroyed).toBe(true);
  });

  it('reads a file only as fast as packets are consumed', async () => {
    const path = join(dir, 'slow.pcap');
    await writeCapture(
      path,
      samplePackets(20_000, () => 1000),
      { format: 'pcap', link: 1 },
    );
    expect(statSync(path).size).toBeGreaterThan(20_000_000);
    const reader = readCapture(path, { chunkBytes: 64 * 1024 });
    let consumed = 0;
    for await (const _ of reader) {
      await sleep(1);
      if (++consumed === 100) break;
    }
    expect(reader.bytesRead).toBeLessThanOrEqual(2 * 64 * 1024);
  });

  it('reads and writes ~200 MB captures in bounded memory (pcap by path, pcapng by stream)', async () => {
    const payload = Buffer.alloc(1400, 0x42);
    const count = 145_000; // × 1416 bytes ≈ 205 MB
    function* generated(): Generator<Packet> {
      for (let i = 0; i < count; i++) {
        payload.writeUInt32BE(i, 0);
        yield pkt(payload, 1_700_000_000_000_000_000n + BigInt(i) * 1000n);
      }
    }
    for (const format of ['pcap', 'pcapng'] as const) {
      const path = join(dir, `big.${format}`);
      const start = memoryInUse();
      let peak = start;
      const sample = function* (source: Iterable<Packet>): Generator<Packet> {
        let i = 0;
        for (const p of source) {
          if ((++i & 1023) === 0) peak = Math.max(peak, memoryInUse());
          yield p;
        }
      };
      expect(await writeCapture(path, sample(generated()), { format, link: 1 })).toBe(count);
      expect(statSync(path).size).toBeGreaterThan(200_000_000);
      expect(peak - start, `${format} writing grew memory by ${peak - start} bytes`).toBeLessThan(
        64 * 1024 * 1024,
      );

      const readStart = memoryInUse();
      let readPeak = readStart;
      let n = 0;
      let sum = 0;
      const source = format === 'pcap' ? path : createReadStream(path, { highWaterMark: 256 * 1024 });
      for await (const p of readCapture(source)) {
        sum += p.data.readUInt32BE(0) === n ? 1 : 0;
        if ((++n & 1023) === 0) readPeak = Math.max(readPeak, memoryInUse());
      }
      expect(n).toBe(count);
      expect(sum).toBe(count);
      expect(
        readPeak - readStart,
        `${format} reading grew memory by ${readPeak - readStart} bytes`,
      ).toBeLessThan(64 * 1024 * 1024);
      rmSync(path);
    }
  });
});

describe('capture writers', () => {
  it('signal backpressure; a caller that waits keeps the sink’s queue bounded, one that does not, does not', async () => {
    const packets = samplePackets(400, () => 200);
    const patient = memorySink({ highWaterMark: 4096, delayMs: 1 });
    const writer = await openCaptureWriter(patient.stream, { format: 'pcapng', link: 1, batchBytes: 1024 });
    let refusals = 0;
    for (const p of packets) {
      if (!writer.write(p)) {
        refusals++;
        expect(writer.needsDrain).toBe(true);
        await writer.drain();
      }
    }
    await writer.close();
    expect(refusals).toBeGreaterThan(0);
    expect(patient.maxPending).toBeLessThanOrEqual(4096 + 1024);
    expect([...parseCaptureBuffer(patient.bytes(), { copy: true })]).toEqual(packets);
    expect(patient.stream.writableFinished).toBe(true);

    const hasty = memorySink({ highWaterMark: 4096, delayMs: 1 });
    const careless = await openCaptureWriter(hasty.stream, { format: 'pcapng', link: 1, batchBytes: 1024 });
    for (const p of packets) careless.write(p);
    await careless.close();
    expect(hasty.maxPending).toBeGreaterThan(50_000);
  });

  it('copies each packet at once, so borrowed buffers may be reused right after write()', async () => {
    const sink = memorySink();
    const writer = await openCaptureWriter(sink.stream, { format: 'pcap', link: 1 });
    const reused = Buffer.alloc(10);
    for (let i = 0; i < 5; i++) {
      reused.fill(i);
      writer.write(pkt(reused, BigInt(i)));
    }
    await writer.close();
    expect([...parseCaptureBuffer(sink.bytes())].map((p) => p.data[9])).toEqual([0, 1, 2, 3, 4]);
  });

  it('open on paths and streams, and refuse bad options before touching the file', async () => {
    await expect(
      openCaptureWriter(join(dir, 'nope', 'x.pcap'), { format: 'pcap', link: 1 }),
    ).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(openCaptureWriter(join(dir, 'x.pcap'), { format: 'pcap' })).rejects.toThrow(/needs `link`/);
    await expect(
      openCaptureWriter(join(dir, 'x.pcap'), { format: 'pcap', link: 1, interfaces: [{ link: 1 }] }),
    ).rejects.toThrow(/needs format pcapng/);
    await expect(
      openCaptureWriter(join(dir, 'x.pcap'), { format: 'erf' as 'pcap', link: 1 }),
    ).rejects.toThrow(/format must be/);
    const kept = memorySink();
    const writer = await openCaptureWriter(kept.stream, { format: 'pcap', link: 1, end: false });
    await writer.close();
    expect(kept.stream.writableEnded).toBe(false);
    expect(kept.bytes()).toHaveLength(24);
  });

  it('surface a failing sink from write, drain and close', async () => {
    const failing = new Writable({
      highWaterMark: 64,
      write(_chunk, _enc, cb) {
        cb(new Error('disk on fire'));
      },
    });
    const writer = await openCaptureWriter(failing, { format: 'pcap', link: 1, batchBytes: 64 });
    writer.write(pkt(Buffer.alloc(100), 1n)); // sends the first batch, which fails a moment later
    await sleep(1);
    await expect(writer.drain()).rejects.toThrow('disk on fire');
    expect(() => writer.write(pkt(Buffer.alloc(100), 2n))).toThrow('disk on fire');
    await expect(writer.close()).rejects.toThrow('disk on fire');
  });
});
