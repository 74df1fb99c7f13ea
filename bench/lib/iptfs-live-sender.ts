/**
 * Child program of bench/iptfs-live.ts, run inside the sending namespace: an IptfsEncapStage at a fixed
 * rate on the live clock, for a bounded time, into a RawIpv4Sink (no inner traffic: the tunnel sends
 * all-pad payloads, which is what its timing looks like whatever it carries). Pacing:
 * - 'real': the stage's own `time: 'real'` token bucket, ticked by runStage's 1 ms timer;
 * - 'ahead': the stage in virtual time ticked `leadMs` ahead of the clock (scenarios/lib/ahead-of-clock.ts),
 *   for a kernel shaper the parent puts on the interface.
 * Input: one JSON argument (SenderJob). Prints one JSON line: {"stage":{…},"sink":{…},"ticks":N}.
 */

import { AheadOfClock } from '../../scenarios/lib/ahead-of-clock.js';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { parseSaJson } from '../../src/esp/sa-file.js';
import { RawIpv4Sink } from '../../src/io/inject.js';
import type { Packet } from '../../src/packet.js';
import { realClock } from '../../src/stages/clock.js';
import { Pipeline } from '../../src/stages/pipeline.js';
import { runStage } from '../../src/stages/run.js';
import { IptfsEncapStage } from '../../src/tfc/iptfs-stages.js';

export interface SenderJob {
  sa: unknown;
  packetSize: number;
  bitsPerSecond: number;
  seconds: number;
  pacing: 'real' | 'ahead';
  leadMs: number;
}

/** A source that never yields a packet: the stage runs on ticks alone until the run is stopped. */
const idle: AsyncIterable<Packet> = {
  [Symbol.asyncIterator]: () => ({
    next: () => new Promise<IteratorResult<Packet>>(() => {}),
    return: () => Promise.resolve({ done: true, value: undefined }),
  }),
};

const job = JSON.parse(process.argv[2]!) as SenderJob;
const encap = new IptfsEncapStage(new SecurityAssociation(parseSaJson(job.sa, 'bench SA')), {
  packetSize: job.packetSize,
  mode: { kind: 'fixed-rate', bitsPerSecond: job.bitsPerSecond },
  time: job.pacing === 'real' ? 'real' : 'virtual',
});
const sink = new RawIpv4Sink({ maxInFlight: 4096 });
const stage =
  job.pacing === 'real'
    ? encap
    : new AheadOfClock(encap, BigInt(Math.round(job.leadMs * 1e6)), { downstream: sink });
const stop = new AbortController();
setTimeout(() => stop.abort(), job.seconds * 1000);
const result = await runStage(idle, new Pipeline([stage, sink]), () => {}, {
  time: 'real',
  clock: realClock(),
  signal: stop.signal,
  flush: false,
});
await sink.close();
process.stdout.write(
  `${JSON.stringify({ stage: stage.stats(), sink: sink.stats(), ticks: result.ticks })}\n`,
);
process.exit(0);
