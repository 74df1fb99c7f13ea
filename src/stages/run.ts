/**
 * Drives a stage from a packet source into a sink, with time: the loop every file job and live job
 * shares (DESIGN.md §2).
 */
import type { Packet } from '../packet.js';
import { type Clock, RealClock, VirtualClock } from './clock.js';
import { type Drainable, isDrainable } from './pipeline.js';
import type { Emit, Stage } from './stage.js';

/**
 * 'virtual': time is the packets' own timestamps (files: deterministic, as fast as the CPU allows).
 * 'real': time is the wall clock, and a timer ticks the stage while no packets arrive (live input).
 */
export type TimeMode = 'virtual' | 'real';

/** Default spacing of ticks in real time: 1 ms. */
export const DEFAULT_REAL_TICK_INTERVAL_NS = 1_000_000n;

export interface RunStageOptions {
  /** Default 'virtual'. */
  time?: TimeMode;
  /**
   * The clock: for 'virtual' a VirtualClock that the run advances (default: a new one, set by the
   * first packet); for 'real' any Clock (default: a new RealClock).
   */
  clock?: Clock;
  /**
   * Least clock advance between two ticks, in ns. A stage with `tick` is ticked before a packet
   * whenever the clock has moved at least this far since the last tick, and in real time also by a
   * timer at this period. Default: 0 in virtual time (a tick before every packet), 1 ms in real time.
   * Ticks are not on a grid: a time-driven stage must catch up on everything due by `now` in one tick.
   */
  tickInterval?: bigint;
  /**
   * Stops reading the source, even while it is idle (its iterator's return() is called, not awaited);
   * the stage is still flushed unless `flush` is false.
   */
  signal?: AbortSignal;
  /** Flush the stage at the end (default true). */
  flush?: boolean;
  /** Something outside the stage (e.g. the writer the sink feeds) to wait for when it needs a drain. */
  drain?: Drainable;
}

export interface RunStageResult {
  packetsIn: number;
  packetsOut: number;
  ticks: number;
  /** True when the run stopped because `signal` aborted. */
  aborted: boolean;
  /** The clock the run used, at its final time. */
  clock: Clock;
}

/**
 * Ticks a stage when its clock has moved far enough since the last tick (shared by the run loop and
 * the stream adapters).
 */
export class Ticker {
  ticks = 0;
  private last = 0n;
  private ticked = false;

  constructor(
    private readonly stage: Stage,
    readonly clock: Clock,
    private readonly interval: bigint,
  ) {
    if (interval < 0n) throw new RangeError(`tickInterval must be ≥ 0 ns, got ${interval}`);
  }

  /** Ticks when the stage has tick() and the interval has passed (or it never ticked); true if it did. */
  maybeTick(emit: Emit): boolean {
    const tick = this.stage.tick;
    if (!tick) return false;
    const now = this.clock.now();
    if (this.ticked && now - this.last < this.interval) return false;
    this.ticked = true;
    this.last = now;
    this.ticks++;
    tick.call(this.stage, now, emit);
    return true;
  }
}

/** The clock and tick spacing a run uses, from its options (validated). */
export function timeSetup(options: { time?: TimeMode; clock?: Clock; tickInterval?: bigint }): {
  time: TimeMode;
  clock: Clock;
  virtual: VirtualClock | null;
  interval: bigint;
} {
  const time = options.time ?? 'virtual';
  if (time === 'virtual') {
    if (options.clock && !(options.clock instanceof VirtualClock)) {
      throw new TypeError(
        "time: 'virtual' needs a VirtualClock (or no clock); use time: 'real' for other clocks",
      );
    }
    const virtual = (options.clock as VirtualClock | undefined) ?? new VirtualClock();
    return { time, clock: virtual, virtual, interval: options.tickInterval ?? 0n };
  }
  if (time !== 'real') throw new TypeError(`time must be 'virtual' or 'real', got '${String(time)}'`);
  const interval = options.tickInterval ?? DEFAULT_REAL_TICK_INTERVAL_NS;
  if (interval <= 0n)
    throw new RangeError("time: 'real' needs a tickInterval > 0 ns (it sets the timer period)");
  return { time, clock: options.clock ?? new RealClock(), virtual: null, interval };
}

