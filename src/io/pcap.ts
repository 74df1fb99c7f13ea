/**
 * Classic pcap files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html): a 24-byte file
 * header, then records of a 16-byte header (seconds, µs or ns fraction, captured length, wire length)
 * and the captured bytes. Both byte orders and both resolutions are read; any link type passes through.
 */
import { endianness } from 'node:os';
import type { Writable } from 'node:stream';
import type { LinkType, Packet } from '../packet.js';
import { BatchedRecordWriter, type CaptureSinkOptions } from './batched-record-writer.js';
import {
  BIG_ENDIAN,
  type ByteOrder,
  type ByteOrderAccess,
  byteOrderAccess,
  LITTLE_ENDIAN,
} from './byte-order.js';
import type { CaptureFileError } from './capture-file-error.js';
import { type CaptureParserOptions, RecordStreamParser } from './record-stream-parser.js';

export const PCAP_MAGIC_MICROS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOS = 0xa1b23c4d;
/** Kuznetzov's modified pcap (24-byte record headers), recognised only to say we do not read it. */
const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
export const PCAP_FILE_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;
/** Snap length written when none is given: libpcap's MAXIMUM_SNAPLEN. */
export const PCAP_DEFAULT_SNAPLEN = 262144;

const NS_PER_SEC = 1_000_000_000n;
const MAX_U32 = 0xffffffff;

/** What the file header says. */
export interface PcapHeader {
  byteOrder: ByteOrder;
  nanosecond: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  /** LINKTYPE_* value (the low 26 bits of the link-type field). */
  link: LinkType;
  /** Bytes of frame check sequence at the end of each packet, when the header says (else 0). */
  fcsLength: number;
}

/** True when `b` starts with a pcap magic number in either byte order, either resolution (or modified pcap). */
export function isPcapMagic(b: Buffer): boolean {
  if (b.length < 4) return false;
  const le = LITTLE_ENDIAN.u32(b, 0);
  const be = BIG_ENDIAN.u32(b, 0);
  // The modified-pcap magic counts too, so that the pcap parser can say it does not read that variant.
  for (const magic of [PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_MAGIC_MODIFIED])
    if (le === magic || be === magic) return true;
  return false;
}

/**
 * Push parser for classic pcap (see CaptureParser for the protocol and the lifetime of `pkt.data`).
 * Every packet has `ifIndex` 0 and `origLen` from the record; a record whose captured length exceeds
 * the file's snap length is accepted as libpcap does, one beyond `maxRecordBytes` is corruption.
 */
export class PcapParser extends RecordStreamParser {
  readonly format = 'pcap' as const;
  /** The file header, once its 24 bytes have been read. */
  header: PcapHeader | null = null;

  private bo: ByteOrderAccess = LITTLE_ENDIAN;
  private nanosecond = false;
  private link: LinkType = 0;
  /** Captured length of the record waiting for its bytes, or -1 while waiting for a record header. */
  private pendingCaplen = -1;
  /** Seconds field of the last record and its value in ns: consecutive records share a second. */
  private lastSec = -1;
  private lastSecNs = 0n;

  constructor(options: CaptureParserOptions = {}) {
    super(options);
  }

  next(): Packet | null {
    if (this.failure) throw this.failure;
    if (this.header === null && !this.readHeader()) return null;
    if (!this.need(PCAP_RECORD_HEADER_LENGTH)) return null;
    const u32 = this.bo.u32;
    const caplen = u32(this.rec, this.recOff + 8);
    if (caplen > this.maxRecordBytes)
      this.fail(
        'too-large',
        this.packetCount,
        this.offset,
        `captured length ${caplen} exceeds the sanity limit of ${this.maxRecordBytes} bytes`,
      );
    this.pendingCaplen = caplen;
    const size = PCAP_RECORD_HEADER_LENGTH + caplen;
    if (!this.need(size)) return null;
    this.pendingCaplen = -1;
    const b = this.rec;
    const o = this.recOff;
    const sec = u32(b, o);
    const frac = u32(b, o + 4);
    // Consecutive records mostly share a second: one bigint product per second, one small add per record.
    if (sec !== this.lastSec) {
      this.lastSec = sec;
      this.lastSecNs = BigInt(sec) * NS_PER_SEC;
    }
    const ts = this.lastSecNs + BigInt(this.nanosecond ? frac : frac * 1000);
    const pkt: Packet = {
      data: this.slice(o + PCAP_RECORD_HEADER_LENGTH, caplen),
      ts,
      link: this.link,
      origLen: u32(b, o + 12),
      ifIndex: 0,
    };
    this.consume(size);
    this.packetCount++;
    return pkt;
  }

