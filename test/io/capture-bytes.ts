/**
 * Test helpers for capture files: builders that lay out pcap and pcapng bytes by hand from the format
 * documents (independent of the writers under test), a memory sink, and a chunked parse that refills
 * one scratch buffer for every chunk so a parser that kept a chunk past its turn is caught.
 */
import { Writable } from 'node:stream';
import { CaptureFileParser } from '../../src/io/capture-file.js';
import type { CaptureParser } from '../../src/io/record-stream-parser.js';
import { clonePacket, type Packet } from '../../src/packet.js';

export type Order = 'le' | 'be';

function u16(order: Order, v: number): Buffer {
  const b = Buffer.alloc(2);
  if (order === 'le') b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}
function u32(order: Order, v: number): Buffer {
  const b = Buffer.alloc(4);
  if (order === 'le') b.writeUInt32LE(v);
  else b.writeUInt32BE(v);
  return b;
}
function i64(order: Order, v: bigint): Buffer {
  const b = Buffer.alloc(8);
  if (order === 'le') b.writeBigInt64LE(v);
  else b.writeBigInt64BE(v);
  return b;
}
function pad4(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
}

export interface PcapRecordSpec {
  sec: number;
  /** µs or ns, as the file says. */
  frac: number;
  data: Buffer;
  origLen?: number;
  /** Written caplen field (defaults to data.length). */
  caplen?: number;
}

export function pcapFileHeader(order: Order, nano: boolean, snaplen = 65535, linkField = 1): Buffer {
  return Buffer.concat([
    u32(order, nano ? 0xa1b23c4d : 0xa1b2c3d4),
    u16(order, 2),
    u16(order, 4),
    u32(order, 0),
    u32(order, 0),
    u32(order, snaplen),
    u32(order, linkField),
  ]);
}

export function pcapRecord(order: Order, r: PcapRecordSpec): Buffer {
  return Buffer.concat([
    u32(order, r.sec),
    u32(order, r.frac),
    u32(order, r.caplen ?? r.data.length),
    u32(order, r.origLen ?? r.data.length),
    r.data,
  ]);
}

export function pcapFile(
  order: Order,
  nano: boolean,
  records: PcapRecordSpec[],
  snaplen = 65535,
  linkField = 1,
): Buffer {
  return Buffer.concat([
    pcapFileHeader(order, nano, snaplen, linkField),
    ...records.map((r) => pcapRecord(order, r)),
  ]);
}

/** A block: type, total length, body padded to 4, total length. */
export function block(order: Order, type: number, body: Buffer): Buffer {
  const padded = pad4(body);
  const length = 12 + padded.length;
  return Buffer.concat([u32(order, type), u32(order, length), padded, u32(order, length)]);
}

export function option(order: Order, code: number, value: Buffer): Buffer {
  return Buffer.concat([u16(order, code), u16(order, value.length), pad4(value)]);
}

export function options(order: Order, list: Buffer[]): Buffer {
  return list.length === 0 ? Buffer.alloc(0) : Buffer.concat([...list, option(order, 0, Buffer.alloc(0))]);
}

export function shb(order: Order, opts: Buffer[] = [], major = 1): Buffer {
  const body = Buffer.concat([
    u32(order, 0x1a2b3c4d),
    u16(order, major),
    u16(order, 0),
    i64(order, -1n),
    options(order, opts),
  ]);
  return block(order, 0x0a0d0d0a, body);
}

export interface IdbSpec {
  link: number;
  snaplen?: number;
  tsresol?: number;
  tsoffset?: bigint;
  name?: string;
}

export function idb(order: Order, spec: IdbSpec): Buffer {
  const opts: Buffer[] = [];
  if (spec.name !== undefined) opts.push(option(order, 2, Buffer.from(spec.name)));
  if (spec.tsresol !== undefined) opts.push(option(order, 9, Buffer.from([spec.tsresol])));
  if (spec.tsoffset !== undefined) opts.push(option(order, 14, i64(order, spec.tsoffset)));
  const body = Buffer.concat([
    u16(order, spec.link),
    u16(order, 0),
    u32(order, spec.snaplen ?? 0),
    options(order, opts),
  ]);
  return block(order, 1, body);
}

