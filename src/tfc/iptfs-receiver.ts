/**
 * The IP-TFS receiver's reassembly (RFC 9347 §2.2, §2.2.3, §6.1): takes decrypted AGGFRAG payloads with
 * their ESP sequence numbers, puts them back in sequence order through a small reorder window with a drop
 * timer, and emits the inner IPv4/IPv6 packets they carry, joining packets fragmented across consecutive
 * payloads and resynchronising at the next payload's BlockOffset after a loss.
 */
import { AGGFRAG_BASIC_HEADER_LENGTH, AGGFRAG_CC_HEADER_LENGTH, AggfragSubType } from '../codec/aggfrag.js';
import { BLOCK_TYPE_PAD, INNER_MAX_LENGTH, innerPacketLength, lengthFieldEnd } from './iptfs-blocks.js';

export interface IptfsReceiverOptions {
  /**
   * Payloads that may arrive ahead of a missing one and still be used once it comes (default 3, as in
   * Linux; 0 = none: a gap is a loss at once). A payload further ahead declares the oldest gaps lost.
   */
  reorderWindow?: number;
  /**
   * How long (ns) a payload waits in the reorder window for a missing lower one before that one is
   * declared lost (default 1 s). RFC 9347 gives no value; 1 s is Linux's default (IPTFS_DEFAULT_DROP_TIME_USECS,
   * by the RFC's author). At IP-TFS's constant rate a payload `reorderWindow` ahead usually settles a gap long
   * before the timer; the timer matters when the flow pauses.
   */
  dropTimeNs?: bigint;
}

/**
 * Receives one inner packet, buf[off, off + len), valid only during the call (copy to keep it), and its
 * timestamp. The IPTFS_HEADROOM bytes in front of it are free for the callee to overwrite (a link header,
 * say) when it lies in the receiver's own buffers, which is the case for packets joined across payloads
 * and payloads held for reordering; in the `src` given to receive() they are free if the caller said so by
 * leaving them room there (see receive()).
 */
export type IptfsEmit = (buf: Uint8Array, off: number, len: number, ts: bigint) => void;

/**
 * Bytes in front of every inner packet the receiver emits from its own buffers, which the emit callback may
 * overwrite: room for a link header (Ethernet with 8 VLAN tags is 46), so no packet is copied to get one.
 */
export const IPTFS_HEADROOM = 64;

export interface IptfsReceiverStats {
  payloadsIn: number;
  /** Payloads processed in order that carried no inner-packet byte (all-pad, or header only). */
  allPadPayloads: number;
  innerPackets: number;
  innerBytes: number;
  /** Sequence numbers declared lost (window passed them, drop timer, or flush). */
  lostPayloads: number;
  /** Payloads used although a higher sequence number had arrived before them. */
  reordered: number;
  /**
   * By reason. Payloads: duplicate, too-old (below the window, not seen), bad-sequence (not a 53-bit
   * number), malformed-header (unknown sub-type or shorter than its header). Inner packets: malformed
   * (unknown block type, impossible IPv4/IPv6 length), block-offset-mismatch (BlockOffset disagrees with the
   * packet being joined, or continues a packet when the previous payload ended on a block boundary),
   * partial-discarded (a packet whose start was held, lost with a later payload or at flush).
   */
  dropped: Record<string, number>;
}

export const IPTFS_DEFAULT_REORDER_WINDOW = 3;
export const IPTFS_DEFAULT_DROP_TIME_NS = 1_000_000_000n;
const REORDER_WINDOW_MAX = 1024;
const TWO_32 = 0x1_0000_0000;
/** Sequence numbers stay exact as numbers below 2^53: the high half must stay below 2^21. */
const SEQ_HI_LIMIT = 0x20_0000;
/** Recently processed sequence numbers remembered to tell a duplicate from a too-old payload. */
const HISTORY = 64;

/** Where the in-order byte stream stands between payloads. */
const CLEAN = 0; // the last payload ended on a block boundary: the next BlockOffset must be 0
const JOINING = 1; // a packet continues into the next payload (its start is in `asm`)
const UNKNOWN = 2; // after a loss or malformed data: the next BlockOffset bytes belong to a packet we lack

export class IptfsReceiver {
  readonly reorderWindow: number;
  readonly dropTimeNs: bigint;

  /** Lowest sequence number neither processed nor declared lost; -1 before the first payload. */
  private nextSeq = -1;
  private highest = -1;

  // Reorder window: slot seq % reorderWindow holds a copy of payload seq, for seq in (nextSeq, nextSeq + W].
  private readonly slotSeq: Float64Array;
  private readonly slotLen: Int32Array;
  private readonly slotBuf: Buffer[];
  private readonly slotTs: bigint[];
  private readonly slotDeadline: bigint[];
  private held = 0;
  /** Earliest drop deadline among held payloads (meaningful while held > 0). */
  private deadline = 0n;

