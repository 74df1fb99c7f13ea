/**
 * The IP-TFS sender's payload builder (RFC 9347 §2.2, §6.1): queues inner IPv4/IPv6 packets and packs them
 * into AGGFRAG payloads of one fixed size, aggregating small packets and fragmenting large ones across
 * consecutive payloads, with a pad block filling what is left (an all-pad payload when nothing is queued).
 * The ESP stage puts each payload behind an ESP header with the next sequence number (encapsulateAggfrag).
 */
import {
  AGGFRAG_BASIC_HEADER_LENGTH,
  AGGFRAG_CC_HEADER_LENGTH,
  type AggfragCongestionControl,
  AggfragRepr,
} from '../codec/aggfrag.js';
import {
  BLOCK_TYPE_IPV4,
  BLOCK_TYPE_IPV6,
  IPV4_MIN_LENGTH,
  IPV6_HEADER_LENGTH,
  innerPacketLength,
} from './iptfs-blocks.js';

export interface IptfsSenderOptions {
  /** Bytes of every AGGFRAG payload it builds (header + data blocks + pad); the caller sizes it to the outer packet. */
  payloadSize: number;
  /**
   * RFC 9347 §6.1.4 D bit: never split an inner packet; one that does not fit what is left waits for the
   * next payload; one bigger than a whole payload is dropped ('too-big').
   */
  dontFragment?: boolean;
  /** Bound on the bytes waiting to be sent (default 1 MiB); beyond it enqueue drops ('queue-full'). */
  maxQueueBytes?: number;
  /** Longest an inner packet may wait (ns); older ones are dropped ('too-late') when a payload is built. */
  maxDelayNs?: bigint;
  /** Build sub-type 1 headers (congestion control, §6.1.2) instead of sub-type 0. */
  congestionControl?: boolean;
}

export interface IptfsSenderStats {
  /** enqueue calls. */
  packetsIn: number;
  payloads: number;
  /** Payloads that carried no inner-packet byte. */
  allPadPayloads: number;
  /** Inner packets whose last byte has been carried. */
  innerPackets: number;
  /** Inner-packet bytes carried. */
  innerBytes: number;
  /** Bytes of pad blocks (type nibble included). */
  padBytes: number;
  /** Inner packets split across two or more payloads. */
  fragmentedPackets: number;
  /** Inner packets refused or discarded, by reason: not-ip, malformed-inner, too-big, queue-full, too-late. */
  dropped: Record<string, number>;
}

export const IPTFS_DEFAULT_MAX_QUEUE_BYTES = 1 << 20;
/** BlockOffset is 16 bits, so what is left of a packet after its first payload must fit in it. */
const BLOCK_OFFSET_MAX = 0xffff;
/** The payload rides in one IPv4 packet. */
const PAYLOAD_SIZE_MAX = 0xffff;
const INITIAL_RING_BYTES = 64 * 1024;
const INITIAL_SLOTS = 64;

/**
 * Builds AGGFRAG payloads of `payloadSize` bytes. Queued packets live in a byte ring (a FIFO of their bytes,
 * consumed as they are sent, so a partly sent packet holds only its unsent tail) with one slot per packet
 * for its length and enqueue time; both grow by doubling up to the bound, so steady state allocates nothing.
 */
export class IptfsSender {
  readonly payloadSize: number;
  readonly dontFragment: boolean;
  readonly maxQueueBytes: number;
  readonly maxDelayNs: bigint | undefined;
  readonly congestionControl: boolean;
  /** AGGFRAG header bytes at the start of every payload (4 or 24). */
  readonly headerLength: number;

  /** The header written at the start of every payload; BlockOffset (bytes 2–3) is patched per payload. */
  private readonly header: Buffer;

  private ring: Buffer;
  /** Ring index of the first unsent byte. */
  private readPos = 0;
  private bytes = 0;

  private lengths: Int32Array;
  private times: BigInt64Array;
  private headSlot = 0;
  private count = 0;
  /** Bytes of the head packet already sent (non-zero only while it is split across payloads). */
  private headSent = 0;

  private readonly counters: IptfsSenderStats = {
    packetsIn: 0,
    payloads: 0,
    allPadPayloads: 0,
    innerPackets: 0,
    innerBytes: 0,
    padBytes: 0,
    fragmentedPackets: 0,
    dropped: {},
  };

