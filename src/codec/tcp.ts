import { foldChecksum, onesSum } from './checksum.js';
import { type DecodeError, malformed, truncated } from './decode-error.js';

/** Length of a TCP header without options (data offset 5). */
export const TCP_HEADER_LENGTH = 20;
/** Longest TCP header: data offset 15, i.e. 40 bytes of options. */
export const TCP_MAX_HEADER_LENGTH = 60;
export const TCP_PROTOCOL = 6;

/** Bits of the 9-bit flags field (RFC 9293 §3.1, RFC 3168, RFC 3540), as `flags` returns it. */
export const TcpFlags = {
  FIN: 0x001,
  SYN: 0x002,
  RST: 0x004,
  PSH: 0x008,
  ACK: 0x010,
  URG: 0x020,
  ECE: 0x040,
  CWR: 0x080,
  NS: 0x100,
} as const;

/** Option kinds pktveil parses (IANA "TCP Option Kind Numbers"); others are kept as raw bytes. */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Returned by the option iterator when the options are exhausted (or after EOL / a malformed option). */
export const TCP_OPTION_END = -1;
/** Returned by the option iterator at an option that does not fit; `checkOptions()` says why. */
export const TCP_OPTION_MALFORMED = -2;

/** Total length (kind and length bytes included) each parsed kind must have; SACK is checked apart. */
const FIXED_OPTION_LENGTH: Record<number, number> = {
  [TcpOptionKind.MSS]: 4,
  [TcpOptionKind.WINDOW_SCALE]: 3,
  [TcpOptionKind.SACK_PERMITTED]: 2,
  [TcpOptionKind.TIMESTAMPS]: 10,
};
const OPTION_NAMES: Record<number, string> = {
  [TcpOptionKind.MSS]: 'MSS',
  [TcpOptionKind.WINDOW_SCALE]: 'window scale',
  [TcpOptionKind.SACK_PERMITTED]: 'SACK-permitted',
  [TcpOptionKind.SACK]: 'SACK',
  [TcpOptionKind.TIMESTAMPS]: 'timestamps',
};

/** A SACK option's length must be 2 + 8·n with 1 ≤ n ≤ 4 (n = 4 fills the whole option space). */
function sackLengthOk(len: number): boolean {
  return len >= 10 && len <= 34 && (len - 2) % 8 === 0;
}

function optionLengthOk(kind: number, len: number): boolean {
  if (kind === TcpOptionKind.SACK) return sackLengthOk(len);
  const fixed = FIXED_OPTION_LENGTH[kind];
  return fixed === undefined || len === fixed;
}

/**
 * Zero-copy view of a TCP segment (RFC 9293) at `buf[off]`.
 * `bind` validates the fixed header and the data offset once; after it returns null every header getter
 * is safe without further bounds checks. Options are checked separately (`checkOptions`), so a segment
 * with broken options still yields its ports, sequence numbers and flags.
 *
 * Options are walked without allocating: `firstOption()` / `nextOption()` return the kind of the option
 * they stop on and leave its position in `optOffset` / `optLength`; the `opt*` getters read its fields.
 */
export class TcpView {
  buf: Buffer = Buffer.alloc(0);
  off = 0;
  /** Segment length on the wire (header + payload), as the IP layer gives it. */
  length = 0;
  /** Bytes of this segment present in `buf` (less than `length` when the capture was cut short). */
  captured = 0;

  /** Kind of the option the iterator stands on, or TCP_OPTION_END / TCP_OPTION_MALFORMED. */
  optKind = TCP_OPTION_END;
  /** Offset in `buf` of that option's kind byte. */
  optOffset = 0;
  /** Its total length in bytes (1 for EOL and NOP). */
  optLength = 0;

  /**
   * Binds to the segment at buf[off, capturedEnd). `wireLength` is how many bytes the IP layer says the
   * segment has; it defaults to everything captured.
   */
  bind(
    buf: Buffer,
    off: number,
    capturedEnd = buf.length,
    wireLength = capturedEnd - off,
  ): DecodeError | null {
    this.buf = buf;
    this.off = off;
    this.length = wireLength;
    this.optKind = TCP_OPTION_END;
    const have = capturedEnd > off ? capturedEnd - off : 0;
    this.captured = Math.min(have, wireLength);
    // The common case in few bytecodes (so the JIT inlines bind into parsers); diagnose() says what failed.
    if (have >= TCP_HEADER_LENGTH) {
      const headerLength = (buf[off + 12]! >>> 4) << 2;
      if (headerLength >= TCP_HEADER_LENGTH && headerLength <= wireLength && headerLength <= have)
        return null;
    }
    return this.diagnose(have, wireLength);
  }

