/**
 * capture-read: packets per second out of the pcap parser when each packet borrows its bytes (the
 * default: `pkt.data` is a view valid until the next packet) beside `copy: true` (a fresh copy per
 * packet), on the same in-memory capture. The ratio is what borrowing saves; capture-file.ts and
 * record-stream-parser.ts point here for it.
 */
import { CaptureFileParser } from '../src/io/capture-file.js';
import { type Bench, isMain, runAlone } from './lib/bench-context.js';
import { buildCorpus } from './lib/corpus.js';
import { generatedPcapBytes } from './lib/pcap-file.js';
import { figure } from './lib/report.js';
import { timeLoops } from './lib/timed-loop.js';

const PACKETS = 8192;

let sink = 0;

/** Reads every packet of `bytes`, touching its first and last byte; returns the packet count. */
function readAll(bytes: Buffer, copy: boolean): number {
  const parser = new CaptureFileParser({ copy });
  parser.push(bytes);
  let count = 0;
  let s = 0;
  for (let pkt = parser.next(); pkt !== null; pkt = parser.next()) {
    s = (s + pkt.data[0]! + pkt.data[pkt.data.length - 1]!) | 0;
    count++;
  }
  parser.end();
  sink += s;
  return count;
}

export const captureReadBench: Bench = {
  name: 'capture-read',
  description: 'pcap parsing with borrowed packet bytes vs. copy: true, in memory',
  async run({ quick, reporter }) {
    const bytes = generatedPcapBytes(buildCorpus(1024).frames, PACKETS);
    for (const copy of [false, true]) {
      const got = readAll(bytes, copy);
      if (got !== PACKETS)
        throw new Error(`capture-read: parser returned ${got} packets (copy ${copy}), expected ${PACKETS}`);
    }
    reporter.note(`capture-read: ${PACKETS} packets, ${(bytes.length / 1e6).toFixed(1)} MB in memory`);
    const [borrowed, copied] = timeLoops(
      [
        { name: 'borrowed', fn: () => readAll(bytes, false) },
        { name: 'copy: true', fn: () => readAll(bytes, true) },
      ],
      quick,
    );
    if (!Number.isFinite(sink)) throw new Error('capture-read: the byte sums overflowed');
    reporter.figure(
      figure(
        'capture-read',
        'packets/s',
        borrowed!.hz * PACKETS,
        'readCapture copy: true',
        copied!.hz * PACKETS,
      ),
      {
        detail: `±${borrowed!.rme.toFixed(1)}% / ±${copied!.rme.toFixed(1)}%, ${((borrowed!.hz * bytes.length) / 1e6).toFixed(0)} MB/s borrowed`,
      },
    );
  },
};

if (isMain(import.meta.url)) runAlone(captureReadBench);
