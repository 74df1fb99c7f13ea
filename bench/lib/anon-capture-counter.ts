/**
 * Child program of the anon-prefilter benchmark, run inside the receiving namespace: a host's LiveCapture
 * with a given kernel filter, counting what reaches JavaScript and sorting it by the host's SID table —
 * the host's own anonymity-layer packets, other hosts' anonymity-layer packets, anything else.
 *
 * Driven by lines on stdin: `open FILTER` (the filter as a JSON string; "" for none) opens a capture and
 * answers `ready`; `close` closes it and answers one JSON line (CaptureCount). End of stdin exits. Input:
 * one JSON argument (CaptureCounterJob).
 */
import { createInterface } from 'node:readline';
import { SessionTable } from '../../src/filter/session-table.js';
import { LiveCapture } from '../../src/io/live-capture.js';

export interface CaptureCounterJob {
  interface: string;
  /** The host's SIDs as [hi, lo]. */
  sids: [number, number][];
  anonProtocol: number;
}

export interface CaptureCount {
  /** Packets that reached JavaScript. */
  packets: number;
  own: number;
  othersAnon: number;
  other: number;
  /** CPU seconds this process spent while the capture was open. */
  cpuSeconds: number;
  /** Seconds the capture was open. */
  seconds: number;
}

const job = JSON.parse(process.argv[2]!) as CaptureCounterJob;
const table = new SessionTable({ expectedEntries: job.sids.length });
for (const [i, [hi, lo]] of job.sids.entries()) table.add(hi, lo, i);

let capture: LiveCapture | null = null;
const counts = { packets: 0, own: 0, othersAnon: 0, other: 0 };
let cpuAtOpen = process.cpuUsage();
let openedAt = 0;

function count(data: Buffer): void {
  counts.packets++;
  if (data.length < 34 || data[12] !== 0x08 || data[13] !== 0x00 || data[23] !== job.anonProtocol) {
    counts.other++;
    return;
  }
  const sid = 14 + ((data[14]! & 0x0f) << 2);
  if (sid + 8 <= data.length && table.lookupAt(data, sid) >= 0) counts.own++;
  else counts.othersAnon++;
}

function answer(line: string): void {
  process.stdout.write(`${line}\n`);
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const space = line.indexOf(' ');
  const command = space < 0 ? line.trim() : line.slice(0, space);
  if (command === 'open' && capture === null) {
    const filter = JSON.parse(line.slice(space + 1)) as string;
    counts.packets = counts.own = counts.othersAnon = counts.other = 0;
    capture = new LiveCapture({ interface: job.interface, filter });
    capture.onPacket((pkt) => count(pkt.data));
    cpuAtOpen = process.cpuUsage();
    openedAt = performance.now();
    answer('ready');
  } else if (command === 'close' && capture !== null) {
    capture.close();
    capture = null;
    const cpu = process.cpuUsage(cpuAtOpen);
    const result: CaptureCount = {
      ...counts,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      seconds: (performance.now() - openedAt) / 1000,
    };
    answer(JSON.stringify(result));
  } else {
    process.stderr.write(`anon-capture-counter: unexpected ${JSON.stringify(line)}\n`);
    process.exit(2);
  }
});
lines.on('close', () => {
  capture?.close();
});