/** EPB with `units` in the interface's resolution; `caplen` overrides the captured-length field. */
export function epb(
  order: Order,
  ifId: number,
  units: bigint,
  data: Buffer,
  origLen = data.length,
  caplen = data.length,
) {
  const body = Buffer.concat([
    u32(order, ifId),
    u32(order, Number(units >> 32n)),
    u32(order, Number(units & 0xffffffffn)),
    u32(order, caplen),
    u32(order, origLen),
    pad4(data),
  ]);
  return block(order, 6, body);
}

export function spb(order: Order, origLen: number, data: Buffer): Buffer {
  return block(order, 3, Buffer.concat([u32(order, origLen), pad4(data)]));
}

/** Obsolete Packet Block (type 2): 16-bit interface id, 16-bit drops count. */
export function obsoletePb(
  order: Order,
  ifId: number,
  units: bigint,
  data: Buffer,
  origLen = data.length,
): Buffer {
  const body = Buffer.concat([
    u16(order, ifId),
    u16(order, 0),
    u32(order, Number(units >> 32n)),
    u32(order, Number(units & 0xffffffffn)),
    u32(order, data.length),
    u32(order, origLen),
    pad4(data),
  ]);
  return block(order, 2, body);
}

/** A Writable that keeps what it is given; optionally slow (each write completes after `delayMs`). */
export function memorySink(options: { highWaterMark?: number; delayMs?: number } = {}) {
  const chunks: Buffer[] = [];
  let writes = 0;
  let maxPending = 0;
  const stream = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      writes++;
      maxPending = Math.max(maxPending, stream.writableLength);
      chunks.push(Buffer.from(chunk));
      if (options.delayMs === undefined) cb();
      else setTimeout(cb, options.delayMs);
    },
  });
  return {
    stream,
    bytes: () => Buffer.concat(chunks),
    get writes() {
      return writes;
    },
    /** Most bytes the sink ever held queued (its writableLength at a write). */
    get maxPending() {
      return maxPending;
    },
  };
}

export interface ChunkedParse {
  packets: Packet[];
  error: unknown;
}

/**
 * Feeds `bytes` to a parser in chunks of the given sizes (cycled), each copied into the same scratch
 * buffer, cloning every packet as it comes; then calls end(). Returns the packets and the first error.
 */
export function parseChunked(
  bytes: Buffer,
  sizes: number[] = [bytes.length || 1],
  parser: CaptureParser = new CaptureFileParser(),
): ChunkedParse {
  const packets: Packet[] = [];
  const scratch = Buffer.alloc(Math.max(1, ...sizes));
  let calls = 0;
  const limit = bytes.length + 10; // every next() that returns a packet consumes at least 12 bytes
  try {
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = Math.min(sizes[i % sizes.length]!, bytes.length - at);
      bytes.copy(scratch, 0, at, at + size);
      at += size;
      parser.push(scratch.subarray(0, size));
      for (let pkt = parser.next(); pkt !== null; pkt = parser.next()) {
        if (++calls > limit) throw new Error('parser does not progress');
        packets.push(clonePacket(pkt));
      }
      scratch.fill(0xee); // a parser still looking at the chunk would now see junk
    }
    parser.end();
    return { packets, error: null };
  } catch (error) {
    return { packets, error };
  }
}

/** Plain fields of a CaptureFileError (or the thrown value itself when it is not one). */
export function errorFields(error: unknown): unknown {
  if (error === null || typeof error !== 'object' || !('kind' in error)) return error;
  const e = error as Record<string, unknown>;
  return { format: e.format, kind: e.kind, recordIndex: e.recordIndex, offset: e.offset, detail: e.detail };
}
