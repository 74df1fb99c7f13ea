/**
 * Owned copies of borrowed packets (Packet's lifetime rule), for stages that hold packets across calls:
 * the bytes go into buffers recycled through a pool, so a stage in steady state allocates no buffers.
 */
import type { Packet } from '../packet.js';

/** A packet copied out of its borrowed buffer; `buf[0, length)` holds its bytes. */
export interface HeldPacket {
  buf: Buffer;
  length: number;
  ts: bigint;
  link: number;
  origLen: number | undefined;
  ifIndex: number | undefined;
  /** When the holder will let it go (stages that delay); otherwise unused. */
  due: bigint;
  /** Arrival order, to break ties between equal `due` times. */
  order: number;
}

/** Smallest buffer handed out: 2 KiB holds any frame of a 1500-byte MTU. */
const MIN_SIZE_CLASS = 11;

/**
 * Hands out HeldPackets and takes them back. Buffers come in power-of-two sizes from 2 KiB, one free list
 * per size, so a returned buffer serves any later packet of its class.
 */
export class PacketPool {
  private readonly free: HeldPacket[][] = [];
  private orders = 0;

  /** Copies `pkt` into a pooled buffer. `due` is left 0n for the caller to set. */
  hold(pkt: Packet): HeldPacket {
    const length = pkt.data.length;
    const cls = length <= 1 << MIN_SIZE_CLASS ? MIN_SIZE_CLASS : 32 - Math.clz32(length - 1);
    const h = this.free[cls]?.pop() ?? this.make(cls);
    pkt.data.copy(h.buf, 0, 0, length);
    h.length = length;
    h.ts = pkt.ts;
    h.link = pkt.link;
    h.origLen = pkt.origLen;
    h.ifIndex = pkt.ifIndex;
    h.due = 0n;
    h.order = this.orders++;
    return h;
  }

  /** Returns `h` to the pool; its buffer will be overwritten by a later hold. */
  give(h: HeldPacket): void {
    const cls = 31 - Math.clz32(h.buf.length);
    const list = this.free[cls];
    if (list) list.push(h);
    else this.free[cls] = [h];
  }

  private make(cls: number): HeldPacket {
    return {
      buf: Buffer.allocUnsafe(2 ** cls),
      length: 0,
      ts: 0n,
      link: 0,
      origLen: undefined,
      ifIndex: undefined,
      due: 0n,
      order: 0,
    };
  }
}

/** The Packet a held copy stands for, at time `ts` (a view on the held buffer: borrowed until it is given back). */
export function heldView(h: HeldPacket, ts: bigint): Packet {
  const pkt: Packet = { data: h.buf.subarray(0, h.length), ts, link: h.link };
  if (h.origLen !== undefined) pkt.origLen = h.origLen;
  if (h.ifIndex !== undefined) pkt.ifIndex = h.ifIndex;
  return pkt;
}
