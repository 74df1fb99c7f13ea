/**
 * Why a capture file could not be read further. Readers deliver every good record first and throw this
 * only when they reach the bad one, so a caller keeps everything before the damage.
 */
export type CaptureFormat = 'pcap' | 'pcapng';

export type CaptureFileErrorKind =
  /** The file (or a pcapng section) does not start with a magic number we know. */
  | 'bad-magic'
  /** A version or variant we do not read (pcapng major ≠ 1, modified pcap). */
  | 'unsupported'
  /** The input ended inside a header or record. */
  | 'truncated'
  /** A length field that cannot be right: below a block's minimum, not a multiple of 4, past its block. */
  | 'bad-length'
  /** A pcapng block's trailing total length differs from its leading one. */
  | 'length-mismatch'
  /** A record larger than the sanity limit (a corrupt length would otherwise make us buffer gigabytes). */
  | 'too-large'
  /** A pcapng packet names an interface its section has not described. */
  | 'unknown-interface'
  /** Anything else that contradicts the format (bad option lengths …). */
  | 'malformed';

export interface CaptureFileErrorFields {
  /** Format being read; 'capture' when the file was too short or too strange to tell. */
  format: CaptureFormat | 'capture';
  kind: CaptureFileErrorKind;
  /**
   * Which record: pcap counts packet records from 0 (-1 is the file header); pcapng counts blocks from 0
   * (the first Section Header Block is block 0); -1 when the format is unknown.
   */
  recordIndex: number;
  /** Byte offset in the file where that record (or header) starts. */
  offset: number;
  /** What was wrong, for humans. */
  detail: string;
}

export class CaptureFileError extends Error implements CaptureFileErrorFields {
  readonly format: CaptureFormat | 'capture';
  readonly kind: CaptureFileErrorKind;
  readonly recordIndex: number;
  readonly offset: number;
  readonly detail: string;

  constructor(fields: CaptureFileErrorFields) {
    super(`${fields.format} ${describeRecord(fields)} at byte offset ${fields.offset}: ${fields.detail}`);
    this.name = 'CaptureFileError';
    this.format = fields.format;
    this.kind = fields.kind;
    this.recordIndex = fields.recordIndex;
    this.offset = fields.offset;
    this.detail = fields.detail;
  }
}

function describeRecord({ format, recordIndex }: CaptureFileErrorFields): string {
  if (recordIndex < 0) return 'file header';
  return format === 'pcapng' ? `block ${recordIndex}` : `record ${recordIndex}`;
}
