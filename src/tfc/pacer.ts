/**
 * The constant-rate clock of TFC (DESIGN.md §8): one send slot every interval, exact in virtual time and a
 * token bucket over timer ticks in real time, with statistics of how closely the slots kept the rate.
 *
 * Intervals need not be whole nanoseconds: 1400 bytes at 123 Mbit/s is 91056.91… ns. The interval is kept as
 * the exact fraction num/den ns and slot k is due at t0 + ⌊k·num/den⌋, so each gap is ⌊num/den⌋ or
 * ⌈num/den⌉ (within 1 ns of the true interval) and after k slots the schedule is less than 1 ns behind
 * k·interval: the long-run rate is exact.
 */
import { SampleReservoir, type SampleSummary } from './sample-reservoir.js';

export interface PacerOptions {
  /** The interval between slots in ns (divided by `intervalDivisor` when given). */
  intervalNs: bigint;
  /** The interval is intervalNs / intervalDivisor ns, for intervals that are not whole ns (default 1n). */
  intervalDivisor?: bigint;
  /**
   * Real time only: most slots one tick may send after a stall (the token bucket's depth); slots due
   * beyond it are skipped and counted as missed. Default: 4, or enough slots for 2 ms when that is more,
   * so runStage's 1 ms timer never loses slots when it fires on time.
   */
  maxBurst?: number;
  /** Gap errors kept for percentiles (see SampleReservoir; default 65536). */
  gapSamples?: number;
}

export type PacerRateOptions = Omit<PacerOptions, 'intervalNs' | 'intervalDivisor'>;

export interface PacerStats {
  /** Slots handed out (sent). */
  slots: number;
  /** Real time: slots that fell due while the bucket was full and were skipped. Always 0 in virtual time. */
  missedSlots: number;
  /** Slots per second between the first and the last slot sent: (slots − 1) / (last − first). */
  achievedRateHz: number;
  targetRateHz: number;
  /** |actual gap − interval| in ns over consecutive slots sent (exact mean/max; percentiles: see gapSamples). */
  gapErrorNs: SampleSummary;
}

/** Slots one tick may send by default: 4, or what 2 ms holds at this interval. */
const DEFAULT_BURST_SPAN_NS = 2_000_000;
/** Largest denominator for which the remainder arithmetic stays exact in doubles. */
const MAX_DIVISOR = 2n ** 52n;

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * Use either `takeVirtual` (files: time from packet timestamps) or `takeReal` (live: time from the wall
 * clock) on one pacer, not both.
 */
export class Pacer {
  /** Numerator and denominator of the interval in ns, in lowest terms. */
  readonly intervalNum: bigint;
  readonly intervalDen: bigint;
  /** The interval in ns as a double (for statistics; the schedule uses the exact fraction). */
  readonly intervalNs: number;
  readonly maxBurst: number;

  private readonly whole: bigint;
  private readonly wholePlusOne: bigint;
  private readonly wholeN: number;
  private readonly frac: number;
  private readonly den: number;

  private t0 = 0n;
  private isStarted = false;
  private mode: 'virtual' | 'real' | null = null;
  /** Virtual: the due time of slot `index`, and (index·frac) mod den. */
  private due = 0n;
  private rem = 0;
  private index = 0;
  /** Virtual: the gap from slot index − 1 to slot index, in ns. */
  private gapToDue = 0;
  /** Real: slots handed out and skipped so far. */
  private consumed = 0;
  private missed = 0;
  private firstSent = 0n;
  private lastSent = 0n;
  private readonly gapErrors: SampleReservoir;

  constructor(options: PacerOptions) {
    const divisor = options.intervalDivisor ?? 1n;
    if (typeof options.intervalNs !== 'bigint' || typeof divisor !== 'bigint')
      throw new TypeError('Pacer intervalNs and intervalDivisor must be bigints (ns)');
    if (options.intervalNs <= 0n || divisor <= 0n)
      throw new RangeError(
        `Pacer interval must be positive, got ${options.intervalNs}/${divisor} ns: give intervalNs > 0n and intervalDivisor > 0n`,
      );
    const g = gcd(options.intervalNs, divisor);
    this.intervalNum = options.intervalNs / g;
    this.intervalDen = divisor / g;
    if (this.intervalNum < this.intervalDen)
      throw new RangeError(
        `Pacer interval ${this.intervalNum}/${this.intervalDen} ns is below 1 ns: lower the rate or send bigger packets`,
      );
    if (this.intervalDen >= MAX_DIVISOR)
      throw new RangeError(
        `Pacer interval divisor ${this.intervalDen} is too large (at most 2^52 after reduction): round the rate`,
      );
    this.whole = this.intervalNum / this.intervalDen;
    this.wholePlusOne = this.whole + 1n;
    this.wholeN = Number(this.whole);
    this.frac = Number(this.intervalNum % this.intervalDen);
    this.den = Number(this.intervalDen);
    this.intervalNs = Number(this.intervalNum) / this.den;

    const burst = options.maxBurst ?? Math.max(4, Math.ceil(DEFAULT_BURST_SPAN_NS / this.intervalNs));
    if (!Number.isInteger(burst) || burst < 1)
      throw new RangeError(`Pacer maxBurst must be a positive integer, got ${options.maxBurst}`);
    this.maxBurst = burst;
    this.gapErrors = new SampleReservoir(options.gapSamples);
  }

