/**
 * Child program of the anon-prefilter benchmark, run inside the sending namespace: replays a ring of
 * Ethernet frames (the broadcast load, fixed-size frames back to back in one file) on an interface through
 * cap.send (FrameSink), paced to a fixed offered rate in bursts of at most one millisecond's worth. A sender
 * that cannot keep up sends what it can: the rate it reports is what was offered.
 *
 * Driven by lines on stdin: `send PPS SECONDS` sends for that long and answers one JSON line
 * `{"sent":N,"failed":N,"seconds":S}`; end of stdin exits. Input: one JSON argument (LoadSenderJob).
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { FrameSink } from '../../src/io/inject.js';
import type { Packet } from '../../src/packet.js';

export interface LoadSenderJob {
  interface: string;
  /** File of frames, each `frameSize` bytes. */
  file: string;
  frameSize: number;
}

export interface LoadSent {
  sent: number;
  failed: number;
  /** From the first frame sent to the end of the run. */
  seconds: number;
}

const job = JSON.parse(process.argv[2]!) as LoadSenderJob;
const bytes = readFileSync(job.file);
const packets: Packet[] = [];
for (let o = 0; o + job.frameSize <= bytes.length; o += job.frameSize)
  packets.push({ data: bytes.subarray(o, o + job.frameSize), ts: 0n, link: 1 });
if (packets.length === 0) throw new Error(`${job.file} holds no ${job.frameSize}-byte frame`);
const sink = new FrameSink({ interface: job.interface });
const emitNothing = (): void => {};
const nap = new Int32Array(new SharedArrayBuffer(4));
let next = 0;

/** Sends at `pps` for `seconds`: every millisecond, the frames due by then (a sleep when none is due). */
function send(pps: number, seconds: number): LoadSent {
  const before = sink.stats();
  const began = performance.now();
  const endMs = seconds * 1000;
  const burst = Math.max(1, Math.ceil(pps / 1000));
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - began;
    if (elapsed >= endMs) break;
    const due = Math.floor((elapsed * pps) / 1000) + 1;
    if (sent >= due) {
      Atomics.wait(nap, 0, 0, 1);
      continue;
    }
    // At most a millisecond's worth per burst, so a sender that falls behind still stops on time.
    const burstEnd = Math.min(due, sent + burst);
    while (sent < burstEnd) {
      sink.process(packets[next]!, emitNothing);
      next = next + 1 === packets.length ? 0 : next + 1;
      sent++;
    }
  }
  const after = sink.stats();
  return {
    sent: after.sent - before.sent,
    failed: after.failed - before.failed,
    seconds: (performance.now() - began) / 1000,
  };
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const [command, pps, seconds] = line.trim().split(/\s+/);
  if (command !== 'send' || !(Number(pps) > 0) || !(Number(seconds) > 0)) {
    process.stderr.write(`anon-load-sender: expected "send PPS SECONDS", got ${JSON.stringify(line)}\n`);
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(send(Number(pps), Number(seconds)))}\n`);
});
lines.on('close', () => {
  sink.close();
});