const ABORTED = Symbol('aborted');

function iteratorOf(
  source: AsyncIterable<Packet> | Iterable<Packet>,
): AsyncIterator<Packet> | Iterator<Packet> {
  return Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown })?.then === 'function';
}

/** A promise that resolves to ABORTED when `signal` aborts (null without a signal). */
function abortPromise(
  signal: AbortSignal | undefined,
): { promise: Promise<typeof ABORTED>; dispose(): void } | null {
  if (!signal) return null;
  let onAbort = () => {};
  const promise = new Promise<typeof ABORTED>((resolve) => {
    onAbort = () => resolve(ABORTED);
    if (signal.aborted) resolve(ABORTED);
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/**
 * Feeds every packet of `source` to `stage` and everything it emits to `sink`, then flushes it.
 *
 * Time: see RunStageOptions. In virtual time the clock moves to each packet's `ts` (never backwards)
 * before the packet; in real time a timer also ticks the stage between packets.
 * Lifetimes: the sink borrows each packet for the call only (see Packet); the source's packets are
 * handed to the stage as they come, so a source that reuses buffers is fine.
 * Memory: when the stage (or `options.drain`) is Drainable and needs a drain, the loop awaits it
 * before reading on.
 */
export async function runStage(
  source: AsyncIterable<Packet> | Iterable<Packet>,
  stage: Stage,
  sink: Emit,
  options: RunStageOptions = {},
): Promise<RunStageResult> {
  const { time, clock, virtual, interval } = timeSetup(options);
  let packetsIn = 0;
  let packetsOut = 0;
  const out: Emit = (pkt) => {
    packetsOut++;
    sink(pkt);
  };
  const ticker = new Ticker(stage, clock, interval);
  const drainables: Drainable[] = [];
  if (isDrainable(stage)) drainables.push(stage);
  if (options.drain) drainables.push(options.drain);
  const signal = options.signal;
  let aborted = false;

  let timer: NodeJS.Timeout | undefined;
  if (time === 'real' && stage.tick) {
    const periodMs = Math.max(1, Number(interval / 1_000_000n));
    timer = setInterval(() => ticker.maybeTick(out), periodMs);
    timer.unref();
  }
  const it = iteratorOf(source);
  const stopped = abortPromise(signal);
  let done = false;
  try {
    while (true) {
      const next = it.next();
      const r = stopped && isPromise(next) ? await Promise.race([next, stopped.promise]) : await next;
      if (r === ABORTED || signal?.aborted) {
        aborted = true;
        break;
      }
      if (r.done) {
        done = true;
        break;
      }
      const pkt = r.value;
      packetsIn++;
      virtual?.advanceTo(pkt.ts);
      ticker.maybeTick(out);
      stage.process(pkt, out);
      for (const d of drainables) if (d.needsDrain) await d.drain();
    }
    // No ticks once the input has ended: with a sink slower than the ticks the final drain would never end.
    if (timer) clearInterval(timer);
    if (options.flush ?? true) stage.flush?.(out);
    for (const d of drainables) if (d.needsDrain) await d.drain();
  } finally {
    if (timer) clearInterval(timer);
    stopped?.dispose();
    if (!done && it.return) {
      // After an abort the source may be idle with a next() pending, and an async generator would
      // only run return() after it: ask it to stop without waiting.
      const closing = it.return();
      if (aborted) Promise.resolve(closing).catch(() => {});
      else await closing;
    }
  }
  return { packetsIn, packetsOut, ticks: ticker.ticks, aborted, clock };
}
