import type { Packet } from '../packet.js';
import { CaptureFileError, type CaptureFileErrorKind, type CaptureFormat } from './capture-file-error.js';

const EMPTY = Buffer.alloc(0);
/** A carry buffer grown past this for one huge record is let go once the record is consumed. */
const CARRY_KEEP_BYTES = 1 << 20;

/**
 * Copies of small packets share slabs of this size, so a packet kept long keeps up to this much alive;
 * a consumer that keeps a few packets out of many should read borrowed and clonePacket() those few.
 */
const COPY_SLAB_BYTES = 64 * 1024;

/** Largest record (pcap caplen, pcapng block) a parser accepts unless told otherwise: 256 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024;

export interface CaptureParserOptions {
  /**
   * Give every packet bytes of its own (carved from 64 KiB slabs shared by neighbouring packets)
   * instead of a view into the parser's buffers. Default false: `pkt.data` is borrowed until the next
   * call to `next()` (see CaptureParser). Copying costs time per packet (bench/capture-read.ts).
   */
  copy?: boolean;
  /** Sanity limit for one record's length; larger lengths are reported as corruption. */
  maxRecordBytes?: number;
}

/**
 * A push parser for a capture file: feed it chunks in file order, take packets out.
 *
 * ```ts
 * parser.push(chunk);
 * for (let pkt = parser.next(); pkt !== null; pkt = parser.next()) use(pkt);
 * // … more chunks …
 * parser.end(); // throws if the input stopped inside a record
 * ```
 *
 * Lifetime of `pkt.data` (unless `copy: true`): a view into the pushed chunk or into the parser's carry
 * buffer, valid until the next call to `next()`. A chunk is borrowed until `next()` returns null; after
 * that the parser keeps no reference to it (a partial record at its end has been copied into the carry
 * buffer), so the caller may refill the same buffer.
 *
 * `next()` throws CaptureFileError on the first bad record, after every record before it was returned,
 * and keeps throwing the same error after that.
 */
export interface CaptureParser {
  /** null until the input has shown which format it is (CaptureFileParser). */
  readonly format: CaptureFormat | null;
  /** Bytes of input consumed as complete headers and records: the file offset of the next record. */
  readonly offset: number;
  /** Packets returned so far. */
  readonly packetCount: number;
  push(chunk: Buffer): void;
  next(): Packet | null;
  end(): void;
}

/**
 * The chunk bookkeeping shared by the pcap and pcapng parsers: `need(n)` makes the next n bytes
 * contiguous at `rec[recOff]` (within the current chunk when they fit, otherwise in a carry buffer that
 * gathers a record spanning chunks), and `consume(n)` moves past them.
 */
export abstract class RecordStreamParser implements CaptureParser {
  abstract readonly format: CaptureFormat;
  offset = 0;
  packetCount = 0;

  protected readonly copyData: boolean;
  protected readonly maxRecordBytes: number;
  /** After need(n) returned true: the n bytes are rec[recOff, recOff + n). */
  protected rec: Buffer = EMPTY;
  protected recOff = 0;
  protected failure: CaptureFileError | null = null;

  private slab: Buffer = EMPTY;
  private slabPos = 0;
  private chunk: Buffer = EMPTY;
  private chunkPos = 0;
  private carry: Buffer = EMPTY;
  private carryLen = 0;
  private inCarry = false;
  private ended = false;

  constructor(options: CaptureParserOptions = {}) {
    this.copyData = options.copy ?? false;
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  }

  push(chunk: Buffer): void {
    if (this.ended) throw new Error('push() after end(): create a new parser for new input');
    if (this.chunkPos < this.chunk.length)
      throw new Error(
        'push() while the previous chunk still holds records: call next() until it returns null',
      );
    this.chunk = chunk;
    this.chunkPos = 0;
  }

  abstract next(): Packet | null;

  /** End of input: throws the pending error, or a truncation error when a partial record remains. */
  end(): void {
    this.ended = true;
    if (this.failure) throw this.failure;
    if (this.buffered > 0 || !this.headerSeen()) throw this.truncatedAtEnd(this.buffered);
  }

