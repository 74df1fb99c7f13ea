/**
 * Child process for live.test.ts: sends packets from inside a network namespace through RawIpv4Sink
 * or FrameSink, driven by runStage. Input on stdin: one JSON InjectJob. Output: one JSON line,
 * {"stats":{…},"result":{…}} or {"error":{"kind":"…","message":"…"}}.
 */
import { FrameSink, RawIpv4Sink } from '../../../src/io/inject.js';
import { LiveIoError } from '../../../src/io/live-io-error.js';
import type { Packet } from '../../../src/packet.js';
import { runStage } from '../../../src/stages/run.js';

interface InjectJob {
  sink: 'raw' | 'frame';
  /** FrameSink: the interface to send on; RawIpv4Sink: bind to it (optional). */
  interface?: string;
  link: number;
  /** Packets as hex. */
  packets: string[];
  /** Pause between packets, ms (0: back to back). */
  gapMs?: number;
  maxInFlight?: number;
}

function print(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const job = JSON.parse(Buffer.concat(chunks).toString('utf8')) as InjectJob;

let sink: RawIpv4Sink | FrameSink;
try {
  sink =
    job.sink === 'raw'
      ? new RawIpv4Sink({ interface: job.interface, maxInFlight: job.maxInFlight })
      : new FrameSink({ interface: job.interface! });
} catch (err) {
  if (err instanceof LiveIoError) {
    print({ error: { kind: err.kind, message: err.message } });
    process.exit(3);
  }
  throw err;
}

async function* source(): AsyncGenerator<Packet> {
  for (const hex of job.packets) {
    yield { data: Buffer.from(hex, 'hex'), ts: 0n, link: job.link };
    if (job.gapMs) await new Promise((r) => setTimeout(r, job.gapMs));
  }
}

const result = await runStage(source(), sink, () => {});
if (sink instanceof RawIpv4Sink) await sink.close();
else sink.close();
print({ stats: sink.stats(), result: { packetsIn: result.packetsIn, packetsOut: result.packetsOut } });
