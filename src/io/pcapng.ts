/**
 * pcapng files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): a sequence of blocks
 * `type(4) totalLength(4) body totalLength(4)`. A Section Header Block (SHB) fixes the byte order and
 * starts a section; Interface Description Blocks (IDB) number the interfaces of that section; packets
 * come in Enhanced (EPB), Simple (SPB) or obsolete Packet Blocks (PB). Every other block is skipped by
 * its length.
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

export const PCAPNG_BLOCK_SHB = 0x0a0d0d0a;
export const PCAPNG_BLOCK_IDB = 0x00000001;
/** Obsolete Packet Block: still written by old tools, read like an EPB with a 16-bit interface id. */
export const PCAPNG_BLOCK_PB = 0x00000002;
export const PCAPNG_BLOCK_SPB = 0x00000003;
export const PCAPNG_BLOCK_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_SHB_USERAPPL = 4;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;

/** Smallest total length of each block type: header, fixed fields, trailing length. */
const MIN_BLOCK = 12;
const MIN_SHB = 28;
const MIN_IDB = 20;
const MIN_EPB = 32;
const MIN_SPB = 16;
const MIN_PB = 32;

const NS_PER_SEC = 1_000_000_000n;
const TWO_POW_32 = 4294967296;
/** Below this high word, hi·2³² + lo is exact in a double. */
const EXACT_HI_LIMIT = 0x200000;
const MAX_U32 = 0xffffffff;

/** One interface of the current section, as its IDB describes it. */
export interface PcapngInterface {
  link: LinkType;
  /** 0 means no limit. */
  snaplen: number;
  /** if_name, when the IDB has one. */
  name?: string;
  /** if_tsresol byte as written (default 6: microseconds); bit 7 set means 2^-n instead of 10^-n. */
  tsresol: number;
  /** if_tsoffset: seconds added to every timestamp of the interface (default 0). */
  tsoffset: bigint;
}

/** True when `b` starts with a Section Header Block type. */
export function isPcapngMagic(b: Buffer): boolean {
  return b.length >= 4 && LITTLE_ENDIAN.u32(b, 0) === PCAPNG_BLOCK_SHB;
}

/** Interface state the parser keeps: the description and its timestamp conversion. */
interface InterfaceState extends PcapngInterface {
  /** Timestamp units per the IDB → ns since the epoch (floored when units are finer than 1 ns). */
  toNs(hi: number, lo: number): bigint;
}

