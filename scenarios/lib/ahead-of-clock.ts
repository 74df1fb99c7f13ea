/**
 * Live pacing that does not leak the sender's load: a virtual-time stage (exact slot schedule) driven by
 * the wall clock, running `leadNs` ahead of it, in front of a kernel shaper that sets the departure times.
 *
 * Why: a pacer ticked by Node timers sends when the event loop gets round to it. Its timers fire late by
 * an amount that depends on what else the loop and the machine are doing, and what the loop is doing
 * depends on the traffic being hidden (capturing and copying a web burst keeps it awake and prompt; an idle
 * loop sleeps deeper and fires later). An observer of the gaps then tells the traffic classes apart, even
 * though every packet has the same size (measured on scenario:lives' last mile with `time: 'real'`: a
 * median gap of 1104 µs for 1000, p99 2.6 ms, the rate 1.2% low, and web windows told apart by their
 * steadier gaps, web recall 0.98 and accuracy 0.38 against a chance of 0.33 over 450 samples).
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
 * ahead, handing over the slots of the lead: the shaper's starting queue.
 *
 * One tick moves the stage's time by at most `maxStepNs` (default 2 ms, as the stage's own real-time
 * burst), so a sender that cannot keep up with its rate (too fast for the CPU, or after a long stall)
 * does bounded work per tick and lets the event loop run (its sockets send between ticks), and falls
 * behind instead: its slots still go out in order, later, and stats().behindNs says how far the stage's
 * time trails the clock plus the lead. So the lead itself builds up over the first ticks, and after a
 * stall the sender catches up by maxStepNs minus the tick interval per tick. Likewise, while
 * `downstream` (the sink) needs a drain, ticks do not move the stage's time at all: a sink that cannot
 * send as fast as the rate slows the tunnel down (behindNs grows) instead of dropping its packets.
 */
import type { Packet } from '../../src/packet.js';
import type { Drainable } from '../../src/stages/pipeline.js';
import type { Emit, Stage, StageStats } from '../../src/stages/stage.js';

const DEFAULT_MAX_STEP_NS = 2_000_000n;

export interface AheadOfClockOptions {
  /** Most the stage's time moves in one tick (default 2 ms). */
  maxStepNs?: bigint;
  /** The sink the stage's output goes to: no tick moves the stage's time while it needs a drain. */
  downstream?: Drainable;
}

export class AheadOfClock implements Stage {
  readonly name: string;
  readonly maxStepNs: bigint;
  private readonly downstream: Drainable | null;
  /** The last time handed to the stage (-1n before the first). */
  private passed = -1n;
  private behind = 0n;
  private heldTicks = 0;

  /** `inner` must be a virtual-time stage (its tick catches up on everything due before `now`). */
  constructor(
    readonly inner: Stage,
    readonly leadNs: bigint,
    options: AheadOfClockOptions = {},
  ) {
    if (!inner.tick) throw new Error(`AheadOfClock: stage ${inner.name} has no tick(); nothing to pace`);
    if (leadNs < 0n) throw new RangeError(`AheadOfClock lead must be ≥ 0 ns, got ${leadNs}`);
    this.maxStepNs = options.maxStepNs ?? DEFAULT_MAX_STEP_NS;
    if (this.maxStepNs <= 0n)
      throw new RangeError(`AheadOfClock maxStepNs must be > 0 ns, got ${options.maxStepNs}`);
    this.downstream = options.downstream ?? null;
    this.name = inner.name;
  }

  process(pkt: Packet, emit: Emit): void {
    if (this.passed < 0n) this.passed = pkt.ts;
    this.inner.process(pkt, emit);
  }

  tick(now: bigint, emit: Emit): void {
    if (this.downstream?.needsDrain) {
      this.heldTicks++;
      return;
    }
    let t = now;
    if (this.passed >= 0n) {
      const target = now + this.leadNs;
      t = target - this.passed > this.maxStepNs ? this.passed + this.maxStepNs : target;
      if (t < this.passed) t = this.passed;
      this.behind = target - t;
    }
    this.passed = t;
    this.inner.tick!(t, emit);
  }

  flush(emit: Emit): void {
    this.inner.flush?.(emit);
  }

  stats(): StageStats {
    return {
      ...this.inner.stats(),
      leadNs: Number(this.leadNs),
      behindNs: Number(this.behind),
      heldTicks: this.heldTicks,
    };
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
  // tc takes whole bits per second: rounding moves the rate by under 1 bit/s, which the lead absorbs
  // for days at any rate the stage can send.
  const bitsPerSecond = Math.round(frameBytes * 8 * packetsPerSecond);
  if (!Number.isSafeInteger(bitsPerSecond) || bitsPerSecond <= 0 || !Number.isInteger(queuePackets))
    throw new RangeError(
      `kernel shaper: ${frameBytes} B × ${packetsPerSecond}/s with a queue of ${queuePackets} packets is not a rate tc can take`,
    );
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
