/**
 * Capture files by path or stream, whichever format: detects pcap or pcapng by its magic number, reads
 * packets as an async iterable that pulls bytes only as fast as they are consumed, and opens writers.
 */
import { createWriteStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import type { LinkType, Packet } from '../packet.js';
import { type CaptureSinkOptions, type CaptureWriter, DEFAULT_BATCH_BYTES } from './batched-record-writer.js';
import type { ByteOrder } from './byte-order.js';
import { CaptureFileError, type CaptureFormat } from './capture-file-error.js';
import { isPcapMagic, PcapParser, PcapWriter } from './pcap.js';
import { isPcapngMagic, type PcapngInterfaceOptions, PcapngParser, PcapngWriter } from './pcapng.js';
import type { CaptureParser, CaptureParserOptions } from './record-stream-parser.js';

const MAGIC_LENGTH = 4;
/** Bytes read from a file at a time. */
export const DEFAULT_READ_CHUNK_BYTES = 256 * 1024;

/** The format a file's first bytes announce, or null when they are neither pcap nor pcapng. */
export function detectCaptureFormat(firstBytes: Buffer): CaptureFormat | null {
  if (isPcapngMagic(firstBytes)) return 'pcapng';
  if (isPcapMagic(firstBytes)) return 'pcap';
  return null;
}

export function createCaptureParser(
  format: CaptureFormat,
  options?: CaptureParserOptions,
): PcapParser | PcapngParser {
  return format === 'pcap' ? new PcapParser(options) : new PcapngParser(options);
}

/**
 * A push parser for either format: the first four bytes choose a PcapParser or a PcapngParser, which
 * then does the work (same protocol and `pkt.data` lifetime as CaptureParser).
 */
export class CaptureFileParser implements CaptureParser {
  /** The format-specific parser, once the magic number has been seen. */
  inner: PcapParser | PcapngParser | null = null;

  private prefix: Buffer = Buffer.alloc(0);
  private failure: CaptureFileError | null = null;

  constructor(private readonly options: CaptureParserOptions = {}) {}

  get format(): CaptureFormat | null {
    return this.inner?.format ?? null;
  }
  get offset(): number {
    return this.inner?.offset ?? 0;
  }
  get packetCount(): number {
    return this.inner?.packetCount ?? 0;
  }

  push(chunk: Buffer): void {
    if (this.inner) {
      this.inner.push(chunk);
      return;
    }
    if (this.failure) return;
    const head = this.prefix.length === 0 ? chunk : Buffer.concat([this.prefix, chunk]);
    if (head.length < MAGIC_LENGTH) {
      this.prefix = Buffer.from(head); // the chunk may be refilled by the caller
      return;
    }
    const format = detectCaptureFormat(head);
    if (format === null) {
      const magic = head.readUInt32BE(0).toString(16).padStart(8, '0');
      this.failure = new CaptureFileError({
        format: 'capture',
        kind: 'bad-magic',
        recordIndex: -1,
        offset: 0,
        detail: `magic number 0x${magic} is neither pcap nor pcapng`,
      });
      return;
    }
    this.inner = createCaptureParser(format, this.options);
    if (this.prefix.length > 0) {
      // Fewer than 4 bytes can hold no complete header: the parser keeps them and asks for more.
      this.inner.push(this.prefix);
      this.inner.next();
      this.prefix = Buffer.alloc(0);
    }
    this.inner.push(chunk);
  }

  next(): Packet | null {
    if (this.inner) return this.inner.next();
    if (this.failure) throw this.failure;
    return null;
  }

  end(): void {
    if (this.inner) {
      this.inner.end();
      return;
    }
    this.failure ??= new CaptureFileError({
      format: 'capture',
      kind: 'truncated',
      recordIndex: -1,
      offset: 0,
      detail: `truncated at end of file: magic number needs ${MAGIC_LENGTH} bytes, ${this.prefix.length} available`,
    });
    throw this.failure;
  }
}

/** Reads all packets of a capture held in memory (each `pkt.data` a view into `bytes`, unless copied). */
export function* parseCaptureBuffer(bytes: Buffer, options?: CaptureParserOptions): Generator<Packet> {
  const parser = new CaptureFileParser(options);
  parser.push(bytes);
  for (let pkt = parser.next(); pkt !== null; pkt = parser.next()) yield pkt;
  parser.end();
}

export interface ReadCaptureOptions extends CaptureParserOptions {
  /** Bytes per read when reading a file by path (default 256 KiB). */
  chunkBytes?: number;
}

/** Where chunks come from: a file read into one reused buffer, or a Readable's own chunks. */
interface ChunkSource {
  read(): Promise<Buffer | null>;
  close(): Promise<void>;
}

/**
 * Reads a file in chunks, one chunk ahead: while the packets of one buffer are consumed, the next read
 * fills the other, so disk and parsing overlap (the copy bench was mostly idle waiting on reads).
 * A buffer is refilled only when the chunk after it is requested, i.e. when every packet borrowed from
 * it has been let go (see CaptureReader).
 */
async function openFileSource(path: string, chunkBytes: number): Promise<ChunkSource> {
  const fh: FileHandle = await open(path, 'r');
  const buffers = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
  let next = 0;
  let failure: unknown = null;
  // Failures are kept, not left as a rejected promise nobody awaits yet (an unhandled rejection).
  const fill = (buf: Buffer) =>
    fh.read(buf, 0, buf.length, null).then(
      (r) => r.bytesRead,
      (err: unknown) => {
        failure = err;
        return -1;
      },
    );
  let pending: Promise<number> | null = fill(buffers[0]!);
  return {
    async read() {
      if (!pending) return null;
      const buf = buffers[next]!;
      const bytesRead = await pending;
      if (bytesRead < 0) throw failure;
      if (bytesRead === 0) {
        pending = null;
        return null;
      }
      next ^= 1;
      pending = fill(buffers[next]!);
      return buf.subarray(0, bytesRead);
    },
    async close() {
      await pending;
      pending = null;
      await fh.close();
    },
  };
}

function streamSource(stream: Readable): ChunkSource {
  const chunks = stream[Symbol.asyncIterator]();
  return {
    async read() {
      const r = await chunks.next();
      if (r.done) return null;
      const chunk: unknown = r.value;
      if (Buffer.isBuffer(chunk)) return chunk;
      if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      throw new TypeError(
        'readCapture: the stream must yield bytes, not strings or objects (no setEncoding)',
      );
    },
    async close() {
      await chunks.return?.();
    },
  };
}

/**
 * The packets of a capture file, in order, as an async iterable. Bytes are pulled from the file or
 * stream only when the packets read so far have been consumed, so a slow consumer slows the reading
 * and memory stays at one chunk plus one partial record.
 *
 * `pkt.data` is borrowed until the next packet is requested (a view into a reused read buffer), unless
 * `copy: true` asks for bytes of its own per packet (slower: bench/capture-read.ts measures both).
 * A corrupt or truncated file throws CaptureFileError after every good packet before the damage.
 * Breaking out of the loop closes the file (or stops consuming and destroys the stream).
 */
export class CaptureReader implements AsyncIterable<Packet> {
  readonly parser: CaptureFileParser;
  /** Bytes pulled from the source so far. */
  bytesRead = 0;
  private started = false;

  constructor(
    private readonly source: string | Readable,
    private readonly options: ReadCaptureOptions = {},
  ) {
    const chunkBytes = options.chunkBytes;
    if (chunkBytes !== undefined && !(Number.isInteger(chunkBytes) && chunkBytes >= 1))
      throw new RangeError(`readCapture: chunkBytes must be a positive integer, got ${chunkBytes}`);
    this.parser = new CaptureFileParser(options);
  }

  get format(): CaptureFormat | null {
    return this.parser.format;
  }
  get packetCount(): number {
    return this.parser.packetCount;
  }

  [Symbol.asyncIterator](): AsyncIterator<Packet, undefined> {
    if (this.started) throw new Error('a CaptureReader can be iterated only once: call readCapture again');
    this.started = true;
    const open = () =>
      typeof this.source === 'string'
        ? openFileSource(this.source, this.options.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES)
        : Promise.resolve(streamSource(this.source));
    return new CaptureIterator(this.parser, open, (n) => {
      this.bytesRead += n;
    });
  }
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * The iterator behind CaptureReader. Written by hand rather than as an async generator: a packet
 * already parsed is returned as a resolved promise, which costs a third of a generator's yield
 * (measured ~50 ns against ~135 ns per packet); only refilling from the source is async.
 */
class CaptureIterator implements AsyncIterator<Packet, undefined> {
  private source: ChunkSource | null = null;
  private finished = false;
  private busy: Promise<IteratorResult<Packet, undefined>> | null = null;

  constructor(
    private readonly parser: CaptureFileParser,
    private readonly open: () => Promise<ChunkSource>,
    private readonly counted: (bytes: number) => void,
  ) {}

  next(): Promise<IteratorResult<Packet, undefined>> {
    if (this.busy) return this.busy.then(() => this.next()); // a caller that did not wait: keep order
    if (this.finished) return Promise.resolve(DONE);
    let pkt: Packet | null;
    try {
      pkt = this.parser.next();
    } catch (err) {
      return this.fail(err);
    }
    if (pkt !== null) return Promise.resolve({ value: pkt, done: false });
    this.busy = this.refill().finally(() => {
      this.busy = null;
    });
    return this.busy;
  }

  async return(): Promise<IteratorResult<Packet, undefined>> {
    this.finished = true;
    await this.close();
    return DONE;
  }

  /** Pulls chunks until a packet is complete, the input ends, or it proves corrupt. */
  private async refill(): Promise<IteratorResult<Packet, undefined>> {
    try {
      this.source ??= await this.open();
      for (;;) {
        const chunk = await this.source.read();
        if (chunk === null) {
          this.parser.end();
          this.finished = true;
          await this.close();
          return DONE;
        }
        this.counted(chunk.length);
        this.parser.push(chunk);
        const pkt = this.parser.next();
        if (pkt !== null) return { value: pkt, done: false };
      }
    } catch (err) {
      return this.fail(err);
    }
  }

  private async fail(err: unknown): Promise<never> {
    this.finished = true;
    await this.close();
    throw err;
  }

  private async close(): Promise<void> {
    const source = this.source;
    this.source = null;
    if (source) await source.close();
  }
}

/** Reads a pcap or pcapng file (path) or stream; see CaptureReader. */
export function readCapture(source: string | Readable, options?: ReadCaptureOptions): CaptureReader {
  return new CaptureReader(source, options);
}

export interface OpenCaptureWriterOptions extends CaptureSinkOptions {
  format: CaptureFormat;
  /** pcap: the file's link type (required). pcapng: the first interface's link type (optional). */
  link?: LinkType;
  /** Nanosecond timestamps (default) or microseconds (truncated). */
  nanosecond?: boolean;
  /** Longest packet prefix kept (default 262144). */
  snaplen?: number;
  /** Default: this host's byte order. */
  byteOrder?: ByteOrder;
  /** pcapng only: interfaces to declare, chosen by pkt.ifIndex (see PcapngWriterOptions). */
  interfaces?: PcapngInterfaceOptions[];
}

/**
 * Opens a writer on a path (created or truncated; rejects if it cannot be opened) or a Writable.
 * Call `close()` when done: it flushes the last batch and ends the sink (`end: false` keeps a
 * given Writable open).
 */
export async function openCaptureWriter(
  target: string | Writable,
  options: OpenCaptureWriterOptions,
): Promise<CaptureWriter> {
  const { format, link, interfaces } = options;
  if (format !== 'pcap' && format !== 'pcapng')
    throw new Error(`openCaptureWriter: format must be 'pcap' or 'pcapng', got '${format as string}'`);
  if (format === 'pcap' && link === undefined)
    throw new Error('openCaptureWriter: a pcap file needs `link` (its one link type)');
  if (format === 'pcap' && interfaces !== undefined)
    throw new Error('openCaptureWriter: `interfaces` needs format pcapng');
  if (typeof target !== 'string') return createWriter(target, options, options.end);
  // Room for a few batches in flight, so reading the next packets overlaps writing the last ones
  // (with the default 16 KiB mark every 256 KiB batch would wait for the disk).
  const file = createWriteStream(target, { highWaterMark: 4 * (options.batchBytes ?? DEFAULT_BATCH_BYTES) });
  await new Promise<void>((resolve, reject) => {
    file.once('open', () => {
      file.off('error', reject);
      resolve();
    });
    file.once('error', reject);
  });
  try {
    return createWriter(file, { ...options, recycleBatches: true }, true);
  } catch (err) {
    file.destroy();
    throw err;
  }
}

function createWriter(
  sink: Writable,
  options: OpenCaptureWriterOptions,
  end: boolean | undefined,
): CaptureWriter {
  const { link, nanosecond, snaplen, byteOrder, interfaces, batchBytes } = options;
  if (options.format === 'pcap')
    return new PcapWriter(sink, { link: link!, nanosecond, snaplen, byteOrder, batchBytes, end });
  return new PcapngWriter(sink, { link, interfaces, nanosecond, snaplen, byteOrder, batchBytes, end });
}

/** Writes every packet of `packets` (waiting for the sink whenever it asks) and closes the writer. */
export async function writeCapture(
  target: string | Writable,
  packets: Iterable<Packet> | AsyncIterable<Packet>,
  options: OpenCaptureWriterOptions,
): Promise<number> {
  const writer = await openCaptureWriter(target, options);
  try {
    for await (const pkt of packets) if (!writer.write(pkt)) await writer.drain();
  } finally {
    await writer.close();
  }
  return writer.packetsWritten;
}
