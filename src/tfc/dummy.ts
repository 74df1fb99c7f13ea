/**
 * Dummy-packet injection (classic TFC, RFC 4303 §2.6): packets with no content, sent on a schedule of
 * their own so an observer cannot tell busy from idle by the packet count. Real packets pass untouched.
 */
import { randomFillSync } from 'node:crypto';
import { internetChecksum } from '../codec/checksum.js';
import { parseIpv4, writeIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { LinkType, type Packet } from '../packet.js';
import type { TimeMode } from '../stages/run.js';
import { type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { cryptoRandom, exponential, type Random } from './random.js';

/**
 * Something that can make a dummy packet: `length` bytes of dummy payload (each source adds its own
 * headers), emitted at `ts`. EspEncapStage is one (ESP Next Header 59); ipv4DummySource is another.
 * The emitted packet is borrowed (see Packet). A source may refuse (e.g. an expired SA) and emit nothing.
 */
export interface DummySource {
  emitDummy(length: number, ts: bigint, emit: Emit): void;
}

/** When dummies go out: the gap from one to the next, in ns (≥ 1), drawn once per dummy. */
export interface DummySchedule {
  nextGapNs(): bigint;
}

/** A dummy every `intervalNs` ns exactly. */
export function constantSchedule(intervalNs: bigint): DummySchedule {
  if (typeof intervalNs !== 'bigint' || intervalNs <= 0n)
    throw new RangeError(`constantSchedule needs an interval > 0n ns, got ${String(intervalNs)}`);
  return { nextGapNs: () => intervalNs };
}

/**
 * Dummies as a Poisson process: exponential gaps with mean `meanIntervalNs` (rounded to whole ns, at least 1). `random`
 * defaults to the CSPRNG (an observer must not predict the next one); inject a seeded one for tests.
 */
export function poissonSchedule(
  meanIntervalNs: number | bigint,
  random: Random = cryptoRandom,
): DummySchedule {
  const mean = Number(meanIntervalNs);
  if (!(mean >= 1) || !Number.isFinite(mean))
    throw new RangeError(`poissonSchedule needs a mean interval ≥ 1 ns, got ${String(meanIntervalNs)}`);
  return { nextGapNs: () => BigInt(Math.max(1, Math.round(exponential(random, mean)))) };
}

export interface DummyInjectionOptions {
  schedule: DummySchedule;
  source: DummySource;
  /** Dummy payload bytes of every dummy (give this or lengthPolicy). */
  length?: number;
  /** Dummy payload bytes, drawn per dummy (e.g. sampled from the real traffic's sizes). */
  lengthPolicy?: () => number;
  /** Default 'virtual' (as runStage). */
  time?: TimeMode;
  /**
   * Real time only: most dummies one tick emits after a stall; those due beyond it are skipped and counted
   * in `missedDummies` (default 4).
   */
  maxBurst?: number;
  name?: string;
}

/**
 * Passes every packet through and emits dummies from `source` at the schedule's times, starting one gap
 * after the first time the stage sees (its first tick or packet). In virtual time each dummy has its
 * scheduled time as ts, and a packet first lets out every dummy due by its own ts, so the output stays in
 * time order however sparse the ticks; in real time dummies due by a tick go out with ts = now.
 * Stats: `dummies` emitted, `dummiesRefused` (the source emitted nothing: see its own stats), `missedDummies`.
 */
export class DummyInjectionStage implements Stage {
  readonly name: string;
  private readonly schedule: DummySchedule;
  private readonly source: DummySource;
  private readonly fixedLength: number;
  private readonly lengthPolicy: (() => number) | null;
  private readonly virtual: boolean;
  private readonly maxBurst: number;
  private readonly counters: StageStats = {
    ...emptyStats(),
    dummies: 0,
    dummiesRefused: 0,
    missedDummies: 0,
  };
  private started = false;
  private next = 0n;
  /** Where the current call's output goes; dummies reach it through `countDummy`. */
  private out: Emit = () => {};
  private emitted = false;
  private readonly countDummy: Emit = (pkt) => {
    this.emitted = true;
    this.counters.packetsOut++;
    this.counters.dummies = (this.counters.dummies as number) + 1;
    this.out(pkt);
  };

  constructor(options: DummyInjectionOptions) {
    this.name = options.name ?? 'dummy-injection';
    this.schedule = options.schedule;
    this.source = options.source;
    if (!this.schedule || typeof this.schedule.nextGapNs !== 'function')
      throw new TypeError('DummyInjectionStage needs a schedule (constantSchedule or poissonSchedule)');
    if (!this.source || typeof this.source.emitDummy !== 'function')
      throw new TypeError(
        'DummyInjectionStage needs a source with emitDummy (an EspEncapStage or ipv4DummySource)',
      );
    if ((options.length === undefined) === (options.lengthPolicy === undefined))
      throw new TypeError('DummyInjectionStage needs exactly one of length and lengthPolicy');
    this.fixedLength = options.length ?? 0;
    checkLength(this.fixedLength, 'length');
    this.lengthPolicy = options.lengthPolicy ?? null;
    const time = options.time ?? 'virtual';
    if (time !== 'virtual' && time !== 'real')
      throw new TypeError(`time must be 'virtual' or 'real', got '${String(time)}'`);
    this.virtual = time === 'virtual';
    this.maxBurst = options.maxBurst ?? 4;
    if (!Number.isInteger(this.maxBurst) || this.maxBurst < 1)
      throw new RangeError(`maxBurst must be a positive integer, got ${options.maxBurst}`);
  }

  process(pkt: Packet, emit: Emit): void {
    this.counters.packetsIn++;
    if (!this.started) this.begin(pkt.ts);
    else if (this.virtual) this.emitDue(pkt.ts, emit);
    this.counters.packetsOut++;
    emit(pkt);
  }

  tick(now: bigint, emit: Emit): void {
    if (!this.started) this.begin(now);
    else this.emitDue(now, emit);
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private begin(t: bigint): void {
    this.started = true;
    this.next = t + this.gap();
  }

  private gap(): bigint {
    const g = this.schedule.nextGapNs();
    if (typeof g !== 'bigint' || g < 1n)
      throw new RangeError(`the dummy schedule gave a gap of ${String(g)}; gaps must be bigints ≥ 1n ns`);
    return g;
  }

  /** Emits a dummy for every scheduled time ≤ now (real time: at most maxBurst, the rest missed). */
  private emitDue(now: bigint, emit: Emit): void {
    this.out = emit;
    let sent = 0;
    while (this.next <= now) {
      if (this.virtual || sent < this.maxBurst) {
        this.emitOne(this.virtual ? this.next : now);
        sent++;
      } else this.counters.missedDummies = (this.counters.missedDummies as number) + 1;
      this.next += this.gap();
    }
  }

  private emitOne(ts: bigint): void {
    let length = this.fixedLength;
    if (this.lengthPolicy) {
      length = this.lengthPolicy();
      checkLength(length, 'lengthPolicy()');
    }
    this.emitted = false;
    this.source.emitDummy(length, ts, this.countDummy);
    if (!this.emitted) this.counters.dummiesRefused = (this.counters.dummiesRefused as number) + 1;
  }
}

function checkLength(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`dummy ${what} must be a whole number of bytes ≥ 0, got ${n}`);
}

/** IPv4 protocol number of the plain dummies: 253, reserved for experimentation (RFC 3692). */
export const DUMMY_IP_PROTOCOL = 253;
const MAX_IPV4_PAYLOAD = 0xffff - IPV4_HEADER_LENGTH;

export interface Ipv4DummySourceOptions {
  /** Source and destination addresses in dotted-quad form. */
  src: string;
  dst: string;
  /** Default 64. */
  ttl?: number;
}

/**
 * Plain IPv4 dummies for pipelines without ESP: `length` random payload bytes behind a 20-byte IPv4 header
 * with protocol 253 (RFC 3692 experimental), DF set, emitted as raw IPv4 (link type 228) from one reused
 * buffer. Anyone who reads the protocol field can tell these apart, so they only hide traffic inside an
 * outer layer that hides that field. Inside ESP use the EspEncapStage as the source instead: its dummies are
 * ESP with Next Header 59, which the receiver authenticates and discards and an observer cannot tell from data.
 */
export class Ipv4DummySource implements DummySource {
  readonly src: number;
  readonly dst: number;
  readonly ttl: number;
  /** Dummies emitted. */
  dummies = 0;
  private buf = Buffer.alloc(0);
  private id = 0;

  constructor(options: Ipv4DummySourceOptions) {
    this.src = parseIpv4(options.src);
    this.dst = parseIpv4(options.dst);
    this.ttl = options.ttl ?? 64;
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 255)
      throw new RangeError(`ipv4DummySource ttl must be 1–255, got ${options.ttl}`);
  }

  emitDummy(length: number, ts: bigint, emit: Emit): void {
    if (!Number.isInteger(length) || length < 0 || length > MAX_IPV4_PAYLOAD)
      throw new RangeError(`an IPv4 dummy carries 0–${MAX_IPV4_PAYLOAD} payload bytes, asked for ${length}`);
    const total = IPV4_HEADER_LENGTH + length;
    if (this.buf.length < total) this.buf = Buffer.alloc(Math.max(total, 2048));
    const b = this.buf;
    b[0] = 0x45;
    b[1] = 0;
    b[2] = total >> 8;
    b[3] = total & 0xff;
    b[4] = this.id >> 8;
    b[5] = this.id & 0xff;
    this.id = (this.id + 1) & 0xffff;
    b[6] = 0x40; // DF
    b[7] = 0;
    b[8] = this.ttl;
    b[9] = DUMMY_IP_PROTOCOL;
    b[10] = 0;
    b[11] = 0;
    writeIpv4(b, 12, this.src);
    writeIpv4(b, 16, this.dst);
    const sum = internetChecksum(b, 0, IPV4_HEADER_LENGTH);
    b[10] = sum >> 8;
    b[11] = sum & 0xff;
    if (length > 0) randomFillSync(b, IPV4_HEADER_LENGTH, length);
    this.dummies++;
    emit({ data: b.subarray(0, total), ts, link: LinkType.IPV4 });
  }
}

/** `new Ipv4DummySource(options)`. */
export function ipv4DummySource(options: Ipv4DummySourceOptions): Ipv4DummySource {
  return new Ipv4DummySource(options);
}
