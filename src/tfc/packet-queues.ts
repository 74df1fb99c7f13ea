/**
 * Where held packets wait: a bounded FIFO ring (leave in arrival order) and a bounded min-heap on the due
 * time (leave in due order, arrival order among equals). Neither allocates once it has reached its size.
 */
import type { HeldPacket } from './held-packets.js';

/** A bounded first-in first-out queue of held packets. */
export class HeldFifo {
  readonly capacity: number;
  private readonly ring: (HeldPacket | undefined)[];
  private head = 0;
  private count = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ring = new Array(capacity).fill(undefined);
  }

  get size(): number {
    return this.count;
  }
  get full(): boolean {
    return this.count === this.capacity;
  }
  /** The oldest packet, or undefined when empty. */
  peek(): HeldPacket | undefined {
    return this.count === 0 ? undefined : this.ring[this.head];
  }
  /** Appends `h`; false (nothing stored) when full. */
  push(h: HeldPacket): boolean {
    if (this.count === this.capacity) return false;
    this.ring[(this.head + this.count) % this.capacity] = h;
    this.count++;
    return true;
  }
  /** Removes and returns the oldest packet, or undefined when empty. */
  shift(): HeldPacket | undefined {
    if (this.count === 0) return undefined;
    const h = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return h;
  }
}

/** A bounded queue that gives out the packet with the earliest `due` (then the lowest `order`) first. */
export class HeldHeap {
  readonly capacity: number;
  private readonly items: HeldPacket[] = [];

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.length;
  }
  get full(): boolean {
    return this.items.length === this.capacity;
  }
  peek(): HeldPacket | undefined {
    return this.items[0];
  }
  push(h: HeldPacket): boolean {
    const items = this.items;
    if (items.length === this.capacity) return false;
    let i = items.length;
    items.push(h);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = h;
    return true;
  }
  shift(): HeldPacket | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    const n = items.length;
    let i = 0;
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(items[r]!, items[l]!) ? r : l;
      if (!before(items[c]!, last)) break;
      items[i] = items[c]!;
      i = c;
    }
    items[i] = last;
    return top;
  }
}

function before(a: HeldPacket, b: HeldPacket): boolean {
  return a.due < b.due || (a.due === b.due && a.order < b.order);
}