  constructor(options: IptfsSenderOptions) {
    this.congestionControl = options.congestionControl ?? false;
    this.headerLength = this.congestionControl ? AGGFRAG_CC_HEADER_LENGTH : AGGFRAG_BASIC_HEADER_LENGTH;
    const size = options.payloadSize;
    if (!Number.isInteger(size) || size <= this.headerLength || size > PAYLOAD_SIZE_MAX)
      throw new RangeError(
        `payloadSize must be an integer from ${this.headerLength + 1} (the ${this.headerLength}-byte AGGFRAG header and one data byte) to ${PAYLOAD_SIZE_MAX}, got ${size}`,
      );
    this.payloadSize = size;
    this.dontFragment = options.dontFragment ?? false;
    const maxQueue = options.maxQueueBytes ?? IPTFS_DEFAULT_MAX_QUEUE_BYTES;
    if (!Number.isInteger(maxQueue) || maxQueue < 1)
      throw new RangeError(`maxQueueBytes must be a positive integer, got ${maxQueue}`);
    this.maxQueueBytes = maxQueue;
    if (options.maxDelayNs !== undefined && options.maxDelayNs < 0n)
      throw new RangeError(`maxDelayNs must be 0 or more nanoseconds, got ${options.maxDelayNs}`);
    this.maxDelayNs = options.maxDelayNs;

    this.header = Buffer.alloc(this.headerLength);
    this.header[0] = this.congestionControl ? 1 : 0;
    this.ring = Buffer.alloc(Math.min(maxQueue, INITIAL_RING_BYTES));
    this.lengths = new Int32Array(INITIAL_SLOTS);
    this.times = new BigInt64Array(INITIAL_SLOTS);
  }

  /** Inner packets queued, counting one partly sent. */
  get queuedPackets(): number {
    return this.count;
  }
  /** Inner-packet bytes not yet carried. */
  get queuedBytes(): number {
    return this.bytes;
  }
  /** True when queued bytes (or a partly sent packet) remain. */
  get pending(): boolean {
    return this.bytes > 0;
  }

  /**
   * Copies the IPv4/IPv6 packet at src[off, off+len) into the queue (src is only borrowed). Drops and counts,
   * never throwing on the bytes: not IPv4/IPv6 ('not-ip'), a length field or header length that disagrees
   * with len ('malformed-inner'), no room under maxQueueBytes ('queue-full'), more than a payload can ever
   * carry ('too-big': bigger than a payload's data under dontFragment, or an IPv6 packet whose tail after
   * one payload would not fit BlockOffset's 16 bits). Returns true when queued. `now` (ns) is the enqueue
   * time maxDelayNs is measured from. A range outside src is a caller bug and throws.
   */
  enqueue(src: Uint8Array, off: number, len: number, now: bigint): boolean {
    if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > src.length)
      throw new RangeError(`enqueue range [${off}, ${off}+${len}) is outside the ${src.length}-byte buffer`);
    this.counters.packetsIn++;
    const reason = this.refusal(src, off, len);
    if (reason !== null) {
      this.drop(reason);
      return false;
    }
    if (this.bytes + len > this.maxQueueBytes) {
      this.drop('queue-full');
      return false;
    }
    if (this.bytes + len > this.ring.length) this.growRing(this.bytes + len);
    if (this.count === this.lengths.length) this.growSlots();

    const ring = this.ring;
    let write = this.readPos + this.bytes;
    if (write >= ring.length) write -= ring.length;
    const first = Math.min(len, ring.length - write);
    Buffer.prototype.copy.call(src, ring, write, off, off + first);
    if (first < len) Buffer.prototype.copy.call(src, ring, 0, off + first, off + len);
    this.bytes += len;