  private readonly seen = new Float64Array(HISTORY).fill(-1);

  // Reassembly of one inner packet across payloads, at asm[IPTFS_HEADROOM].
  private readonly asm = Buffer.alloc(IPTFS_HEADROOM + INNER_MAX_LENGTH);
  private have = 0;
  /** Its length, or -1 while its length field has not all arrived. */
  private want = -1;
  /** Bytes needed to read its length (4 for IPv4, 6 for IPv6). */
  private need = 0;
  private state = UNKNOWN;

  private readonly counters: IptfsReceiverStats = {
    payloadsIn: 0,
    allPadPayloads: 0,
    innerPackets: 0,
    innerBytes: 0,
    lostPayloads: 0,
    reordered: 0,
    dropped: {},
  };

  constructor(options: IptfsReceiverOptions = {}) {
    const w = options.reorderWindow ?? IPTFS_DEFAULT_REORDER_WINDOW;
    if (!Number.isInteger(w) || w < 0 || w > REORDER_WINDOW_MAX)
      throw new RangeError(
        `reorderWindow must be an integer from 0 to ${REORDER_WINDOW_MAX} payloads, got ${w}`,
      );
    const dropTime = options.dropTimeNs ?? IPTFS_DEFAULT_DROP_TIME_NS;
    if (dropTime < 0n) throw new RangeError(`dropTimeNs must be 0 or more nanoseconds, got ${dropTime}`);
    this.reorderWindow = w;
    this.dropTimeNs = dropTime;
    this.slotSeq = new Float64Array(w).fill(-1);
    this.slotLen = new Int32Array(w);
    this.slotBuf = Array.from({ length: w }, () => Buffer.alloc(0));
    this.slotTs = new Array<bigint>(w).fill(0n);
    this.slotDeadline = new Array<bigint>(w).fill(0n);
  }

  /**
   * One decrypted AGGFRAG payload at src[off, off+len) with its 64-bit ESP sequence number (seqHi, seqLo).
   * Emits every inner packet it completes, in sequence order, with ts = the `now` of the payload that
   * completed it (a payload held for reordering keeps its own arrival time). src is borrowed: what waits is
   * copied. Inner packets emitted straight from src have src's bytes in front of them, which the emit
   * callback may overwrite: a caller whose callback uses IPTFS_HEADROOM (IptfsDecapStage) puts the payload
   * at off ≥ IPTFS_HEADROOM in a buffer of its own. Never throws on the bytes; a range outside src is a
   * caller bug and throws.
   */
  receive(
    seqHi: number,
    seqLo: number,
    src: Uint8Array,
    off: number,
    len: number,
    now: bigint,
    emit: IptfsEmit,
  ): void {
    if (!Number.isInteger(off) || !Number.isInteger(len) || off < 0 || len < 0 || off + len > src.length)
      throw new RangeError(`receive range [${off}, ${off}+${len}) is outside the ${src.length}-byte buffer`);
    this.counters.payloadsIn++;
    if (
      !Number.isInteger(seqHi) ||
      !Number.isInteger(seqLo) ||
      seqHi < 0 ||
      seqHi >= SEQ_HI_LIMIT ||
      seqLo < 0 ||
      seqLo >= TWO_32
    ) {
      this.drop('bad-sequence');
      return;
    }
    const seq = seqHi * TWO_32 + seqLo;
    if (this.held > 0 && now >= this.deadline) this.expire(now, emit);

    const w = this.reorderWindow;
    // The first payload may have overtaken up to `w` lower ones (ESP numbers from 1): wait for them as for
    // any gap. Joining a flow mid-stream therefore counts at most `w` payloads before it as lost.
    if (this.nextSeq < 0) this.nextSeq = Math.max(Math.min(seq, 1), seq - w);
    if (seq < this.nextSeq) {
      this.drop(this.seen[seq % HISTORY] === seq ? 'duplicate' : 'too-old');
      return;
    }
    if (w > 0 && seq !== this.nextSeq && this.slotSeq[seq % w] === seq) {
      this.drop('duplicate');
      return;
    }
    if (seq < this.highest) this.counters.reordered++;
    else this.highest = seq;

    if (seq > this.nextSeq + w) this.advance(seq - w, emit);
    if (seq === this.nextSeq) {
      this.process(src, off, len, now, emit);
      this.done(seq);
      this.nextSeq++;
      this.drain(emit);
    } else {
      this.hold(seq, src, off, len, now);
    }
  }

