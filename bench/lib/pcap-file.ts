/**
 * Writes a classic pcap file (little-endian, microsecond timestamps, Ethernet) by hand from the pcap
 * file format, so the input of a throughput benchmark does not depend on the writer being measured.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

const GLOBAL_HEADER_LENGTH = 24;
const RECORD_HEADER_LENGTH = 16;
const PCAP_MAGIC_US = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262144;

export interface GeneratedCapture {
  path: string;
  packets: number;
  /** Size of the file in bytes. */
  fileBytes: number;
}

/**
 * Writes `packets` records cycling through `frames`, one every 10–40 µs from 2023-11-14, to `path`.
 * Writes in 4 MiB chunks so memory stays small whatever the file size.
 */
export function writeGeneratedPcap(path: string, frames: Buffer[], packets: number): GeneratedCapture {
  if (frames.length === 0) throw new Error('writeGeneratedPcap needs at least one frame');
  const fd = openSync(path, 'w');
  try {
    const header = Buffer.alloc(GLOBAL_HEADER_LENGTH);
    header.writeUInt32LE(PCAP_MAGIC_US, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeInt32LE(0, 8);
    header.writeUInt32LE(0, 12);
    header.writeUInt32LE(SNAPLEN, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(fd, header);
    let fileBytes = GLOBAL_HEADER_LENGTH;

    const chunk = Buffer.alloc(4 << 20);
    let used = 0;
    let seconds = 1_700_000_000;
    let micros = 0;
    for (let i = 0; i < packets; i++) {
      const frame = frames[i % frames.length]!;
      if (used + RECORD_HEADER_LENGTH + frame.length > chunk.length) {
        writeSync(fd, chunk, 0, used);
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
      fileBytes += RECORD_HEADER_LENGTH + frame.length;
    }
    if (used > 0) writeSync(fd, chunk, 0, used);
    return { path, packets, fileBytes };
  } finally {
    closeSync(fd);
  }
}
