/**
 * Fixed-width integer access in a chosen byte order. Capture files fix their byte order once per file
 * (pcap) or section (pcapng), so readers pick one of these pairs once instead of branching per field.
 * They do no bounds checks: callers have checked the record length first.
 */
export type ByteOrder = 'le' | 'be';

export interface ByteOrderAccess {
  readonly order: ByteOrder;
  u16(b: Buffer, o: number): number;
  u32(b: Buffer, o: number): number;
  put16(b: Buffer, o: number, v: number): void;
  put32(b: Buffer, o: number, v: number): void;
}

export const LITTLE_ENDIAN: ByteOrderAccess = {
  order: 'le',
  u16: (b, o) => b[o]! | (b[o + 1]! << 8),
  u32: (b, o) => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0,
  put16: (b, o, v) => {
    b[o] = v;
    b[o + 1] = v >>> 8;
  },
  put32: (b, o, v) => {
    b[o] = v;
    b[o + 1] = v >>> 8;
    b[o + 2] = v >>> 16;
    b[o + 3] = v >>> 24;
  },
};

export const BIG_ENDIAN: ByteOrderAccess = {
  order: 'be',
  u16: (b, o) => (b[o]! << 8) | b[o + 1]!,
  u32: (b, o) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0,
  put16: (b, o, v) => {
    b[o] = v >>> 8;
    b[o + 1] = v;
  },
  put32: (b, o, v) => {
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
  },
};

export function byteOrderAccess(order: ByteOrder): ByteOrderAccess {
  return order === 'le' ? LITTLE_ENDIAN : BIG_ENDIAN;
}