  /** Drop timer: declares missing payloads lost once a payload has waited dropTimeNs behind them. */
  tick(now: bigint, emit: IptfsEmit): void {
    if (this.held > 0 && now >= this.deadline) this.expire(now, emit);
  }

  /** End of input: processes every held payload (gaps are losses) and discards a packet left unfinished. */
  flush(emit: IptfsEmit): void {
    while (this.held > 0) this.skipToLowestHeld(emit);
    if (this.state === JOINING) this.drop('partial-discarded');
    this.state = UNKNOWN;
  }

  stats(): IptfsReceiverStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Declares gaps lost while the earliest held payload has waited dropTimeNs. */
  private expire(now: bigint, emit: IptfsEmit): void {
    while (this.held > 0 && now >= this.deadline) this.skipToLowestHeld(emit);
  }

  /** The gap before the lowest held payload is lost; processes from there while numbers are consecutive. */
  private skipToLowestHeld(emit: IptfsEmit): void {
    let lowest = Number.POSITIVE_INFINITY;
    for (let s = 0; s < this.reorderWindow; s++) {
      const q = this.slotSeq[s]!;
      if (q >= 0 && q < lowest) lowest = q;
    }
    this.lose(lowest - this.nextSeq);
    this.nextSeq = lowest;
    this.drain(emit);
  }

  /**
   * Moves the window so nextSeq reaches at least `target`, processing held payloads and losing the gaps,
   * then whatever held payloads follow on consecutively.
   */
  private advance(target: number, emit: IptfsEmit): void {
    const w = this.reorderWindow;
    while (this.nextSeq < target) {
      if (this.held === 0) {
        this.lose(target - this.nextSeq);
        this.nextSeq = target;
        return;
      }
      const s = this.nextSeq % w;
      if (this.slotSeq[s] === this.nextSeq) this.processHeld(s, emit);
      else this.lose(1);
      this.nextSeq++;
    }
    this.drain(emit);
  }

  /** Processes held payloads from nextSeq on while they are consecutive. */
  private drain(emit: IptfsEmit): void {
    const w = this.reorderWindow;
    while (this.held > 0) {
      const s = this.nextSeq % w;
      if (this.slotSeq[s] !== this.nextSeq) return;
      this.processHeld(s, emit);
      this.nextSeq++;
    }
  }

  private hold(seq: number, src: Uint8Array, off: number, len: number, now: bigint): void {
    const s = seq % this.reorderWindow;
    if (this.slotBuf[s]!.length < IPTFS_HEADROOM + len)
      this.slotBuf[s] = Buffer.alloc(IPTFS_HEADROOM + Math.max(len, 2048));
    Buffer.prototype.copy.call(src, this.slotBuf[s], IPTFS_HEADROOM, off, off + len);
    this.slotSeq[s] = seq;
    this.slotLen[s] = len;
    this.slotTs[s] = now;
    // Arrival times only grow, so the first payload held has the earliest deadline.
    const deadline = now + this.dropTimeNs;
    this.slotDeadline[s] = deadline;
    if (this.held === 0 || deadline < this.deadline) this.deadline = deadline;
    this.held++;
  }

  private processHeld(s: number, emit: IptfsEmit): void {
    const seq = this.slotSeq[s]!;
    this.slotSeq[s] = -1;
    this.held--;
    this.process(this.slotBuf[s]!, IPTFS_HEADROOM, this.slotLen[s]!, this.slotTs[s]!, emit);
    this.done(seq);
    if (this.held > 0) {
      let earliest = -1;
      for (let i = 0; i < this.reorderWindow; i++)
        if (this.slotSeq[i]! >= 0 && (earliest < 0 || this.slotDeadline[i]! < this.slotDeadline[earliest]!))
          earliest = i;
      this.deadline = this.slotDeadline[earliest]!;
    }
  }

  private done(seq: number): void {
    this.seen[seq % HISTORY] = seq;
  }

  /** `n` sequence numbers will never be processed: a packet being joined across them is gone. */
  private lose(n: number): void {
    if (n <= 0) return;
    this.counters.lostPayloads += n;
    if (this.state === JOINING) this.drop('partial-discarded');
    this.state = UNKNOWN;
  }

