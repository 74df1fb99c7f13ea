/**
 * Where time-driven stages get "now" (DESIGN.md §2): a virtual clock moved by packet timestamps when
 * processing a file, so results are deterministic and as fast as the CPU allows, and the real clock
 * when live. Both count nanoseconds since the Unix epoch, like `Packet.ts`.
 */

export interface Clock {
  /** Nanoseconds since the Unix epoch. Never decreases. */
  now(): bigint;
}

/**
 * Time that moves only when told to: `advanceTo(pkt.ts)` before each packet. It never goes backwards;
 * a timestamp earlier than the current time (out-of-order capture records) leaves it where it is and
 * is counted in `backwardSteps`.
 */
export class VirtualClock implements Clock {
  private current: bigint;
  private started: boolean;
  /** How many times advanceTo was given a time earlier than now. */
  backwardSteps = 0;

  /** With no `start`, the first advanceTo sets the time (whatever it is); until then now() is 0. */
  constructor(start?: bigint) {
    this.current = start ?? 0n;
    this.started = start !== undefined;
  }

  now(): bigint {
    return this.current;
  }

  /** True once the clock has a time (from the constructor or the first advanceTo). */
  get isSet(): boolean {
    return this.started;
  }

  /** Moves to `t` if it is later than now; returns now. */
  advanceTo(t: bigint): bigint {
    if (!this.started) {
      this.current = t;
      this.started = true;
    } else if (t > this.current) this.current = t;
    else if (t < this.current) this.backwardSteps++;
    return this.current;
  }

  /** Moves forward by `ns` (≥ 0); returns now. */
  advanceBy(ns: bigint): bigint {
    if (ns < 0n) throw new RangeError(`VirtualClock.advanceBy needs a non-negative step, got ${ns}`);
    this.started = true;
    this.current += ns;
    return this.current;
  }
}

/**
 * Wall-clock nanoseconds that never go backwards: the epoch time is read once (`Date.now()`, ms) at
 * construction and the monotonic `process.hrtime.bigint()` is added to it, so NTP steps or a changed
 * system clock after that do not move it. Two RealClocks made at different times may differ by up to a
 * millisecond (Date.now's resolution); share `realClock()` where timestamps from several sources must
 * be comparable.
 */
export class RealClock implements Clock {
  private readonly epochAtAnchor: bigint;
  private readonly hrAtAnchor: bigint;

  constructor() {
    this.hrAtAnchor = process.hrtime.bigint();
    this.epochAtAnchor = BigInt(Date.now()) * 1_000_000n;
  }

  now(): bigint {
    return this.epochAtAnchor + (process.hrtime.bigint() - this.hrAtAnchor);
  }
}

let shared: RealClock | undefined;

/** The process-wide RealClock (made on first use), so every live source stamps on one timeline. */
export function realClock(): RealClock {
  shared ??= new RealClock();
  return shared;
}