  /** The exact reason bind refused the header (cold path). */
  private diagnose(have: number, wireLength: number): DecodeError {
    const off = this.off;
    if (have < TCP_HEADER_LENGTH) return truncated('tcp', off, TCP_HEADER_LENGTH, have);
    if (wireLength < TCP_HEADER_LENGTH)
      return malformed('tcp', off, `the IP layer carries ${wireLength} bytes, less than the 20-byte header`);
    const dataOffset = this.dataOffset;
    if (dataOffset < 5) return malformed('tcp', off, `data offset ${dataOffset} is below the minimum of 5`);
    const headerLength = dataOffset * 4;
    if (headerLength > wireLength)
      return malformed(
        'tcp',
        off,
        `data offset ${dataOffset} (${headerLength} bytes) exceeds the ${wireLength} bytes the IP layer carries`,
      );
    return truncated('tcp', off, headerLength, have);
  }

  get srcPort(): number {
    return (this.buf[this.off]! << 8) | this.buf[this.off + 1]!;
  }
  set srcPort(v: number) {
    this.buf.writeUInt16BE(v, this.off);
  }
  get dstPort(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  set dstPort(v: number) {
    this.buf.writeUInt16BE(v, this.off + 2);
  }
  get seq(): number {
    return this.u32(this.off + 4);
  }
  set seq(v: number) {
    this.buf.writeUInt32BE(v, this.off + 4);
  }
  get ack(): number {
    return this.u32(this.off + 8);
  }
  set ack(v: number) {
    this.buf.writeUInt32BE(v, this.off + 8);
  }
  /** Header length in 32-bit words (5 to 15). */
  get dataOffset(): number {
    return this.buf[this.off + 12]! >> 4;
  }
  set dataOffset(v: number) {
    const b = this.off + 12;
    this.buf[b] = ((v & 0xf) << 4) | (this.buf[b]! & 0x0f);
  }
  /** The three reserved bits between the data offset and NS (zero on send). */
  get reserved(): number {
    return (this.buf[this.off + 12]! >> 1) & 0x7;
  }
  /** The 9-bit flags field, NS (0x100) … FIN (0x001); see TcpFlags. */
  get flags(): number {
    return ((this.buf[this.off + 12]! & 1) << 8) | this.buf[this.off + 13]!;
  }
  set flags(v: number) {
    const b = this.off + 12;
    this.buf[b] = (this.buf[b]! & 0xfe) | ((v >> 8) & 1);
    this.buf[b + 1] = v & 0xff;
  }
  get window(): number {
    return (this.buf[this.off + 14]! << 8) | this.buf[this.off + 15]!;
  }
  set window(v: number) {
    this.buf.writeUInt16BE(v, this.off + 14);
  }
  get checksum(): number {
    return (this.buf[this.off + 16]! << 8) | this.buf[this.off + 17]!;
  }
  set checksum(v: number) {
    this.buf.writeUInt16BE(v, this.off + 16);
  }
  get urgent(): number {
    return (this.buf[this.off + 18]! << 8) | this.buf[this.off + 19]!;
  }
  set urgent(v: number) {
    this.buf.writeUInt16BE(v, this.off + 18);
  }
  get headerLength(): number {
    return this.dataOffset * 4;
  }
  /** Offset in `buf` of the first option byte. */
  get optionsOffset(): number {
    return this.off + TCP_HEADER_LENGTH;
  }
  /** Bytes of options and padding (header length − 20). */
  get optionsLength(): number {
    return this.headerLength - TCP_HEADER_LENGTH;
  }
  get payloadOffset(): number {
    return this.off + this.headerLength;
  }
  /** Payload length on the wire: the IP layer's length minus the header. */
  get payloadLength(): number {
    return this.length - this.headerLength;
  }
  /** True when the whole segment was captured. */
  get complete(): boolean {
    return this.captured >= this.length;
  }

  /** Checksum verdict given the unfolded pseudo-header sum (checksum.ts); null when not fully captured. */
  checksumOk(pseudoHeaderSum: number): boolean | null {
    if (!this.complete) return null;
    return foldChecksum(onesSum(this.buf, this.off, this.length, pseudoHeaderSum)) === 0;
  }

  /**
   * Computes and writes the checksum over header and payload. Returns false (and writes nothing) when the
   * segment was not fully captured, since the sum needs every byte.
   */
  fillChecksum(pseudoHeaderSum: number): boolean {
    if (!this.complete) return false;
    this.checksum = 0;
    this.checksum = foldChecksum(onesSum(this.buf, this.off, this.length, pseudoHeaderSum));
    return true;
  }

  /** Moves the option iterator to the first option; returns its kind, TCP_OPTION_END or TCP_OPTION_MALFORMED. */
  firstOption(): number {
    return this.optionAt(this.off + TCP_HEADER_LENGTH);
  }

  /** Moves to the next option. After EOL, the end or a malformed option it returns TCP_OPTION_END. */
  nextOption(): number {
    if (this.optKind < 0 || this.optKind === TcpOptionKind.EOL)
      return this.stopAt(this.optOffset, 0, TCP_OPTION_END);
    return this.optionAt(this.optOffset + this.optLength);
  }

  /** Positions the iterator on the first option of `kind`; false when there is none (before EOL). */
  findOption(kind: number): boolean {
    for (let k = this.firstOption(); k >= 0; k = this.nextOption()) if (k === kind) return true;
    return false;
  }

  /** MSS value of the current option (kind 2). */
  get optMss(): number {
    return (this.buf[this.optOffset + 2]! << 8) | this.buf[this.optOffset + 3]!;
  }
  /** Shift count of the current option (kind 3). */
  get optWindowShift(): number {
    return this.buf[this.optOffset + 2]!;
  }
  /** TSval of the current option (kind 8). */
  get optTsval(): number {
    return this.u32(this.optOffset + 2);
  }
  /** TSecr of the current option (kind 8). */
  get optTsecr(): number {
    return this.u32(this.optOffset + 6);
  }
  /** Number of blocks in the current SACK option (kind 5). */
  get optSackBlocks(): number {
    return (this.optLength - 2) >> 3;
  }
  /** Left edge of SACK block `i` of the current option. */
  optSackLeft(i: number): number {
    return this.u32(this.optOffset + 2 + 8 * i);
  }
  /** Right edge of SACK block `i` of the current option. */
  optSackRight(i: number): number {
    return this.u32(this.optOffset + 6 + 8 * i);
  }
  /** Offset in `buf` of the current option's data (after kind and length). */
  get optDataOffset(): number {
    return this.optOffset + 2;
  }

  /**
   * Validates the options: every option needs a length byte of at least 2, must end inside the header,
   * and the kinds pktveil parses must have their defined length. Returns the first problem as a
   * `malformed` error naming the option (its index, counting EOL/NOP) and its offset; null when all fit.
   */
  checkOptions(): DecodeError | null {
    let index = 0;
    for (let k = this.firstOption(); k >= 0; k = this.nextOption()) index++;
    if (this.optKind !== TCP_OPTION_MALFORMED) return null;
    const at = this.optOffset;
    const end = this.off + this.headerLength;
    const kind = this.buf[at]!;
    const name = OPTION_NAMES[kind];
    const what = `option ${index} (${name ? `${name}, ` : ''}kind ${kind}) at offset ${at}`;
    if (at + 1 >= end)
      return malformed('tcp', at, `${what} has no length byte before the header ends at ${end}`);
    const len = this.buf[at + 1]!;
    if (len < 2) return malformed('tcp', at, `${what} has length ${len}, below the minimum of 2`);
    if (at + len > end)
      return malformed('tcp', at, `${what} with length ${len} runs past the header end at offset ${end}`);
    const expected = kind === TcpOptionKind.SACK ? '10, 18, 26 or 34' : String(FIXED_OPTION_LENGTH[kind]);
    return malformed('tcp', at, `${what} has length ${len}, expected ${expected}`);
  }

  /** Plain value of the header; options are parsed up to the first malformed one (kept as `invalid`). */
  toRepr(): TcpRepr {
    const options: TcpOption[] = [];
    for (let k = this.firstOption(); k !== TCP_OPTION_END; k = this.nextOption()) {
      if (k === TCP_OPTION_MALFORMED) {
        const end = this.off + this.headerLength;
        options.push({ type: 'invalid', bytes: Buffer.from(this.buf.subarray(this.optOffset, end)) });
        break;
      }
      options.push(this.currentOption(k));
    }
    return new TcpRepr({
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      seq: this.seq,
      ack: this.ack,
      flags: this.flags,
      window: this.window,
      urgent: this.urgent,
      options,
      payloadLength: this.payloadLength,
      checksum: this.checksum,
      dataOffset: this.dataOffset,
    });
  }

  private currentOption(kind: number): TcpOption {
    switch (kind) {
      case TcpOptionKind.EOL:
        return { type: 'eol' };
      case TcpOptionKind.NOP:
        return { type: 'nop' };
      case TcpOptionKind.MSS:
        return { type: 'mss', mss: this.optMss };
      case TcpOptionKind.WINDOW_SCALE:
        return { type: 'windowScale', shift: this.optWindowShift };
      case TcpOptionKind.SACK_PERMITTED:
        return { type: 'sackPermitted' };
      case TcpOptionKind.SACK: {
        const blocks: SackBlock[] = [];
        for (let i = 0; i < this.optSackBlocks; i++)
          blocks.push({ left: this.optSackLeft(i), right: this.optSackRight(i) });
        return { type: 'sack', blocks };
      }
      case TcpOptionKind.TIMESTAMPS:
        return { type: 'timestamps', tsval: this.optTsval, tsecr: this.optTsecr };
      default:
        return {
          type: 'unknown',
          kind,
          data: Buffer.from(this.buf.subarray(this.optOffset + 2, this.optOffset + this.optLength)),
        };
    }
  }

  /** Reads the option at `at` (inside the header or at its end) and sets the iterator fields. */
  private optionAt(at: number): number {
    const end = this.off + this.headerLength;
    if (at >= end) return this.stopAt(at, 0, TCP_OPTION_END);
    const kind = this.buf[at]!;
    if (kind === TcpOptionKind.EOL || kind === TcpOptionKind.NOP) return this.stopAt(at, 1, kind);
    if (at + 1 >= end) return this.stopAt(at, end - at, TCP_OPTION_MALFORMED);
    const len = this.buf[at + 1]!;
    if (len < 2 || at + len > end || !optionLengthOk(kind, len))
      return this.stopAt(at, len, TCP_OPTION_MALFORMED);
    return this.stopAt(at, len, kind);
  }

  private stopAt(offset: number, length: number, kind: number): number {
    this.optOffset = offset;
    this.optLength = length;
    this.optKind = kind;
    return kind;
  }

  private u32(i: number): number {
    const b = this.buf;
    return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  }
}

export interface SackBlock {
  left: number;
  right: number;
}

/** One TCP option as a plain value. `invalid` holds option bytes that did not parse, kept verbatim. */
export type TcpOption =
  | { type: 'eol' }
  | { type: 'nop' }
  | { type: 'mss'; mss: number }
  | { type: 'windowScale'; shift: number }
  | { type: 'sackPermitted' }
  | { type: 'sack'; blocks: SackBlock[] }
  | { type: 'timestamps'; tsval: number; tsecr: number }
  | { type: 'unknown'; kind: number; data: Buffer }
  | { type: 'invalid'; bytes: Buffer };

/** Bytes `option` takes on the wire. */
export function tcpOptionLength(option: TcpOption): number {
  switch (option.type) {
    case 'eol':
    case 'nop':
      return 1;
    case 'mss':
      return 4;
    case 'windowScale':
      return 3;
    case 'sackPermitted':
      return 2;
    case 'sack':
      return 2 + 8 * option.blocks.length;
    case 'timestamps':
      return 10;
    case 'unknown':
      return 2 + option.data.length;
    case 'invalid':
      return option.bytes.length;
  }
}

/** Writes `option` at buf[off] and returns its length. */
function encodeOption(option: TcpOption, buf: Buffer, off: number): number {
  switch (option.type) {
    case 'eol':
      buf[off] = TcpOptionKind.EOL;
      return 1;
    case 'nop':
      buf[off] = TcpOptionKind.NOP;
      return 1;
    case 'mss':
      buf[off] = TcpOptionKind.MSS;
      buf[off + 1] = 4;
      buf.writeUInt16BE(option.mss, off + 2);
      return 4;
    case 'windowScale':
      buf[off] = TcpOptionKind.WINDOW_SCALE;
      buf[off + 1] = 3;
      buf.writeUInt8(option.shift, off + 2);
      return 3;
    case 'sackPermitted':
      buf[off] = TcpOptionKind.SACK_PERMITTED;
      buf[off + 1] = 2;
      return 2;
    case 'sack': {
      const len = 2 + 8 * option.blocks.length;
      if (!sackLengthOk(len))
        throw new RangeError(`a SACK option carries 1 to 4 blocks, got ${option.blocks.length}`);
      buf[off] = TcpOptionKind.SACK;
      buf[off + 1] = len;
      option.blocks.forEach((block, i) => {
        buf.writeUInt32BE(block.left, off + 2 + 8 * i);
        buf.writeUInt32BE(block.right, off + 6 + 8 * i);
      });
      return len;
    }
    case 'timestamps':
      buf[off] = TcpOptionKind.TIMESTAMPS;
      buf[off + 1] = 10;
      buf.writeUInt32BE(option.tsval, off + 2);
      buf.writeUInt32BE(option.tsecr, off + 6);
      return 10;
    case 'unknown':
      buf.writeUInt8(option.kind, off);
      buf.writeUInt8(2 + option.data.length, off + 1);
      option.data.copy(buf, off + 2);
      return 2 + option.data.length;
    case 'invalid':
      option.bytes.copy(buf, off);
      return option.bytes.length;
  }
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** The 9-bit flags field (TcpFlags). */
  flags: number;
  window: number;
  urgent: number;
  /** Options in wire order; encodeInto pads them with zero (EOL) bytes to a 4-byte multiple. */
  options?: TcpOption[];
  payloadLength: number;
  /** Written as given; leave undefined to have encodeInto compute it (needs the pseudo-header sum). */
  checksum?: number;
  /**
   * Header length in 32-bit words. Leave undefined for the smallest that holds the options; set it to keep
   * extra zero padding (toRepr sets it so a decoded header re-encodes at its own length).
   */
  dataOffset?: number;
}

/** Plain value of a TCP header, for building packets and for tests. */
export class TcpRepr implements TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  urgent: number;
  options: TcpOption[];
  payloadLength: number;
  checksum?: number;
  dataOffset?: number;