  /** One payload, in sequence order. */
  private process(b: Uint8Array, off: number, len: number, ts: bigint, emit: IptfsEmit): void {
    const subType = len > 0 ? b[off]! : -1;
    const headerLength =
      subType === AggfragSubType.BASIC
        ? AGGFRAG_BASIC_HEADER_LENGTH
        : subType === AggfragSubType.CONGESTION_CONTROL
          ? AGGFRAG_CC_HEADER_LENGTH
          : -1;
    if (headerLength < 0 || len < headerLength) {
      // Nothing in it can be trusted, BlockOffset included: as good as lost for the packet being joined.
      this.drop('malformed-header');
      if (this.state === JOINING) this.drop('partial-discarded');
      this.state = UNKNOWN;
      return;
    }
    const blockOffset = (b[off + 2]! << 8) | b[off + 3]!;
    const start = off + headerLength;
    const end = off + len;
    // An empty payload (§2.2.4) or an all-pad one (§2.2.3) may sit between fragments: reassembly goes on.
    if (start === end || (blockOffset === 0 && b[start]! >> 4 === BLOCK_TYPE_PAD)) {
      this.counters.allPadPayloads++;
      return;
    }

    let q = start;
    if (blockOffset > 0) {
      const take = Math.min(blockOffset, end - start);
      if (this.state === JOINING) this.join(b, start, take, blockOffset, ts, emit);
      else {
        // The tail of a packet whose start we lack: after a loss expected, after a clean boundary an error.
        if (this.state === CLEAN) this.drop('block-offset-mismatch');
        this.state = UNKNOWN;
      }
      if (take < blockOffset) return; // the whole payload belonged to that packet
      q = start + take;
    } else if (this.state === JOINING) {
      // §2.2.3: fragments go back to back, so a new block cannot start while a packet is unfinished.
      this.drop('block-offset-mismatch');
    }
    this.blocks(b, q, end, ts, emit);
  }

  /**
   * Adds the first `take` bytes at b[start] (BlockOffset = `blockOffset`) to the packet being joined, and
   * emits it when complete. Leaves state JOINING only when the payload ended inside the packet.
   */
  private join(
    b: Uint8Array,
    start: number,
    take: number,
    blockOffset: number,
    ts: bigint,
    emit: IptfsEmit,
  ): void {
    const before = this.have;
    let i = start;
    const stop = start + take;
    if (this.want < 0) {
      // The length field itself was split across payloads (§2.2.2): complete it first.
      const n = Math.min(this.need - this.have, take);
      Buffer.prototype.copy.call(b, this.asm, IPTFS_HEADROOM + this.have, i, i + n);
      this.have += n;
      i += n;
      if (this.have < this.need) {
        if (take === blockOffset) {
          // BlockOffset ends the packet before its length field does.
          this.drop('block-offset-mismatch');
          this.state = UNKNOWN;
        }
        return;
      }
      this.want = innerPacketLength(this.asm, IPTFS_HEADROOM);
      if (this.want < 0) {
        this.drop('malformed');
        this.state = UNKNOWN;
        return;
      }
    }
    if (this.want - before !== blockOffset) {
      this.drop('block-offset-mismatch');
      this.state = UNKNOWN;
      return;
    }
    Buffer.prototype.copy.call(b, this.asm, IPTFS_HEADROOM + this.have, i, stop);
    this.have += stop - i;
    if (this.have === this.want) {
      this.deliver(this.asm, IPTFS_HEADROOM, this.want, ts, emit);
      this.state = CLEAN;
    }
  }

  /** Data blocks from b[q] to the end of the payload. */
  private blocks(b: Uint8Array, q: number, end: number, ts: bigint, emit: IptfsEmit): void {
    while (q < end) {
      const first = b[q]!;
      if (first >> 4 === BLOCK_TYPE_PAD) break; // padding runs to the end of the payload
      const need = lengthFieldEnd(first);
      if (need === 0) {
        // Not a block type RFC 9347 defines: where the next block starts is unknowable.
        this.drop('malformed');
        this.state = UNKNOWN;
        return;
      }
      if (end - q < need) {
        this.startJoin(b, q, end, -1, need);
        return;
      }
      const length = innerPacketLength(b, q);
      if (length < 0) {
        this.drop('malformed');
        this.state = UNKNOWN;
        return;
      }
      if (length > end - q) {
        this.startJoin(b, q, end, length, need);
        return;
      }
      this.deliver(b, q, length, ts, emit);
      q += length;
    }
    this.state = CLEAN;
  }

  /** Keeps the start of a packet that continues into the next payload. */
  private startJoin(b: Uint8Array, q: number, end: number, want: number, need: number): void {
    Buffer.prototype.copy.call(b, this.asm, IPTFS_HEADROOM, q, end);
    this.have = end - q;
    this.want = want;
    this.need = need;
    this.state = JOINING;
  }

  private deliver(b: Uint8Array, at: number, length: number, ts: bigint, emit: IptfsEmit): void {
    this.counters.innerPackets++;
    this.counters.innerBytes += length;
    emit(b, at, length, ts);
  }

  private drop(reason: string): void {
    const dropped = this.counters.dropped;
    dropped[reason] = (dropped[reason] ?? 0) + 1;
  }
}
