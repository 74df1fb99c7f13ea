/**
 * Constant-rate sending (DESIGN.md §8): packets leave only in the pacer's slots, one per slot, with a
 * filler (or nothing) when no packet waits, so the link shows the same rhythm whether or not anyone talks.
 */
import type { Packet } from '../packet.js';
import type { TimeMode } from '../stages/run.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import type { DummySource } from './dummy.js';
import { heldView, PacketPool } from './held-packets.js';
import type { Pacer } from './pacer.js';
import { HeldFifo } from './packet-queues.js';

export interface ConstantRateStageOptions {
  /** The slot schedule. Started at the first time the stage sees unless started already. */
  pacer: Pacer;
  /** Default 'virtual' (as runStage). */
  time?: TimeMode;
  /** Most packets waiting for a slot; more are dropped as 'queue-full' (default 1024). */
  queueLimit?: number;
  /** Makes a packet for a slot with nothing queued (e.g. the EspEncapStage: an ESP dummy). */
  filler?: DummySource;
  /** Dummy payload bytes of each filler (required with `filler`). */
  fillerLength?: number;
  name?: string;
}

const DEFAULT_QUEUE_LIMIT = 1024;

/**
 * Queues copies of the packets it gets and emits one per pacer slot, oldest first. A slot with nothing
 * queued carries a filler from `filler`, or stays empty (`idleSlots`).
 *
 * Virtual time (files): each packet leaves with its slot's exact time as ts, and a slot at time t serves
 * packets that arrived by t. A tick at `now` fills the slots before now (a packet stamped `now` may still
 * come); a packet fills the slots before its ts, is queued, then fills the slot at its ts if there is one,
 * so sparse ticks change nothing.
 * Flush sends what is still queued at the following slot times, one per slot, not all at once.
 *
 * Real time (live): slots are sent by ticks as the pacer's token bucket allows, with ts = now; packets wait
 * for the next tick. Flush cannot wait for slots, so it emits what is queued at the last tick's time and
 * counts it in `flushedUnpaced`.
 *
 * Put it after encryption (e.g. EspEncapStage > ConstantRateStage with that stage as filler): fillers made
 * only when the queue is empty keep ESP sequence numbers in order on the wire.
 * Stats: `fillers`, `fillersRefused` (the filler emitted nothing, e.g. an expired SA: the slot stays idle),
 * `idleSlots`, `queued` (now), `maxQueued`, and the pacer's `slots`, `missedSlots`,
 * `achievedRateHz`, `targetRateHz`, `gapErrorNs`. Emitted packets are borrowed until the next call.
 */
export class ConstantRateStage implements Stage {
  readonly name: string;
  readonly pacer: Pacer;
  private readonly virtual: boolean;
  private readonly queue: HeldFifo;
  private readonly pool = new PacketPool();
  private readonly filler: DummySource | null;
  private readonly fillerLength: number;
  private readonly counters = {
    ...emptyStats(),
    fillers: 0,
    fillersRefused: 0,
    idleSlots: 0,
    maxQueued: 0,
    flushedUnpaced: 0,
  };
  private lastTick = 0n;
  /** Where the current call's output goes; fillers reach it through `countFiller`. */
  private out: Emit = () => {};
  private fillerEmitted = false;
  private readonly countFiller: Emit = (pkt) => {
    this.fillerEmitted = true;
    this.counters.fillers++;
    this.counters.packetsOut++;
    this.out(pkt);
  };

  constructor(options: ConstantRateStageOptions) {
    if (!options.pacer || typeof options.pacer.takeVirtual !== 'function')
      throw new TypeError('ConstantRateStage needs a pacer (new Pacer(...) or Pacer.fromRate(...))');
    this.pacer = options.pacer;
    this.name = options.name ?? 'constant-rate';
    const time = options.time ?? 'virtual';
    if (time !== 'virtual' && time !== 'real')
      throw new TypeError(`time must be 'virtual' or 'real', got '${String(time)}'`);
    this.virtual = time === 'virtual';
    const limit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`queueLimit must be a positive integer (packets), got ${options.queueLimit}`);
    this.queue = new HeldFifo(limit);
    this.filler = options.filler ?? null;
    if (this.filler && typeof this.filler.emitDummy !== 'function')
      throw new TypeError('filler must have emitDummy(length, ts, emit) (e.g. an EspEncapStage)');
    this.fillerLength = options.fillerLength ?? -1;
    if (this.filler && (!Number.isInteger(this.fillerLength) || this.fillerLength < 0))
      throw new RangeError(
        `a filler needs fillerLength, a whole number of dummy payload bytes ≥ 0, got ${options.fillerLength}`,
      );
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    if (this.virtual) {
      // Slots before this packet's time are what earlier packets (or fillers) had: fill them first.
      if (!this.pacer.started) this.pacer.start(pkt.ts);
      else this.serveVirtual(pkt.ts, false, emit);
    }
    if (this.queue.full) countDrop(c, 'queue-full');
    else {
      this.queue.push(this.pool.hold(pkt));
      if (this.queue.size > c.maxQueued) c.maxQueued = this.queue.size;
    }
    if (this.virtual) this.serveVirtual(pkt.ts, true, emit);
  }

  tick(now: bigint, emit: Emit): void {
    if (!this.pacer.started) this.pacer.start(now);
    if (this.virtual) {
      this.serveVirtual(now, false, emit);
      return;
    }
    this.lastTick = now;
    const n = this.pacer.takeReal(now);
    for (let i = 0; i < n; i++) this.fillSlot(now, emit);
  }

  flush(emit: Emit): void {
    if (this.virtual) {
      while (this.queue.size > 0) {
        const t = this.pacer.nextDue;
        this.pacer.takeVirtual(t);
        this.fillSlot(t, emit);
      }
      return;
    }
    while (this.queue.size > 0) {
      this.counters.flushedUnpaced++;
      this.sendQueued(this.lastTick, emit);
    }
  }

  stats(): StageStats {
    const p = this.pacer.stats();
    return {
      ...this.counters,
      dropped: { ...this.counters.dropped },
      queued: this.queue.size,
      slots: p.slots,
      missedSlots: p.missedSlots,
      achievedRateHz: p.achievedRateHz,
      targetRateHz: p.targetRateHz,
      gapErrorNs: { ...p.gapErrorNs },
    };
  }

  /** Fills every slot due before `limit`, or by it when `inclusive`. */
  private serveVirtual(limit: bigint, inclusive: boolean, emit: Emit): void {
    const pacer = this.pacer;
    let t = inclusive ? pacer.takeVirtual(limit) : pacer.takeVirtualBefore(limit);
    while (t >= 0n) {
      this.fillSlot(t, emit);
      t = inclusive ? pacer.takeVirtual(limit) : pacer.takeVirtualBefore(limit);
    }
  }

  private fillSlot(ts: bigint, emit: Emit): void {
    if (this.queue.size > 0) this.sendQueued(ts, emit);
    else if (this.filler) {
      this.out = emit;
      this.fillerEmitted = false;
      this.filler.emitDummy(this.fillerLength, ts, this.countFiller);
      if (!this.fillerEmitted) {
        this.counters.fillersRefused++;
        this.counters.idleSlots++;
      }
    } else this.counters.idleSlots++;
  }

  private sendQueued(ts: bigint, emit: Emit): void {
    const h = this.queue.shift()!;
    this.counters.packetsOut++;
    try {
      emit(heldView(h, ts));
    } finally {
      this.pool.give(h);
    }
  }
}
