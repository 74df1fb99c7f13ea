/**
 * Child process for live.test.ts: opens a LiveCapture in whatever network namespace it was started in
 * (a process cannot move the addon's sockets between namespaces), reports readiness, collects packets
 * and prints one JSON result line. Input: one JSON argument (CaptureJob). Output lines:
 *   {"ready":true,"link":1,"linkName":"ETHERNET","filter":"…","mac":null}
 *   {"packets":[{"hex":"…","ts":"…","origLen":N}],"stats":{…},"sameObject":bool,"wallStart":"…","wallEnd":"…"}
 * or, when opening fails, {"error":{"kind":"…","message":"…"}}.
 */
import { LiveCapture } from '../../../src/io/live-capture.js';
import { LiveIoError } from '../../../src/io/live-io-error.js';
import { clonePacket, type Packet } from '../../../src/packet.js';

interface CaptureJob {
  interface: string;
  filter?: string;
  snapLength?: number;
  promiscuous?: boolean;
  /** Stop after this many packets (then linger). */
  count: number;
  /** After `count` packets, keep capturing this long to catch packets that should not be there. */
  lingerMs?: number;
  /** Give up after this long in total. */
  timeoutMs: number;
  /** 'iterate' (async iterator, owned copies) or 'callback' (onPacket, borrowed, cloned here). */
  mode?: 'iterate' | 'callback';
  queueLimit?: number;
  /** Iterate only once libpcap has handed over this many packets (they wait in the capture's queue). */
  readAfterSeen?: number;
  /** With readAfterSeen: close the capture before iterating (the iterator then drains the queue and ends). */
  closeBeforeRead?: boolean;
}

function print(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const job = JSON.parse(process.argv[2]!) as CaptureJob;
const wallStart = BigInt(Date.now()) * 1_000_000n;
let capture: LiveCapture;
try {
  capture = new LiveCapture({
    interface: job.interface,
    filter: job.filter,
    snapLength: job.snapLength,
    promiscuous: job.promiscuous,
    queueLimit: job.queueLimit,
  });
} catch (err) {
  if (err instanceof LiveIoError) {
    print({ error: { kind: err.kind, message: err.message } });
    process.exit(3);
  }
  throw err;
}
print({
  ready: true,
  link: capture.link,
  linkName: capture.linkName,
  filter: capture.filter,
  mac: capture.mac,
});

const packets: Packet[] = [];
const timeout = setTimeout(() => capture.close(), job.timeoutMs);
let linger: NodeJS.Timeout | undefined;
const reached = () => {
  if (packets.length === job.count && !linger) linger = setTimeout(() => capture.close(), job.lingerMs ?? 0);
};
let sameObject = true;
if (job.mode === 'callback') {
  let first: Packet | null = null;
  capture.onPacket((pkt) => {
    first ??= pkt;
    if (pkt !== first) sameObject = false;
    packets.push(clonePacket(pkt));
    reached();
  });
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (capture.closed) {
        clearInterval(poll);
        resolve();
      }
    }, 5);
  });
} else {
  sameObject = false;
  if (job.readAfterSeen) {
    const deadline = Date.now() + job.timeoutMs;
    while (capture.stats().packetsSeen < job.readAfterSeen && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  if (job.closeBeforeRead) capture.close();
  for await (const pkt of capture) {
    packets.push(pkt);
    reached();
  }
}
clearTimeout(timeout);
clearTimeout(linger);
print({
  packets: packets.map((p) => ({ hex: p.data.toString('hex'), ts: String(p.ts), origLen: p.origLen })),
  stats: capture.stats(),
  sameObject,
  wallStart: String(wallStart),
  wallEnd: String(BigInt(Date.now()) * 1_000_000n),
});