  constructor(fields: TcpFields) {
    this.srcPort = fields.srcPort;
    this.dstPort = fields.dstPort;
    this.seq = fields.seq;
    this.ack = fields.ack;
    this.flags = fields.flags;
    this.window = fields.window;
    this.urgent = fields.urgent;
    this.options = fields.options ?? [];
    this.payloadLength = fields.payloadLength;
    if (fields.checksum !== undefined) this.checksum = fields.checksum;
    if (fields.dataOffset !== undefined) this.dataOffset = fields.dataOffset;
  }

  /** Bytes the options take before padding. */
  get optionsLength(): number {
    let n = 0;
    for (const option of this.options) n += tcpOptionLength(option);
    return n;
  }

  /** Header length: 20 plus the options padded to a 4-byte multiple (or dataOffset·4 when set). */
  get encodedLength(): number {
    const needed = TCP_HEADER_LENGTH + ((this.optionsLength + 3) & ~3);
    if (needed > TCP_MAX_HEADER_LENGTH)
      throw new RangeError(`TCP options take ${this.optionsLength} bytes; the header has room for 40`);
    if (this.dataOffset === undefined) return needed;
    if (!Number.isInteger(this.dataOffset) || this.dataOffset * 4 < needed || this.dataOffset > 15)
      throw new RangeError(`dataOffset ${this.dataOffset} must be an integer from ${needed / 4} to 15`);
    return this.dataOffset * 4;
  }

