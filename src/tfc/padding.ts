/**
 * Size padding (classic TFC, RFC 4303 §2.7): policies that say how long a packet should look, and a stage
 * that makes IP packets that long by appending zero bytes after the datagram.
 */
import { networkOffset } from '../codec/network-offset.js';
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { cryptoRandom, type Random } from './random.js';

/** How long a packet of `length` bytes should look; never less than `length` (padding only adds). */
export interface PaddingPolicy {
  target(length: number): number;
}

function checkSize(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`${what} must be a positive whole number of bytes, got ${n}`);
}

/** Every packet padded to `n` bytes; longer packets stay as they are. */
export function fixedSize(n: number): PaddingPolicy {
  checkSize(n, 'fixedSize');
  return { target: (length) => (length < n ? n : length) };
}

export interface SizeBucketsOptions {
  /**
   * Packets longer than the largest bucket: 'unchanged' (default: never grows a packet past the sizes you
   * chose, e.g. your MTU) or 'multiple' (the next multiple of the largest bucket, so large sizes are blurred
   * too, at the cost of packets bigger than any bucket).
   */
  above?: 'unchanged' | 'multiple';
}

/** Each packet padded to the smallest bucket that holds it (buckets in any order; see `above`). */
export function sizeBuckets(buckets: readonly number[], options: SizeBucketsOptions = {}): PaddingPolicy {
  if (!Array.isArray(buckets) || buckets.length === 0)
    throw new RangeError('sizeBuckets needs at least one bucket size');
  for (const b of buckets) checkSize(b, 'each bucket size');
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  const largest = sorted[sorted.length - 1]!;
  const above = options.above ?? 'unchanged';
  if (above !== 'unchanged' && above !== 'multiple')
    throw new TypeError(`sizeBuckets above must be 'unchanged' or 'multiple', got '${String(above)}'`);
  const multiple = above === 'multiple';
  return {
    target(length) {
      if (length > largest) return multiple ? Math.ceil(length / largest) * largest : length;
      let lo = 0;
      let hi = sorted.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[mid]! >= length) hi = mid;
        else lo = mid + 1;
      }
      return sorted[lo]!;
    },
  };
}

export interface RandomPaddingOptions {
  /** Most bytes added; each packet gets a uniform whole number from 0 to max. */
  max: number;
  /** Uniform in [0, 1); defaults to the CSPRNG (an observer must not predict it). Inject a seeded one for tests. */
  random?: Random;
}

/** Each packet grows by a uniform random 0..max bytes. */
export function randomPadding(options: RandomPaddingOptions): PaddingPolicy {
  const max = options.max;
  if (!Number.isInteger(max) || max < 0)
    throw new RangeError(`randomPadding max must be a whole number of bytes ≥ 0, got ${max}`);
  const random = options.random ?? cryptoRandom;
  return { target: (length) => length + Math.floor(random() * (max + 1)) };
}

export interface PaddingStageOptions {
  name?: string;
}

/**
 * Pads each IPv4 or IPv6 packet to `policy.target(datagram length)` by appending zero bytes after the IP
 * datagram. The IP header and its length fields stay as they were: the receiver finds the datagram by its
 * own length, which is what TFC padding inside a tunnel is (RFC 4303 §2.7) and what the link then shows.
 * Bytes the frame already carries after the datagram (an Ethernet trailer) count towards the target and are
 * kept; a packet already at or above its target passes unchanged: it never truncates.
 *
 * Frames that carry no IP pass unchanged (`passedThrough`). IP packets whose length fields contradict the
 * frame are dropped as `malformed`, captures cut short as `truncated` (padding them would show a wrong size).
 * Stats: `padded` packets, `ipBytes` (datagram bytes in), `bytesAdded`, `overhead` = bytesAdded / ipBytes.
 * Emitted padded packets borrow the stage's buffer until the next call.
 */
export class PaddingStage implements Stage {
  readonly name: string;
  readonly policy: PaddingPolicy;
  private buf = Buffer.alloc(2048);
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private readonly counters: StageStats = {
    ...emptyStats(),
    padded: 0,
    passedThrough: 0,
    ipBytes: 0,
    bytesAdded: 0,
  };

  constructor(policy: PaddingPolicy, options: PaddingStageOptions = {}) {
    if (!policy || typeof policy.target !== 'function')
      throw new TypeError('PaddingStage needs a policy (fixedSize, sizeBuckets, randomPadding or your own)');
    this.policy = policy;
    this.name = options.name ?? 'padding';
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    const data = pkt.data;
    const netOff = networkOffset(data, pkt.link, this.version);
    if (netOff < 0) {
      c.passedThrough = (c.passedThrough as number) + 1;
      c.packetsOut++;
      emit(pkt);
      return;
    }
    if (pkt.origLen !== undefined && pkt.origLen > data.length) {
      countDrop(c, 'truncated');
      return;
    }
    const region = data.length - netOff;
    const length =
      this.version.ip === 4 ? ipv4Length(data, netOff, region) : ipv6Length(data, netOff, region);
    if (length < 0) {
      countDrop(c, 'malformed');
      return;
    }
    const target = this.policy.target(length);
    if (!Number.isInteger(target))
      throw new TypeError(
        `padding policy returned ${target} for ${length} bytes; it must return a whole number`,
      );
    c.ipBytes = (c.ipBytes as number) + length;
    c.packetsOut++;
    if (target <= region) {
      emit(pkt);
      return;
    }
    const n = netOff + target;
    if (this.buf.length < n) this.buf = Buffer.alloc(Math.max(n, this.buf.length * 2));
    const out = this.buf;
    out.set(data, 0);
    out.fill(0, data.length, n);
    c.padded = (c.padded as number) + 1;
    c.bytesAdded = (c.bytesAdded as number) + (target - region);
    const padded: Packet = { data: out.subarray(0, n), ts: pkt.ts, link: pkt.link };
    if (pkt.ifIndex !== undefined) padded.ifIndex = pkt.ifIndex;
    emit(padded);
  }

  stats(): StageStats {
    const c = this.counters;
    const ipBytes = c.ipBytes as number;
    return {
      ...c,
      dropped: { ...c.dropped },
      overhead: ipBytes > 0 ? (c.bytesAdded as number) / ipBytes : 0,
    };
  }
}

/** The IPv4 total length when the header is consistent and the datagram fits in `region` bytes, else -1. */
function ipv4Length(data: Buffer, off: number, region: number): number {
  if (region < 20 || data[off]! >> 4 !== 4) return -1;
  const headerLength = (data[off]! & 0x0f) << 2;
  const total = (data[off + 2]! << 8) | data[off + 3]!;
  return headerLength >= 20 && total >= headerLength && total <= region ? total : -1;
}

/** 40 + the IPv6 payload length when the datagram fits in `region` bytes, else -1. */
function ipv6Length(data: Buffer, off: number, region: number): number {
  if (region < 40 || data[off]! >> 4 !== 6) return -1;
  const total = 40 + ((data[off + 4]! << 8) | data[off + 5]!);
  return total <= region ? total : -1;
}