function timestampUnits(hi: number, lo: number): bigint {
  return hi < EXACT_HI_LIMIT ? BigInt(hi * TWO_POW_32 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Chooses once per interface how its timestamp units become ns. 10^-9 and 10^-6 without offset, by
 * far the common cases, get their own conversion; everything else scales with a bigint ratio. Units
 * finer than a nanosecond (10^-10 …, 2^-30 …) are floored to the ns: Packet.ts cannot hold more.
 */
function timestampConverter(tsresol: number, tsoffset: bigint): (hi: number, lo: number) => bigint {
  const offsetNs = tsoffset * NS_PER_SEC;
  if (offsetNs === 0n && tsresol === 9) return timestampUnits;
  if (offsetNs === 0n && tsresol === 6) return (hi, lo) => timestampUnits(hi, lo) * 1000n;
  let mul = 1n;
  let div = 1n;
  if (tsresol & 0x80) {
    mul = NS_PER_SEC;
    div = 1n << BigInt(tsresol & 0x7f);
  } else if (tsresol <= 9) mul = 10n ** BigInt(9 - tsresol);
  else div = 10n ** BigInt(tsresol - 9);
  return (hi, lo) => (timestampUnits(hi, lo) * mul) / div + offsetNs;
}

/**
 * Push parser for pcapng (see CaptureParser for the protocol and the lifetime of `pkt.data`).
 * `pkt.ifIndex` is the interface id within the packet's section (a new SHB starts numbering again),
 * `pkt.link` that interface's link type. A Simple Packet Block carries no timestamp: its packets get
 * ts = 0n and interface 0, and its captured length is min(original length, interface 0's snaplen).
 */
export class PcapngParser extends RecordStreamParser {
  readonly format = 'pcapng' as const;
  /** Sections seen so far (SHBs read). */
  sectionCount = 0;
  /** Byte order of the current section. */
  byteOrder: ByteOrder = 'le';

  private bo: ByteOrderAccess = LITTLE_ENDIAN;
  private ifaces: InterfaceState[] = [];
  private blockIndex = 0;
  /** Total length of the block waiting for its bytes, or -1 while waiting for a block header. */
  private pendingLength = -1;

  constructor(options: CaptureParserOptions = {}) {
    super(options);
  }

  /** The interfaces of the current section, in id order. */
  get interfaces(): readonly PcapngInterface[] {
    return this.ifaces;
  }

  next(): Packet | null {
    if (this.failure) throw this.failure;
    for (;;) {
      if (!this.need(MIN_BLOCK)) return null;
      let b = this.rec;
      let o = this.recOff;
      let bo = this.bo;
      const type = bo.u32(b, o);
      if (type === PCAPNG_BLOCK_SHB) bo = this.sectionByteOrder(b, o);
      else if (this.sectionCount === 0)
        this.fail(
          'bad-magic',
          this.blockIndex,
          this.offset,
          `file does not start with a section header block (block type 0x${type.toString(16).padStart(8, '0')})`,
        );
      const length = bo.u32(b, o + 4);
      if (length > this.maxRecordBytes)
        this.fail(
          'too-large',
          this.blockIndex,
          this.offset,
          `block total length ${length} exceeds the sanity limit of ${this.maxRecordBytes} bytes`,
        );
      if (length < MIN_BLOCK || length % 4 !== 0)
        this.fail(
          'bad-length',
          this.blockIndex,
          this.offset,
          `block total length ${length} is ${length < MIN_BLOCK ? 'below the minimum of 12' : 'not a multiple of 4'}`,
        );
      this.pendingLength = length;
      if (!this.need(length)) return null;
      this.pendingLength = -1;
      b = this.rec;
      o = this.recOff;
      const trailer = bo.u32(b, o + length - 4);
      if (trailer !== length)
        this.fail(
          'length-mismatch',
          this.blockIndex,
          this.offset,
          `block total length ${length} at the start but ${trailer} at the end`,
        );
      let pkt: Packet | null = null;
      if (type === PCAPNG_BLOCK_EPB) pkt = this.enhancedPacket(b, o, length);
      else if (type === PCAPNG_BLOCK_SPB) pkt = this.simplePacket(b, o, length);
      else if (type === PCAPNG_BLOCK_IDB) this.interfaceDescription(b, o, length);
      else if (type === PCAPNG_BLOCK_SHB) this.sectionHeader(b, o, length, bo);
      else if (type === PCAPNG_BLOCK_PB) pkt = this.obsoletePacket(b, o, length);
      this.consume(length);
      this.blockIndex++;
      if (pkt !== null) {
        this.packetCount++;
        return pkt;
      }
    }
  }

  protected headerSeen(): boolean {
    return this.sectionCount > 0;
  }

  protected truncatedAtEnd(have: number): CaptureFileError {
    const what =
      this.pendingLength < 0
        ? `block needs at least ${MIN_BLOCK} bytes`
        : `block needs ${this.pendingLength} bytes (its total length)`;
    return this.failWith(
      'truncated',
      this.blockIndex,
      this.offset,
      `truncated at end of file: ${what}, ${have} available`,
    );
  }

  private enhancedPacket(b: Buffer, o: number, length: number): Packet {
    if (length < MIN_EPB) this.tooShort('enhanced packet', length, MIN_EPB);
    const u32 = this.bo.u32;
    const ifIndex = u32(b, o + 8);
    const caplen = u32(b, o + 20);
    if (caplen > length - MIN_EPB) this.caplenPastBlock(caplen, length - MIN_EPB);
    const iface = this.ifaces[ifIndex];
    if (iface === undefined) this.unknownInterface(ifIndex);
    return {
      data: this.slice(o + 28, caplen),
      ts: iface.toNs(u32(b, o + 12), u32(b, o + 16)),
      link: iface.link,
      origLen: u32(b, o + 24),
      ifIndex,
    };
  }

  private simplePacket(b: Buffer, o: number, length: number): Packet {
    if (length < MIN_SPB) this.tooShort('simple packet', length, MIN_SPB);
    const iface = this.ifaces[0];
    if (iface === undefined)
      this.fail(
        'unknown-interface',
        this.blockIndex,
        this.offset,
        'simple packet block before any interface description',
      );
    const origLen = this.bo.u32(b, o + 8);
    const caplen = iface.snaplen !== 0 && iface.snaplen < origLen ? iface.snaplen : origLen;
    if (caplen > length - MIN_SPB) this.caplenPastBlock(caplen, length - MIN_SPB);
    return { data: this.slice(o + 12, caplen), ts: 0n, link: iface.link, origLen, ifIndex: 0 };
  }

  private obsoletePacket(b: Buffer, o: number, length: number): Packet {
    if (length < MIN_PB) this.tooShort('packet', length, MIN_PB);
    const bo = this.bo;
    const ifIndex = bo.u16(b, o + 8);
    const caplen = bo.u32(b, o + 20);
    if (caplen > length - MIN_PB) this.caplenPastBlock(caplen, length - MIN_PB);
    const iface = this.ifaces[ifIndex];
    if (iface === undefined) this.unknownInterface(ifIndex);
    return {
      data: this.slice(o + 28, caplen),
      ts: iface.toNs(bo.u32(b, o + 12), bo.u32(b, o + 16)),
      link: iface.link,
      origLen: bo.u32(b, o + 24),
      ifIndex,
    };
  }

  private interfaceDescription(b: Buffer, o: number, length: number): void {
    if (length < MIN_IDB) this.tooShort('interface description', length, MIN_IDB);
    const bo = this.bo;
    const iface: PcapngInterface = {
      link: bo.u16(b, o + 8),
      snaplen: bo.u32(b, o + 12),
      tsresol: 6,
      tsoffset: 0n,
    };
    this.forEachOption(b, o + 16, o + length - 4, (code, at, len) => {
      if (code === OPT_IF_TSRESOL) {
        if (len !== 1) this.badOption(code, len, 1);
        iface.tsresol = b[at]!;
      } else if (code === OPT_IF_TSOFFSET) {
        if (len !== 8) this.badOption(code, len, 8);
        iface.tsoffset = bo.order === 'le' ? b.readBigInt64LE(at) : b.readBigInt64BE(at);
      } else if (code === OPT_IF_NAME) iface.name = b.toString('utf8', at, at + len);
    });
    this.ifaces.push({ ...iface, toNs: timestampConverter(iface.tsresol, iface.tsoffset) });
  }

  /** Reads the byte-order magic of an SHB and switches to that order (lengths are read in it). */
  private sectionByteOrder(b: Buffer, o: number): ByteOrderAccess {
    const magic = LITTLE_ENDIAN.u32(b, o + 8);
    if (magic === PCAPNG_BYTE_ORDER_MAGIC) return LITTLE_ENDIAN;
    if (BIG_ENDIAN.u32(b, o + 8) === PCAPNG_BYTE_ORDER_MAGIC) return BIG_ENDIAN;
    this.fail(
      'bad-magic',
      this.blockIndex,
      this.offset,
      `section header byte-order magic 0x${BIG_ENDIAN.u32(b, o + 8)
        .toString(16)
        .padStart(8, '0')} is neither 1a2b3c4d nor 4d3c2b1a`,
    );
  }

  private sectionHeader(b: Buffer, o: number, length: number, bo: ByteOrderAccess): void {
    if (length < MIN_SHB) this.tooShort('section header', length, MIN_SHB);
    const major = bo.u16(b, o + 12);
    if (major !== 1)
      this.fail('unsupported', this.blockIndex, this.offset, `pcapng major version ${major} is not 1`);
    this.bo = bo;
    this.byteOrder = bo.order;
    this.ifaces = [];
    this.sectionCount++;
  }

  /** Calls `visit(code, valueOffset, valueLength)` for each option in b[from, to). */
  private forEachOption(
    b: Buffer,
    from: number,
    to: number,
    visit: (code: number, at: number, len: number) => void,
  ): void {
    const u16 = this.bo.u16;
    let at = from;
    while (at + 4 <= to) {
      const code = u16(b, at);
      const len = u16(b, at + 2);
      if (code === OPT_ENDOFOPT) return;
      const value = at + 4;
      if (value + len > to)
        this.fail(
          'malformed',
          this.blockIndex,
          this.offset,
          `option ${code} of length ${len} runs past the end of its block`,
        );
      visit(code, value, len);
      at = value + ((len + 3) & ~3);
    }
  }

  private tooShort(what: string, length: number, min: number): never {
    this.fail(
      'bad-length',
      this.blockIndex,
      this.offset,
      `${what} block total length ${length} is below its minimum of ${min}`,
    );
  }

  private caplenPastBlock(caplen: number, room: number): never {
    this.fail(
      'bad-length',
      this.blockIndex,
      this.offset,
      `captured length ${caplen} exceeds the ${room} bytes the block holds`,
    );
  }

  private unknownInterface(ifIndex: number): never {
    this.fail(
      'unknown-interface',
      this.blockIndex,
      this.offset,
      `interface id ${ifIndex} but the section describes ${this.ifaces.length} interface(s)`,
    );
  }

  private badOption(code: number, len: number, want: number): never {
    this.fail(
      'malformed',
      this.blockIndex,
      this.offset,
      `option ${code} has length ${len}, expected ${want}`,
    );
  }
}

/** An interface to declare in the written file. */
export interface PcapngInterfaceOptions {
  link: LinkType;
  /** Default: the writer's snaplen. */
  snaplen?: number;
  name?: string;
}

export interface PcapngWriterOptions extends CaptureSinkOptions {
  /**
   * Interfaces to declare, in id order; each packet then goes to the interface `pkt.ifIndex` (0 when
   * missing) and must have its link type. Without this, one interface is declared per distinct link
   * type, in order of first appearance (starting with `link` when given), and `pkt.ifIndex` is ignored.
   */
  interfaces?: PcapngInterfaceOptions[];
  /** Link type of the first interface when `interfaces` is not given. */
  link?: LinkType;
  /** Longest packet prefix kept (default 262144); longer packets are cut and keep their wire length. */
  snaplen?: number;
  /** Nanosecond timestamps (if_tsresol 9, the default) or microseconds (if_tsresol absent: truncated to µs). */
  nanosecond?: boolean;
  /** Byte order of the section (default: this host's). */
  byteOrder?: ByteOrder;
  /** shb_userappl option; default 'pktveil'. */
  application?: string;
}

const DEFAULT_SNAPLEN = 262144;

/**
 * Writes one pcapng section: an SHB, IDBs as described by the options, then one EPB per packet.
 * Each packet is copied into the batch at once, so borrowed packets are fine. Captured length is
 * min(data.length, snaplen); wire length `origLen` (or data.length when missing or smaller).
 * Throws RangeError for a packet its interfaces cannot hold or a negative timestamp.
 */
export class PcapngWriter extends BatchedRecordWriter {
  readonly format = 'pcapng' as const;
  readonly byteOrder: ByteOrder;
  readonly nanosecond: boolean;
  readonly snaplen: number;

  private readonly bo: ByteOrderAccess;
  /** Declared interfaces, in id order. */
  private readonly declared: { link: LinkType; snaplen: number }[] = [];
  /** Whether interfaces were given (packets pick one by ifIndex) or are made per link type. */
  private readonly fixedInterfaces: boolean;
  private readonly byLink = new Map<LinkType, number>();

  constructor(sink: Writable, options: PcapngWriterOptions = {}) {
    super(sink, options);
    this.byteOrder = options.byteOrder ?? (endianness() === 'LE' ? 'le' : 'be');
    this.bo = byteOrderAccess(this.byteOrder);
    this.nanosecond = options.nanosecond ?? true;
    this.snaplen = checkSnaplen(options.snaplen ?? DEFAULT_SNAPLEN);
    this.writeSectionHeader(options.application ?? 'pktveil');
    this.fixedInterfaces = options.interfaces !== undefined;
    if (options.interfaces) {
      if (options.interfaces.length === 0)
        throw new RangeError('pcapng interfaces: give at least one, or none at all');
      for (const iface of options.interfaces) this.declareInterface(iface);
    } else if (options.link !== undefined) this.declareInterface({ link: options.link });
  }

  acceptsLink(link: LinkType): boolean {
    if (!this.fixedInterfaces) return Number.isInteger(link) && link >= 0 && link <= 0xffff;
    return this.declared.some((iface) => iface.link === link);
  }

  write(pkt: Packet): boolean {
    const ts = pkt.ts;
    if (ts < 0n) throw new RangeError(`pcapng timestamp ${ts} ns is negative`);
    let ifIndex: number;
    if (this.fixedInterfaces) {
      ifIndex = pkt.ifIndex ?? 0;
      const iface = this.declared[ifIndex];
      if (iface === undefined)
        throw new RangeError(
          `pcapng writer: packet names interface ${ifIndex}, ${this.declared.length} declared`,
        );
      if (iface.link !== pkt.link)
        throw new RangeError(
          `pcapng writer: interface ${ifIndex} has link type ${iface.link}, packet has ${pkt.link}`,
        );
    } else {
      const known = this.byLink.get(pkt.link);
      ifIndex = known === undefined ? this.declareInterface({ link: pkt.link }) : known;
    }
    const units = this.nanosecond ? ts : ts / 1000n;
    const data = pkt.data;
    const snaplen = this.declared[ifIndex]!.snaplen;
    const caplen = Math.min(data.length, snaplen);
    const origLen = pkt.origLen !== undefined && pkt.origLen > data.length ? pkt.origLen : data.length;
    const padded = (caplen + 3) & ~3;
    const length = MIN_EPB + padded;
    this.room(length);
    const b = this.batch;
    const o = this.batchLen;
    const put32 = this.bo.put32;
    put32(b, o, PCAPNG_BLOCK_EPB);
    put32(b, o + 4, length);
    put32(b, o + 8, ifIndex);
    put32(b, o + 12, Number(units >> 32n));
    put32(b, o + 16, Number(units & 0xffffffffn));
    put32(b, o + 20, caplen);
    put32(b, o + 24, Math.min(origLen, MAX_U32));
    b.set(caplen === data.length ? data : data.subarray(0, caplen), o + 28); // set() beats Buffer#copy for small copies
    for (let i = o + 28 + caplen; i < o + 28 + padded; i++) b[i] = 0;
    put32(b, o + length - 4, length);
    this.batchLen = o + length;
    this.packetsWritten++;
    return !this.sink.writableNeedDrain;
  }

  private writeSectionHeader(application: string): void {
    const app = Buffer.from(application, 'utf8');
    const appOption = app.length > 0 ? 4 + ((app.length + 3) & ~3) : 0;
    const length = MIN_SHB + appOption + (appOption > 0 ? 4 : 0);
    this.room(length);
    const b = this.batch;
    const o = this.batchLen;
    b.fill(0, o, o + length);
    const { put16, put32 } = this.bo;
    put32(b, o, PCAPNG_BLOCK_SHB);
    put32(b, o + 4, length);
    put32(b, o + 8, PCAPNG_BYTE_ORDER_MAGIC);
    put16(b, o + 12, 1);
    put16(b, o + 14, 0);
    put32(b, o + 16, MAX_U32); // section length -1: not given
    put32(b, o + 20, MAX_U32);
    if (appOption > 0) {
      put16(b, o + 24, OPT_SHB_USERAPPL);
      put16(b, o + 26, app.length);
      app.copy(b, o + 28);
      // opt_endofopt (zeros) follows the padded value
    }
    put32(b, o + length - 4, length);
    this.batchLen = o + length;
  }

  /** Writes an IDB and returns its interface id. */
  private declareInterface(iface: PcapngInterfaceOptions): number {
    if (!Number.isInteger(iface.link) || iface.link < 0 || iface.link > 0xffff)
      throw new RangeError(`pcapng link type must be an integer 0 … 65535, got ${iface.link}`);
    const snaplen = checkSnaplen(iface.snaplen ?? this.snaplen);
    const name = iface.name === undefined ? null : Buffer.from(iface.name, 'utf8');
    const nameOption = name ? 4 + ((name.length + 3) & ~3) : 0;
    const resolOption = this.nanosecond ? 8 : 0;
    const options = nameOption + resolOption;
    const length = MIN_IDB + options + (options > 0 ? 4 : 0);
    this.room(length);
    const b = this.batch;
    const o = this.batchLen;
    b.fill(0, o, o + length);
    const { put16, put32 } = this.bo;
    put32(b, o, PCAPNG_BLOCK_IDB);
    put32(b, o + 4, length);
    put16(b, o + 8, iface.link);
    put32(b, o + 12, snaplen);
    let at = o + 16;
    if (name) {
      put16(b, at, OPT_IF_NAME);
      put16(b, at + 2, name.length);
      name.copy(b, at + 4);
      at += nameOption;
    }
    if (this.nanosecond) {
      put16(b, at, OPT_IF_TSRESOL);
      put16(b, at + 2, 1);
      b[at + 4] = 9;
    }
    put32(b, o + length - 4, length);
    this.batchLen = o + length;
    const id = this.declared.length;
    this.declared.push({ link: iface.link, snaplen });
    if (!this.fixedInterfaces && !this.byLink.has(iface.link)) this.byLink.set(iface.link, id);
    return id;
  }
}

function checkSnaplen(snaplen: number): number {
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > MAX_U32)
    throw new RangeError(`pcapng snaplen must be an integer 1 … 2³²−1, got ${snaplen}`);
  return snaplen;
}