  /**
   * Writes the header at buf[off] and returns its length. When `checksum` is undefined it is computed,
   * which needs the payload already in place after the header and the pseudo-header sum (checksum.ts,
   * with upper-layer length = header + payload).
   */
  encodeInto(buf: Buffer, off: number, pseudoHeaderSum?: number): number {
    const headerLength = this.encodedLength;
    if (this.checksum === undefined && pseudoHeaderSum === undefined)
      throw new Error('TcpRepr.encodeInto: give the pseudo-header sum, or set `checksum` to write it as is');
    if (!Number.isInteger(this.flags) || this.flags < 0 || this.flags > 0x1ff)
      throw new RangeError(`flags is the 9-bit field (0 to 0x1ff), got ${this.flags}`);
    buf.writeUInt16BE(this.srcPort, off);
    buf.writeUInt16BE(this.dstPort, off + 2);
    buf.writeUInt32BE(this.seq, off + 4);
    buf.writeUInt32BE(this.ack, off + 8);
    buf[off + 12] = ((headerLength / 4) << 4) | (this.flags >> 8);
    buf[off + 13] = this.flags & 0xff;
    buf.writeUInt16BE(this.window, off + 14);
    buf.writeUInt16BE(0, off + 16);
    buf.writeUInt16BE(this.urgent, off + 18);
    let at = off + TCP_HEADER_LENGTH;
    for (const option of this.options) at += encodeOption(option, buf, at);
    buf.fill(TcpOptionKind.EOL, at, off + headerLength);
    if (this.checksum !== undefined) buf.writeUInt16BE(this.checksum, off + 16);
    else {
      const sum = onesSum(buf, off, headerLength + this.payloadLength, pseudoHeaderSum);
      buf.writeUInt16BE(foldChecksum(sum), off + 16);
    }
    return headerLength;
  }
}