  protected headerSeen(): boolean {
    return this.header !== null;
  }

  protected truncatedAtEnd(have: number): CaptureFileError {
    if (this.header === null)
      return this.failWith(
        'truncated',
        -1,
        0,
        `truncated at end of file: file header needs ${PCAP_FILE_HEADER_LENGTH} bytes, ${have} available`,
      );
    const need =
      this.pendingCaplen < 0 ? PCAP_RECORD_HEADER_LENGTH : PCAP_RECORD_HEADER_LENGTH + this.pendingCaplen;
    const what =
      this.pendingCaplen < 0
        ? 'record header needs 16 bytes'
        : `record needs ${need} bytes (16-byte header + ${this.pendingCaplen} captured)`;
    return this.failWith(
      'truncated',
      this.packetCount,
      this.offset,
      `truncated at end of file: ${what}, ${have} available`,
    );
  }

  private readHeader(): boolean {
    if (!this.need(PCAP_FILE_HEADER_LENGTH)) return false;
    const b = this.rec;
    const o = this.recOff;
    const magicLe = LITTLE_ENDIAN.u32(b, o);
    const magicBe = BIG_ENDIAN.u32(b, o);
    let order: ByteOrder;
    if (magicLe === PCAP_MAGIC_MICROS || magicLe === PCAP_MAGIC_NANOS) order = 'le';
    else if (magicBe === PCAP_MAGIC_MICROS || magicBe === PCAP_MAGIC_NANOS) order = 'be';
    else if (magicLe === PCAP_MAGIC_MODIFIED || magicBe === PCAP_MAGIC_MODIFIED)
      this.fail('unsupported', -1, 0, 'modified pcap (magic a1b2cd34) is not supported');
    else this.fail('bad-magic', -1, 0, `magic number 0x${magicBe.toString(16).padStart(8, '0')} is not pcap`);
    const bo = byteOrderAccess(order);
    const versionMajor = bo.u16(b, o + 4);
    if (versionMajor !== 2) this.fail('unsupported', -1, 0, `pcap version ${versionMajor} is not 2`);
    const linkField = bo.u32(b, o + 20);
    this.bo = bo;
    this.nanosecond = bo.u32(b, o) === PCAP_MAGIC_NANOS;
    this.link = linkField & 0x03ffffff;
    this.header = {
      byteOrder: order,
      nanosecond: this.nanosecond,
      versionMajor,
      versionMinor: bo.u16(b, o + 6),
      snaplen: bo.u32(b, o + 16),
      link: this.link,
      fcsLength: linkField & 0x04000000 ? (linkField >>> 28) * 2 : 0,
    };
    this.consume(PCAP_FILE_HEADER_LENGTH);
    return true;
  }
}

export interface PcapWriterOptions extends CaptureSinkOptions {
  /** Link type of every packet in the file (pcap has one per file). */
  link: LinkType;
  /** Longest packet prefix kept (default 262144); longer packets are cut and keep their wire length. */
  snaplen?: number;
  /**
   * Nanosecond timestamps (magic a1b23c4d; the default) or microseconds (a1b2c3d4). Writing µs
   * truncates each timestamp to the microsecond below it: sub-µs digits are lost, never rounded up.
   */
  nanosecond?: boolean;
  /** Byte order of every header field (default: this host's, little endian on x86 and ARM). */
  byteOrder?: ByteOrder;
}