    let slot = this.headSlot + this.count;
    if (slot >= this.lengths.length) slot -= this.lengths.length;
    this.lengths[slot] = len;
    this.times[slot] = now;
    this.count++;
    return true;
  }

  /** Why an inner packet cannot be queued, or null. */
  private refusal(src: Uint8Array, off: number, len: number): string | null {
    if (len === 0) return 'malformed-inner';
    const version = src[off]! >> 4;
    if (version !== BLOCK_TYPE_IPV4 && version !== BLOCK_TYPE_IPV6) return 'not-ip';
    // The minimum covers the length field, so innerPacketLength reads inside the packet.
    if (len < (version === BLOCK_TYPE_IPV4 ? IPV4_MIN_LENGTH : IPV6_HEADER_LENGTH)) return 'malformed-inner';
    if (innerPacketLength(src, off) !== len) return 'malformed-inner';
    const capacity = this.payloadSize - this.headerLength;
    if (this.dontFragment ? len > capacity : len - capacity > BLOCK_OFFSET_MAX) return 'too-big';
    return null;
  }

  /**
   * Writes exactly payloadSize bytes at out[off]: the AGGFRAG header (BlockOffset = what is left of a packet
   * continued from the previous payload), as many whole or partial inner packets as fit, then a pad block
   * (zeros) to the end; an all-pad payload when nothing is queued. Packets older than maxDelayNs at `now`
   * are dropped before they start (never once partly sent). Returns the inner-packet bytes carried.
   * Allocates no buffers or objects (with maxDelayNs set, the deadline is one BigInt per call).
   */
  fill(out: Uint8Array, off: number, now: bigint): number {
    if (!Number.isInteger(off) || off < 0 || off + this.payloadSize > out.length)
      throw new RangeError(
        `fill needs ${this.payloadSize} bytes at offset ${off} of a ${out.length}-byte buffer`,
      );
    const end = off + this.payloadSize;
    let pos = off + this.header.copy(out, off);
    let blockOffset = 0;
    let carried = 0;

    if (this.headSent > 0) {
      // The continued packet comes first; BlockOffset says where the next block starts (may be past the end).
      const left = this.lengths[this.headSlot]! - this.headSent;
      blockOffset = left;
      const n = Math.min(left, end - pos);
      this.take(out, pos, n);
      pos += n;
      carried += n;
      if (n === left) this.finishHead();
      else this.headSent += n;
    }

    const deadline = this.maxDelayNs === undefined ? undefined : now - this.maxDelayNs;
    while (pos < end && this.count > 0) {
      if (deadline !== undefined && this.times[this.headSlot]! < deadline) {
        this.discardHead();
        continue;
      }
      const len = this.lengths[this.headSlot]!;
      const room = end - pos;
      // Under DF a packet that does not fit waits for the next payload. Without DF it is split, unless its
      // tail would overflow the next payload's BlockOffset; then it starts in the next payload instead.
      if (len > room && (this.dontFragment || len - room > BLOCK_OFFSET_MAX)) break;
      const n = Math.min(len, room);
      this.take(out, pos, n);
      pos += n;
      carried += n;
      if (n === len) this.finishHead();
      else {
        this.headSent = n;
        this.counters.fragmentedPackets++;
      }
    }

    if (pos < end) {
      out.fill(0, pos, end);
      this.counters.padBytes += end - pos;
    }
    out[off + 2] = blockOffset >>> 8;
    out[off + 3] = blockOffset & 0xff;
    this.counters.payloads++;
    this.counters.innerBytes += carried;
    if (carried === 0) this.counters.allPadPayloads++;
    return carried;
  }

  /**
   * Congestion-control fields for the next sub-type 1 headers (§6.1.2): P/E flags, LossEventRate, RTT and
   * the two delays (µs, saturating), TVal and TEcho. Throws when the sender builds sub-type 0 headers, which
   * cannot carry them, or for values outside their fields.
   */
  setCongestionInfo(cc: AggfragCongestionControl): void {
    if (!this.congestionControl)
      throw new Error(
        'setCongestionInfo needs a sender built with congestionControl: true (sub-type 0 headers carry no congestion fields)',
      );
    new AggfragRepr({ blockOffset: 0, payloadLength: 0, cc }).encodeInto(this.header, 0);
  }

  stats(): IptfsSenderStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Copies the next n unsent bytes of the ring to out[pos] and releases them. */
  private take(out: Uint8Array, pos: number, n: number): void {
    const ring = this.ring;
    const first = Math.min(n, ring.length - this.readPos);
    ring.copy(out, pos, this.readPos, this.readPos + first);
    if (first < n) ring.copy(out, pos + first, 0, n - first);
    this.release(n);
  }

  private release(n: number): void {
    this.readPos += n;
    if (this.readPos >= this.ring.length) this.readPos -= this.ring.length;
    this.bytes -= n;
  }

  /** The head packet's last byte went out. */
  private finishHead(): void {
    this.counters.innerPackets++;
    this.popHead();
  }

  /** Drops the (unstarted) head packet as too late. */
  private discardHead(): void {
    this.release(this.lengths[this.headSlot]!);
    this.drop('too-late');
    this.popHead();
  }

  private popHead(): void {
    this.headSent = 0;
    this.headSlot = this.headSlot + 1 === this.lengths.length ? 0 : this.headSlot + 1;
    this.count--;
  }

  private drop(reason: string): void {
    const dropped = this.counters.dropped;
    dropped[reason] = (dropped[reason] ?? 0) + 1;
  }

  /** Doubles the byte ring (up to maxQueueBytes) until `needed` fits, unwrapping the queued bytes. */
  private growRing(needed: number): void {
    let size = this.ring.length * 2;
    while (size < needed) size *= 2;
    const ring = Buffer.alloc(Math.min(size, this.maxQueueBytes));
    const old = this.ring;
    const first = Math.min(this.bytes, old.length - this.readPos);
    old.copy(ring, 0, this.readPos, this.readPos + first);
    old.copy(ring, first, 0, this.bytes - first);
    this.ring = ring;
    this.readPos = 0;
  }

  /** Doubles the per-packet slots, unwrapping them. */
  private growSlots(): void {
    const n = this.lengths.length;
    const lengths = new Int32Array(n * 2);
    const times = new BigInt64Array(n * 2);
    for (let i = 0; i < this.count; i++) {
      const s = (this.headSlot + i) % n;
      lengths[i] = this.lengths[s]!;
      times[i] = this.times[s]!;
    }
    this.lengths = lengths;
    this.times = times;
    this.headSlot = 0;
  }
}