  /**
   * A pacer for `packetBytes`-byte packets at `bitsPerSecond`: interval = packetBytes·8·10^9 / bitsPerSecond
   * ns, kept exact (see the file comment).
   */
  static fromRate(bitsPerSecond: number, packetBytes: number, options: PacerRateOptions = {}): Pacer {
    if (!Number.isSafeInteger(bitsPerSecond) || bitsPerSecond <= 0)
      throw new RangeError(`rate must be a positive whole number of bits per second, got ${bitsPerSecond}`);
    if (!Number.isSafeInteger(packetBytes) || packetBytes <= 0)
      throw new RangeError(`packet size must be a positive whole number of bytes, got ${packetBytes}`);
    return new Pacer({
      ...options,
      intervalNs: BigInt(packetBytes) * 8_000_000_000n,
      intervalDivisor: BigInt(bitsPerSecond),
    });
  }

  /** Starts the schedule at t0 (ns, ≥ 0): slot k is due at t0 + ⌊k·interval⌋. */
  start(t0: bigint): void {
    if (this.isStarted) throw new Error('Pacer.start: the pacer is already started');
    if (t0 < 0n) throw new RangeError(`Pacer.start needs a time ≥ 0 ns, got ${t0}`);
    this.t0 = t0;
    this.due = t0;
    this.isStarted = true;
  }

  get started(): boolean {
    return this.isStarted;
  }

  /** When slot 0 was due (0n before start). */
  get startTime(): bigint {
    return this.t0;
  }

  /** Virtual time: the due time of the next slot (exact). */
  get nextDue(): bigint {
    return this.due;
  }

  /** The exact due time of slot k (k ≥ 0) once started: t0 + ⌊k·num/den⌋. */
  slotTime(k: number | bigint): bigint {
    return this.t0 + (BigInt(k) * this.intervalNum) / this.intervalDen;
  }

  /**
   * Virtual time: consumes and returns the next slot's time when it is ≤ now, else -1n (nothing consumed).
   * A caller loops until -1n to catch up on every slot due by now.
   */
  takeVirtual(now: bigint): bigint {
    if (this.mode !== 'virtual') this.enter('virtual');
    return this.due > now ? -1n : this.take();
  }

  /**
   * As takeVirtual, for slots strictly before `now`: what a caller may fill once everything that arrived
   * before `now` is known, while packets stamped `now` may still come.
   */
  takeVirtualBefore(now: bigint): bigint {
    if (this.mode !== 'virtual') this.enter('virtual');
    return this.due >= now ? -1n : this.take();
  }

  /** Consumes the next virtual slot and returns its time. */
  private take(): bigint {
    const t = this.due;
    if (this.index > 0) this.gapErrors.add(Math.abs(this.gapToDue - this.intervalNs));
    else this.firstSent = t;
    this.lastSent = t;
    this.index++;
    this.rem += this.frac;
    if (this.rem >= this.den) {
      this.rem -= this.den;
      this.due = t + this.wholePlusOne;
      this.gapToDue = this.wholeN + 1;
    } else {
      this.due = t + this.whole;
      this.gapToDue = this.wholeN;
    }
    return t;
  }

  /**
   * Real time: how many slots may be sent now. Slot k becomes a token at t0 + ⌊k·interval⌋; tokens beyond
   * maxBurst are skipped (missedSlots). The caller sends every slot returned, at `now`: that is what the
   * gap statistics record (the first at its distance from the last send, the rest of a burst at gap 0).
   */
  takeReal(now: bigint): number {
    if (this.mode !== 'real') this.enter('real');
    if (now < this.t0) return 0;
    const due = Number(((now - this.t0) * this.intervalDen) / this.intervalNum) + 1;
    let n = due - this.consumed - this.missed;
    if (n <= 0) return 0;
    if (n > this.maxBurst) {
      this.missed += n - this.maxBurst;
      n = this.maxBurst;
    }
    if (this.consumed === 0) this.firstSent = now;
    else this.gapErrors.add(Math.abs(Number(now - this.lastSent) - this.intervalNs));
    for (let i = 1; i < n; i++) this.gapErrors.add(this.intervalNs);
    this.consumed += n;
    this.lastSent = now;
    return n;
  }

  private enter(mode: 'virtual' | 'real'): void {
    if (!this.isStarted)
      throw new Error(`Pacer.take${mode === 'virtual' ? 'Virtual' : 'Real'}: call start(t0) first`);
    if (this.mode !== null)
      throw new Error(`Pacer: this pacer runs in ${this.mode} time; use a separate pacer for ${mode} time`);
    this.mode = mode;
  }

  stats(): PacerStats {
    const slots = this.mode === 'real' ? this.consumed : this.index;
    const span = Number(this.lastSent - this.firstSent);
    return {
      slots,
      missedSlots: this.missed,
      achievedRateHz: slots > 1 && span > 0 ? ((slots - 1) * 1e9) / span : 0,
      targetRateHz: (this.den * 1e9) / Number(this.intervalNum),
      gapErrorNs: this.gapErrors.summary(),
    };
  }
}