  /** Bytes received but not yet consumed. */
  get buffered(): number {
    return (this.inCarry ? this.carryLen : 0) + this.chunk.length - this.chunkPos;
  }

  /** Whether the file header has been parsed (an empty input is a truncated file, not an empty one). */
  protected abstract headerSeen(): boolean;
  /** The error for input that ended with `have` bytes of an unfinished header or record. */
  protected abstract truncatedAtEnd(have: number): CaptureFileError;

  protected need(n: number): boolean {
    if (!this.inCarry) {
      const avail = this.chunk.length - this.chunkPos;
      if (avail >= n) {
        this.rec = this.chunk;
        this.recOff = this.chunkPos;
        return true;
      }
      if (avail === 0) return false;
      // The record runs past this chunk: keep its start in the carry and let go of the chunk.
      this.growCarry(Math.max(n, avail), 0);
      this.chunk.copy(this.carry, 0, this.chunkPos);
      this.carryLen = avail;
      this.chunkPos = this.chunk.length;
      this.inCarry = true;
      return false;
    }
    if (this.carryLen < n) {
      this.growCarry(n, this.carryLen);
      const take = Math.min(n - this.carryLen, this.chunk.length - this.chunkPos);
      this.chunk.copy(this.carry, this.carryLen, this.chunkPos, this.chunkPos + take);
      this.carryLen += take;
      this.chunkPos += take;
      if (this.carryLen < n) return false;
    }
    this.rec = this.carry;
    this.recOff = 0;
    return true;
  }

  protected consume(n: number): void {
    this.offset += n;
    if (!this.inCarry) {
      this.chunkPos += n;
      return;
    }
    if (this.carryLen > n) {
      this.carry.copyWithin(0, n, this.carryLen);
      this.carryLen -= n;
      return;
    }
    this.carryLen = 0;
    this.inCarry = false;
    if (this.carry.length > CARRY_KEEP_BYTES) this.carry = EMPTY;
  }

  /** The packet bytes rec[start, start + length): a view, or a copy when the parser was asked for copies. */
  protected slice(start: number, length: number): Buffer {
    if (!this.copyData) return this.rec.subarray(start, start + length);
    if (length > COPY_SLAB_BYTES / 4) {
      const own = Buffer.allocUnsafe(length);
      this.rec.copy(own, 0, start, start + length);
      return own;
    }
    // Copies are carved from a slab as Buffer.allocUnsafe carves from its 8 KiB pool, without its
    // per-call overhead (measured about 15% less time per packet of ~700 bytes).
    if (this.slabPos + length > this.slab.length) {
      this.slab = Buffer.allocUnsafe(COPY_SLAB_BYTES);
      this.slabPos = 0;
    }
    const pos = this.slabPos;
    this.slab.set(this.rec.subarray(start, start + length), pos);
    this.slabPos = (pos + length + 7) & ~7;
    return this.slab.subarray(pos, pos + length);
  }

  /** Records the first error, which next() and end() throw from then on, and throws it. */
  protected fail(kind: CaptureFileErrorKind, recordIndex: number, offset: number, detail: string): never {
    throw this.failWith(kind, recordIndex, offset, detail);
  }

  /** Records the first error, which next() and end() throw from then on, and returns it. */
  protected failWith(
    kind: CaptureFileErrorKind,
    recordIndex: number,
    offset: number,
    detail: string,
  ): CaptureFileError {
    this.failure = new CaptureFileError({ format: this.format, kind, recordIndex, offset, detail });
    return this.failure;
  }

  private growCarry(n: number, keep: number): void {
    if (this.carry.length >= n) return;
    const grown = Buffer.allocUnsafe(Math.max(n, Math.min(2 * this.carry.length, this.maxRecordBytes), 4096));
    this.carry.copy(grown, 0, 0, keep);
    this.carry = grown;
  }
}
