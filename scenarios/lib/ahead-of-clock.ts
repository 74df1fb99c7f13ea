/**
 * Live pacing that does not leak the sender's load: a virtual-time stage (exact slot schedule) driven by
 * the wall clock, running `leadNs` ahead of it, in front of a kernel shaper that sets the departure times.
 *
 * Why: a pacer ticked by Node timers sends when the event loop gets round to it. Its timers fire late by
 * an amount that depends on what else the loop and the machine are doing, and what the loop is doing
 * depends on the traffic being hidden (capturing and copying a web burst keeps it awake and prompt; an idle
 * loop sleeps deeper and fires later). An observer of the gaps then tells the traffic classes apart, even
 * though every packet has the same size and the long-run rate is right (measured: 0.75 classifier
 * accuracy against a chance of 0.33 on the last mile with `time: 'real'`).
 *
 * So the two jobs are split. JavaScript decides what goes in each slot: the stage runs in virtual time,
 * slot k at t0 + k·interval exactly, never skipping a slot, and it is ticked `leadNs` ahead of now, so each
 * outer packet is built and handed to the kernel up to `leadNs` before its slot. The kernel decides when
 * it leaves: a token-bucket qdisc at the same rate (kernelShaperArgs) releases one packet per interval
 * from its hrtimer, whatever the event loop is doing, and always has the next packet queued as long as
 * no stall of the loop outlasts the lead. A stall longer than the lead shows on the wire as one late
 * packet; the slots behind it are still sent, so no inner data is lost and the rate holds on average.
 *
 * The first tick starts the schedule at the real time (the stage's pacer starts on it); later ticks run
 * ahead, so the first of them hands over `leadNs` of slots at once: the shaper's starting queue.
 */
import type { Packet } from '../../src/packet.js';
import type { Emit, Stage, StageStats } from '../../src/stages/stage.js';

export class AheadOfClock implements Stage {
  readonly name: string;
  private started = false;

  /** `inner` must be a virtual-time stage (its tick catches up on everything due before `now`). */
  constructor(
    readonly inner: Stage,
    readonly leadNs: bigint,
  ) {
    if (!inner.tick) throw new Error(`AheadOfClock: stage ${inner.name} has no tick(); nothing to pace`);
    if (leadNs < 0n) throw new RangeError(`AheadOfClock lead must be ≥ 0 ns, got ${leadNs}`);
    this.name = inner.name;
  }

  process(pkt: Packet, emit: Emit): void {
    this.started = true;
    this.inner.process(pkt, emit);
  }

  tick(now: bigint, emit: Emit): void {
    this.inner.tick!(this.started ? now + this.leadNs : now, emit);
    this.started = true;
  }

  flush(emit: Emit): void {
    this.inner.flush?.(emit);
  }

  stats(): StageStats {
    return { ...this.inner.stats(), leadNs: Number(this.leadNs) };
  }
}

/**
 * `tc` arguments for the kernel shaper in front of an AheadOfClock sender on interface `dev`: a token
 * bucket (tbf) at exactly `packetsPerSecond` frames of `frameBytes` (the outer packet plus the link
 * header, what the qdisc counts), whose bucket holds just under two frames — never two back to back, yet
 * a packet the hrtimer released late does not delay the rest (the lateness is credited, so the long-run
 * rate stays exact and matches the sender's) — and whose queue holds `queuePackets` frames.
 */
export function kernelShaperArgs(
  dev: string,
  frameBytes: number,
  packetsPerSecond: number,
  queuePackets: number,
): string[] {
  const bitsPerSecond = frameBytes * 8 * packetsPerSecond;
  if (!Number.isSafeInteger(bitsPerSecond) || bitsPerSecond <= 0)
    throw new RangeError(`shaper rate ${frameBytes} B × ${packetsPerSecond}/s must be whole bits per second`);
  return [
    'qdisc',
    'replace',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    `${bitsPerSecond}bit`,
    'burst',
    String(2 * frameBytes - 1),
    'limit',
    String(queuePackets * frameBytes),
  ];
}
