/**
 * The LIVES LAN host's traffic: UDP to the server in segments that take turns, each labelled with what it
 * was, bounded in time:
 * - voip: a 200-byte payload every 20 ms (G.711 with 20 ms frames);
 * - web: bursts of 5–40 MTU-size datagrams (1472-byte payloads: 1500-byte IP packets) sent back to back,
 *   each followed by 100–700 ms of think time;
 * - silence: nothing.
 * Every datagram carries flow id, sequence number and digest (datagram.ts). Writes the labels file in the
 * `pktveil analyze --labels` format with the segments' absolute times, and prints one JSON line:
 *   {"flows":[{"name","sent","sendErrors"}],"start":"<sec.ns>","end":"<sec.ns>"}
 * Input: one JSON argument (TrafficJob).
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { formatTimestamp } from '../../src/codec/describe.js';
import { realClock } from '../../src/stages/clock.js';
import type { LabelsJson } from '../../src/tfc/analysis/labels.js';
import { seededRandom } from '../../src/tfc/random.js';
import { FLOWS, type FlowName, HEADER_LENGTH, writeDatagram } from './datagram.js';

export type SegmentClass = 'voip' | 'web' | 'silence';

interface TrafficJob {
  server: string;
  /** The classes in the order they take turns within a round. */
  pattern: SegmentClass[];
  rounds: number;
  segmentSeconds: number;
  /** Delay before the first segment, so the tunnel is already running (all pad) when traffic starts. */
  leadSeconds: number;
  seed: number;
  labelsPath: string;
  /** The labels' windowSeconds: the classifier's sample length. */
  windowSeconds: number;
}

const VOIP_PAYLOAD = 200;
const VOIP_INTERVAL_NS = 20_000_000n;
const WEB_PAYLOAD = 1500 - 20 - 8;
const WEB_BURST = [5, 40] as const;
const WEB_THINK_MS = [100, 700] as const;

const job = JSON.parse(process.argv[2]!) as TrafficJob;
const random = seededRandom(job.seed);
const clock = realClock();
const socket = createSocket('udp4');
const flow = Object.fromEntries(
  FLOWS.map((f) => [f.name, { ...f, sent: 0, sendErrors: 0, nextSeq: 0 }]),
) as Record<
  FlowName,
  { id: number; name: FlowName; port: number; sent: number; sendErrors: number; nextSeq: number }
>;

function send(name: FlowName, payloadBytes: number): void {
  const f = flow[name];
  const buf = Buffer.allocUnsafe(Math.max(payloadBytes, HEADER_LENGTH));
  writeDatagram(buf, f.id, f.nextSeq++);
  socket.send(buf, f.port, job.server, (err) => {
    if (err) f.sendErrors++;
    else f.sent++;
  });
}

/** Waits until the clock reaches `t` (ns since the epoch): a timer for most of it, then polling. */
async function until(t: bigint): Promise<void> {
  for (;;) {
    const left = t - clock.now();
    if (left <= 0n) return;
    await new Promise((r) => setTimeout(r, Math.max(0, Number(left / 1_000_000n))));
  }
}

async function voip(end: bigint): Promise<void> {
  for (let t = clock.now(); t < end; t += VOIP_INTERVAL_NS) {
    await until(t);
    send('voip', VOIP_PAYLOAD);
  }
}

async function web(end: bigint): Promise<void> {
  while (clock.now() < end) {
    const burst = WEB_BURST[0] + Math.floor(random() * (WEB_BURST[1] - WEB_BURST[0] + 1));
    for (let i = 0; i < burst; i++) send('web', WEB_PAYLOAD);
    const think = WEB_THINK_MS[0] + random() * (WEB_THINK_MS[1] - WEB_THINK_MS[0]);
    const next = clock.now() + BigInt(Math.round(think * 1e6));
    await until(next < end ? next : end);
  }
}

const segmentNs = BigInt(Math.round(job.segmentSeconds * 1e9));
const start = clock.now() + BigInt(Math.round(job.leadSeconds * 1e9));
const windows: LabelsJson['windows'] = [];
let t = start;
for (let round = 0; round < job.rounds; round++) {
  for (const cls of job.pattern) {
    const end = t + segmentNs;
    await until(t);
    if (cls === 'voip') await voip(end);
    else if (cls === 'web') await web(end);
    else await until(end);
    windows.push({ start: formatTimestamp(t), end: formatTimestamp(end), class: cls });
    t = end;
  }
}

const labels: LabelsJson = { windowSeconds: job.windowSeconds, windows };
writeFileSync(job.labelsPath, `${JSON.stringify(labels)}\n`);
// Let the last sends complete before counting.
await new Promise((r) => setTimeout(r, 200));
socket.close();
process.stdout.write(
  `${JSON.stringify({
    flows: FLOWS.map((f) => ({ name: f.name, sent: flow[f.name].sent, sendErrors: flow[f.name].sendErrors })),
    start: formatTimestamp(start),
    end: formatTimestamp(t),
  })}\n`,
);
