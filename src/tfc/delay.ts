/**
 * Added delay and jitter: holds each packet for a fixed delay plus a random extra, to blur the timing an
 * observer correlates on (or to emulate a slower path in tests).
 */
import type { Packet } from '../packet.js';
import type { TimeMode } from '../stages/run.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { type HeldPacket, heldView, PacketPool } from './held-packets.js';
import { HeldFifo, HeldHeap } from './packet-queues.js';
import { cryptoRandom, exponential, type Random } from './random.js';

/** Random extra delay: uniform whole ns in [−maxNs, +maxNs], or exponential with mean meanNs (always ≥ 0). */
export type Jitter = { kind: 'uniform'; maxNs: bigint } | { kind: 'exponential'; meanNs: bigint };

export interface DelayStageOptions {
  /** Fixed delay added to every packet, in ns (≥ 0). */
  delayNs: bigint;
  jitter?: Jitter;
  /** Uniform in [0, 1) for the jitter; defaults to the CSPRNG. Inject a seeded one for tests. */
  random?: Random;
  /** A packet never leaves before one that arrived earlier (default true); jitter then only adds. */
  keepOrder?: boolean;
  /** Default 'virtual' (as runStage). */
  time?: TimeMode;
  /** Most packets held; more are dropped as 'queue-full' (default 65536). */
  limit?: number;
  name?: string;
}

const DEFAULT_LIMIT = 65_536;

/**
 * Holds a copy of each packet until release = ts + delay + jitter. With keepOrder (the default) a packet's
 * release is at least the previous packet's, so order is kept and one waits behind another rather than
 * overtaking it; without it packets leave in release order (ties in arrival order).
 *
 * Virtual time: packets leave with their release time as ts; a tick releases all due by now, and a packet
 * first releases all due by its own ts (output in time order however sparse the ticks). Real time: a tick
 * releases all due by now with ts = now. Flush releases everything still held, in release order, each at
 * its release time. Stats: `held` (now), `maxHeld`, `addedDelayNs` {mean, max} (release − ts over packets
 * taken in). Emitted packets are borrowed until the next call.
 */
export class DelayStage implements Stage {
  readonly name: string;
  private readonly delay: number;
  private readonly jitter: Jitter | null;
  private readonly jitterNs: number;
  private readonly random: Random;
  private readonly keepOrder: boolean;
  private readonly virtual: boolean;
  private readonly queue: HeldFifo | HeldHeap;
  private readonly pool = new PacketPool();
  private lastRelease = -1n;
  private delaySum = 0;
  private delayMax = 0;
  private readonly counters = { ...emptyStats(), maxHeld: 0 };

  constructor(options: DelayStageOptions) {
    if (typeof options.delayNs !== 'bigint' || options.delayNs < 0n)
      throw new RangeError(`delayNs must be a bigint ≥ 0n ns, got ${String(options.delayNs)}`);
    this.delay = Number(options.delayNs);
    this.jitter = options.jitter ?? null;
    this.jitterNs = 0;
    if (this.jitter) {
      const j = this.jitter;
      const size = j.kind === 'uniform' ? j.maxNs : j.kind === 'exponential' ? j.meanNs : undefined;
      if (typeof size !== 'bigint' || size < 0n)
        throw new RangeError(
          "jitter must be { kind: 'uniform', maxNs } or { kind: 'exponential', meanNs } with a bigint ≥ 0n ns",
        );
      if (j.kind === 'uniform' && size > options.delayNs)
        throw new RangeError(
          `uniform jitter ±${size} ns needs delayNs ≥ ${size} (a packet cannot leave before it arrived); raise delayNs or use exponential jitter`,
        );
      this.jitterNs = Number(size);
    }
    this.random = options.random ?? cryptoRandom;
    this.keepOrder = options.keepOrder ?? true;
    const time = options.time ?? 'virtual';
    if (time !== 'virtual' && time !== 'real')
      throw new TypeError(`time must be 'virtual' or 'real', got '${String(time)}'`);
    this.virtual = time === 'virtual';
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer (packets), got ${options.limit}`);
    this.queue = this.keepOrder ? new HeldFifo(limit) : new HeldHeap(limit);
    this.name = options.name ?? 'delay';
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    if (this.queue.full) countDrop(c, 'queue-full');
    else {
      const h = this.pool.hold(pkt);
      let added = this.delay + this.sampleJitter();
      let due = pkt.ts + BigInt(added);
      if (this.keepOrder && due < this.lastRelease) {
        added += Number(this.lastRelease - due);
        due = this.lastRelease;
      }
      this.lastRelease = due;
      h.due = due;
      this.queue.push(h);
      this.delaySum += added;
      if (added > this.delayMax) this.delayMax = added;
      if (this.queue.size > c.maxHeld) c.maxHeld = this.queue.size;
    }
    if (this.virtual) this.release(pkt.ts, false, emit);
  }

  tick(now: bigint, emit: Emit): void {
    this.release(now, !this.virtual, emit);
  }

  flush(emit: Emit): void {
    let h = this.queue.shift();
    while (h) {
      this.send(h, h.due, emit);
      h = this.queue.shift();
    }
  }

  stats(): StageStats {
    const taken = this.counters.packetsIn - (this.counters.dropped['queue-full'] ?? 0);
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      held: this.queue.size,
      addedDelayNs: { mean: taken > 0 ? this.delaySum / taken : 0, max: this.delayMax },
    };
  }

  /** Whole ns of jitter for one packet. */
  private sampleJitter(): number {
    const j = this.jitter;
    if (!j) return 0;
    if (j.kind === 'uniform') return Math.floor(this.random() * (2 * this.jitterNs + 1)) - this.jitterNs;
    return Math.round(exponential(this.random, this.jitterNs));
  }

  /** Emits every packet due by `now`, at its release time or (atNow) at now. */
  private release(now: bigint, atNow: boolean, emit: Emit): void {
    let h = this.queue.peek();
    while (h && h.due <= now) {
      this.queue.shift();
      this.send(h, atNow ? now : h.due, emit);
      h = this.queue.peek();
    }
  }

  private send(h: HeldPacket, ts: bigint, emit: Emit): void {
    this.counters.packetsOut++;
    try {
      emit(heldView(h, ts));
    } finally {
      this.pool.give(h);
    }
  }
}
