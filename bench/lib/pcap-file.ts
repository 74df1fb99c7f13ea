/**
 * Classic pcap (little-endian, microsecond timestamps, Ethernet) written by hand from the file format,
 * so the input of a capture benchmark does not depend on the reader or writer being measured.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const GLOBAL_HEADER_LENGTH = 24;
const RECORD_HEADER_LENGTH = 16;
const PCAP_MAGIC_US = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;
const CHUNK_BYTES = 4 << 20;

/**
 * The file in pieces of about 4 MiB: the global header, then `packets` records cycling through
 * `frames`, one every 10–40 µs from 2023-11-14. Each piece is a fresh buffer the caller may keep.
 */
function* pcapPieces(frames: Buffer[], packets: number): Generator<Buffer> {
  if (frames.length === 0) throw new Error('a generated pcap needs at least one frame');
  const header = Buffer.alloc(GLOBAL_HEADER_LENGTH);
  header.writeUInt32LE(PCAP_MAGIC_US, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(0, 8);
  header.writeUInt32LE(0, 12);
  header.writeUInt32LE(SNAPLEN, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  yield header;

  let chunk = Buffer.alloc(CHUNK_BYTES);
  let used = 0;
  let seconds = 1_700_000_000;
  let micros = 0;
  for (let i = 0; i < packets; i++) {
    const frame = frames[i % frames.length]!;
    if (used + RECORD_HEADER_LENGTH + frame.length > chunk.length) {
      yield chunk.subarray(0, used);
      chunk = Buffer.alloc(CHUNK_BYTES);
      used = 0;
    }
    micros += 10 + ((i * 7919) % 31);
    if (micros >= 1_000_000) {
      seconds++;
      micros -= 1_000_000;
    }
    chunk.writeUInt32LE(seconds, used);
    chunk.writeUInt32LE(micros, used + 4);
    chunk.writeUInt32LE(frame.length, used + 8);
    chunk.writeUInt32LE(frame.length, used + 12);
    frame.copy(chunk, used + RECORD_HEADER_LENGTH);
    used += RECORD_HEADER_LENGTH + frame.length;
  }
  if (used > 0) yield chunk.subarray(0, used);
}

/** The whole generated capture in memory. */
export function generatedPcapBytes(frames: Buffer[], packets: number): Buffer {
  return Buffer.concat([...pcapPieces(frames, packets)]);
}

export interface GeneratedCapture {
  path: string;
  packets: number;
  /** Size of the file in bytes. */
  fileBytes: number;
}

/** Writes the generated capture to `path`, a piece at a time so memory stays small at any size. */
export function writeGeneratedPcap(path: string, frames: Buffer[], packets: number): GeneratedCapture {
  const fd = openSync(path, 'w');
  try {
    let fileBytes = 0;
    for (const piece of pcapPieces(frames, packets)) {
      writeSync(fd, piece);
      fileBytes += piece.length;
    }
    return { path, packets, fileBytes };
  } finally {
    closeSync(fd);
  }
}
