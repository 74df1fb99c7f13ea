/**
 * One end of the LIVES last-mile tunnel, run inside its namespace (addon sockets cannot move between
 * namespaces), both ends capturing with LiveCapture and sending through raw sockets:
 * - encap (the customer-side node): LiveCapture of the LAN's packets → IptfsEncapStage (iptfs-mode SA,
 *   fixed rate) → RawIpv4Sink (outer ESP packets to the gateway). Pacing 'ahead' (the default) runs the
 *   stage in virtual time `leadMs` ahead of the wall clock for a kernel shaper on the outgoing interface
 *   (lib/ahead-of-clock.ts says why); pacing 'real' is the stage's own `time: 'real'` token bucket;
 * - decap (the operator gateway): LiveCapture of the ESP from the customer-side node → IptfsDecapStage
 *   (real time: its drop timer runs on the wall clock) → RawIpv4Sink (inner packets, routed to the
 *   server). The tunnel's address on the gateway belongs to this program, not to the kernel (see
 *   lives.ts), so the kernel, which has no ESP, never answers it.
 *
 * Prints {"ready":true,…} once its sockets are open and, on SIGTERM or SIGINT, stops reading, flushes,
 * waits for outstanding sends and prints one JSON line {"stats":{…}} (every stage's counters). Input: one
 * JSON argument (TunnelJob).
 */

import { SecurityAssociation } from '../../src/esp/sa.js';
import { parseSaJson } from '../../src/esp/sa-file.js';
import { RawIpv4Sink } from '../../src/io/inject.js';
import { LiveCapture } from '../../src/io/live-capture.js';
import { realClock } from '../../src/stages/clock.js';
import { Pipeline } from '../../src/stages/pipeline.js';
import { runStage } from '../../src/stages/run.js';
import type { Stage } from '../../src/stages/stage.js';
import { IptfsDecapStage, IptfsEncapStage } from '../../src/tfc/iptfs-stages.js';
import { AheadOfClock } from '../lib/ahead-of-clock.js';

export type TunnelJob =
  | {
      role: 'encap';
      /** The LAN-side interface to capture on, and the BPF filter for the LAN's packets to carry. */
      interface: string;
      filter: string;
      /** SA file JSON (contracts/cli.md), mode iptfs. */
      sa: unknown;
      /** Outer IPv4 total length of every packet. */
      packetSize: number;
      bitsPerSecond: number;
      pacing: 'ahead' | 'real';
      /** How far ahead of the clock outer packets are built (pacing 'ahead'). */
      leadMs: number;
    }
  | {
      role: 'decap';
      /** The last-mile interface to capture on, and the BPF filter for the tunnel's ESP. */
      interface: string;
      filter: string;
      sa: unknown;
    };

function print(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const job = JSON.parse(process.argv[2]!) as TunnelJob;
const sa = new SecurityAssociation(parseSaJson(job.sa, `${job.role} SA`));
const stop = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop.abort());

const sink = new RawIpv4Sink();
const source = new LiveCapture({ interface: job.interface, filter: job.filter });
let stage: Stage;
if (job.role === 'encap') {
  const encap = new IptfsEncapStage(sa, {
    packetSize: job.packetSize,
    mode: { kind: 'fixed-rate', bitsPerSecond: job.bitsPerSecond },
    time: job.pacing === 'real' ? 'real' : 'virtual',
  });
  stage =
    job.pacing === 'real'
      ? encap
      : new AheadOfClock(encap, BigInt(Math.round(job.leadMs * 1e6)), { downstream: sink });
} else stage = new IptfsDecapStage([sa]);
const pipeline = new Pipeline([stage, sink]);
print({ ready: true, role: job.role, pid: process.pid });

// The clock LiveCapture stamps packets with, so ticks and packets share one timeline.
const result = await runStage(source, pipeline, () => {}, {
  time: 'real',
  clock: realClock(),
  signal: stop.signal,
});
source.close();
await sink.close();
print({
  stats: {
    run: { packetsIn: result.packetsIn, ticks: result.ticks, aborted: result.aborted },
    source: source.stats(),
    [stage.name]: stage.stats(),
    sink: sink.stats(),
  },
});
process.exit(0);