/**
 * Writes classic pcap. Each packet is copied into the batch at once, so borrowed packets are fine.
 * Its captured length is min(data.length, snaplen) and its wire length `origLen`, or data.length when
 * that is missing or smaller than the bytes at hand (the bytes are the truth, the metadata went stale).
 * Throws RangeError for a packet of another link type or a timestamp outside 0 … 2³²−1 seconds.
 */
export class PcapWriter extends BatchedRecordWriter {
  readonly format = 'pcap' as const;
  readonly link: LinkType;
  readonly snaplen: number;
  readonly nanosecond: boolean;
  readonly byteOrder: ByteOrder;

  private readonly bo: ByteOrderAccess;
  /** Start of the second of the last packet, in ns, and that second: consecutive packets share it. */
  private secStartNs = 0n;
  private sec = 0;

  constructor(sink: Writable, options: PcapWriterOptions) {
    super(sink, options);
    this.link = options.link;
    this.snaplen = options.snaplen ?? PCAP_DEFAULT_SNAPLEN;
    this.nanosecond = options.nanosecond ?? true;
    this.byteOrder = options.byteOrder ?? (endianness() === 'LE' ? 'le' : 'be');
    if (!Number.isInteger(this.link) || this.link < 0 || this.link > 0x03ffffff)
      throw new RangeError(`pcap link type must be an integer 0 … 0x3ffffff, got ${this.link}`);
    if (!Number.isInteger(this.snaplen) || this.snaplen < 1 || this.snaplen > MAX_U32)
      throw new RangeError(`pcap snaplen must be an integer 1 … 2³²−1, got ${this.snaplen}`);
    this.bo = byteOrderAccess(this.byteOrder);
    this.room(PCAP_FILE_HEADER_LENGTH);
    const b = this.batch;
    const put16 = this.bo.put16;
    const put32 = this.bo.put32;
    put32(b, 0, this.nanosecond ? PCAP_MAGIC_NANOS : PCAP_MAGIC_MICROS);
    put16(b, 4, 2);
    put16(b, 6, 4);
    put32(b, 8, 0); // thiszone: timestamps are UTC
    put32(b, 12, 0); // sigfigs
    put32(b, 16, this.snaplen);
    put32(b, 20, this.link);
    this.batchLen = PCAP_FILE_HEADER_LENGTH;
  }

  acceptsLink(link: LinkType): boolean {
    return link === this.link;
  }

  write(pkt: Packet): boolean {
    if (pkt.link !== this.link)
      throw new RangeError(
        `pcap file has link type ${this.link}, packet has ${pkt.link}: use pcapng for mixed links`,
      );
    const ts = pkt.ts;
    let nsInSec = ts - this.secStartNs;
    if (nsInSec < 0n || nsInSec >= NS_PER_SEC) {
      if (ts < 0n || ts >= 0x1_0000_0000n * NS_PER_SEC)
        throw new RangeError(`pcap timestamp ${ts} ns is outside 0 … 2³²−1 seconds`);
      this.sec = Number(ts / NS_PER_SEC);
      this.secStartNs = BigInt(this.sec) * NS_PER_SEC;
      nsInSec = ts - this.secStartNs;
    }
    const frac = this.nanosecond ? Number(nsInSec) : Math.floor(Number(nsInSec) / 1000);
    const data = pkt.data;
    const caplen = Math.min(data.length, this.snaplen);
    const origLen = pkt.origLen !== undefined && pkt.origLen > data.length ? pkt.origLen : data.length;
    const size = PCAP_RECORD_HEADER_LENGTH + caplen;
    this.room(size);
    const b = this.batch;
    const o = this.batchLen;
    const put32 = this.bo.put32;
    put32(b, o, this.sec);
    put32(b, o + 4, frac);
    put32(b, o + 8, caplen);
    put32(b, o + 12, Math.min(origLen, MAX_U32));
    b.set(caplen === data.length ? data : data.subarray(0, caplen), o + PCAP_RECORD_HEADER_LENGTH); // set() beats Buffer#copy for small copies
    this.batchLen = o + size;
    this.packetsWritten++;
    return !this.sink.writableNeedDrain;
  }
}
