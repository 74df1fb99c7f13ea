/**
 * Live capture from a network interface through the optional `cap` addon (libpcap).
 *
 * What cap 0.2.1 gives, and how this class works around it:
 * - No timestamps: each packet is stamped with the capture's Clock (default: the process-wide
 *   RealClock) when it reaches JavaScript. cap enables libpcap's immediate mode, so the delay after
 *   the kernel saw it is small, but these are userspace receive times, not kernel timestamps: under
 *   load, packets handled in one event-loop turn get stamps close together even if they arrived
 *   further apart.
 * - Snaplen is always 65535 and there is no length on the wire: `snapLength` is applied here by
 *   cutting `data`, and `origLen` is the length libpcap captured, which is the wire length for frames
 *   up to 65535 bytes (larger ones, e.g. GRO/TSO aggregates on loopback, are reported as 65535).
 * - Promiscuous mode is always requested. `promiscuous: false` is emulated with a kernel BPF clause
 *   that keeps the frames a non-promiscuous NIC would deliver (see nonPromiscuousClause); the NIC
 *   itself is still switched to promiscuous mode while capturing.
 * - One buffer, reused for every packet: see the lifetime notes on onPacket and the async iterator.
 * - No kernel drop counter (pcap_stats is not exposed); `stats()` counts what this side sees and drops.
 * - Immediate mode makes libpcap use fixed-size ring slots: see DEFAULT_CAPTURE_BUFFER_SIZE.
 *
 * Needs root or CAP_NET_RAW + CAP_NET_ADMIN. Capturing keeps the event loop alive until close().
 */
import { readFileSync } from 'node:fs';
import type { LinkType, Packet } from '../packet.js';
import { type Clock, realClock } from '../stages/clock.js';
import { type CapHandle, capDeviceNames, loadCap } from './addons.js';
import { openCap } from './cap-open.js';
import { LiveIoError } from './live-io-error.js';

/** Largest snapLength: cap always captures with a snaplen of 65535. */
export const MAX_SNAP_LENGTH = 65535;
/**
 * Kernel capture buffer when none is given: 32 MiB. cap turns on libpcap's immediate mode, in which
 * libpcap uses a TPACKET_V2 ring of fixed-size slots; with snaplen 65535 and segmentation/receive
 * offloads on (the default on veths and most NICs) each slot is about 64 KiB, so this holds about 500
 * packets, where tcpdump's 2 MiB would hold only about 30 and a short burst would overflow it. With
 * offloads off (ethtool -K IF gro off gso off tso off) libpcap sizes slots by the MTU instead.
 */
export const DEFAULT_CAPTURE_BUFFER_SIZE = 32 * 1024 * 1024;
/** Packets the async iterator holds for a slow consumer before it drops (and counts) new ones. */
export const DEFAULT_QUEUE_LIMIT = 10_000;

export interface LiveCaptureOptions {
  /** Interface name, as `ip link` shows it (or 'any'). */
  interface: string;
  /** BPF filter in tcpdump syntax (pcap-filter(7)); empty or omitted: every packet. */
  filter?: string;
  /** Keep at most this many bytes of each packet, 1–65535 (default 65535); origLen keeps the real length. */
  snapLength?: number;
  /**
   * Default true. false keeps only frames to or from this interface's MAC, broadcast and multicast,
   * by a kernel filter (the NIC is still made promiscuous by cap; see the file comment).
   */
  promiscuous?: boolean;
  /**
   * Kernel capture buffer in bytes (default 32 MiB: see DEFAULT_CAPTURE_BUFFER_SIZE for why so large);
   * the kernel drops packets when it overflows.
   */
  bufferSize?: number;
  /** Where timestamps come from (default: the process-wide RealClock). */
  clock?: Clock;
  /** Packets the async iterator may hold before dropping new ones (default 10 000). */
  queueLimit?: number;
}

export interface LiveCaptureStats {
  /** Packets libpcap handed over (after the kernel filter). */
  packetsSeen: number;
  /** Bytes libpcap handed over (before snapLength cuts them). */
  bytesSeen: number;
  /** Packets cut to snapLength. */
  truncatedBySnapLength: number;
  /** Packets cap cut because they exceeded its buffer (cannot happen with the 65535-byte buffer used). */
  truncatedByCap: number;
  /** Packets the async iterator dropped because its queue was full (the consumer was too slow). */
  queueDrops: number;
  /** Packets waiting in the async iterator's queue now. */
  queued: number;
}

/** Counters of a capture that has seen nothing yet. */
export function emptyLiveCaptureStats(): LiveCaptureStats {
  return {
    packetsSeen: 0,
    bytesSeen: 0,
    truncatedBySnapLength: 0,
    truncatedByCap: 0,
    queueDrops: 0,
    queued: 0,
  };
}

/** Interfaces libpcap can capture on (cap's deviceList); throws a LiveIoError when cap is missing. */
export function listInterfaces(): string[] {
  return capDeviceNames(loadCap()) ?? [];
}

/**
 * The BPF clause that keeps what a non-promiscuous Ethernet NIC delivers: frames sent to or from
 * `mac`, broadcast and multicast (all groups; a NIC would also drop groups nobody joined).
 */
export function nonPromiscuousClause(mac: string): string {
  return `(ether host ${mac} or ether multicast)`;
}

/** The kernel filter for the options: the user's filter, narrowed by the non-promiscuous clause. */
export function combineFilters(userFilter: string, clause: string | null): string {
  const user = userFilter.trim();
  if (!clause) return user;
  return user ? `${clause} and (${user})` : clause;
}

const ARPHRD_ETHER = 1;

/** The interface's MAC when it is an Ethernet interface, from sysfs; null for other link types. */
function ethernetMac(iface: string): string | null {
  if (!/^[^/\0]+$/.test(iface) || iface === '.' || iface === '..') return null;
  let type: number;
  let mac: string;
  try {
    type = Number(readFileSync(`/sys/class/net/${iface}/type`, 'utf8').trim());
    mac = readFileSync(`/sys/class/net/${iface}/address`, 'utf8').trim().toLowerCase();
  } catch (err) {
    // No sysfs entry: either no such interface (openCap reports that, listing the real ones) or not
    // Linux. Only the second needs saying here.
    if (listInterfacesOrNull()?.includes(iface) === false) return null;
    throw new LiveIoError(
      'failed',
      `promiscuous: false needs the MAC address of ${iface} from /sys/class/net/${iface}/address, which could not be read (${(err as Error).message})`,
      { cause: err },
    );
  }
  return type === ARPHRD_ETHER && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) ? mac : null;
}

function listInterfacesOrNull(): string[] | null {
  return capDeviceNames(loadCap());
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`LiveCapture ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

type Waiter = (result: IteratorResult<Packet>) => void;

/**
 * Packets from a live interface. Opening (the constructor) starts the capture at once; packets come
 * out through either or both of:
 *
 * - `onPacket(listener)`: called synchronously for every packet, with a borrowed Packet: the object
 *   and its `data` are reused for the next packet, so they are valid only during the call. Copy
 *   (`clonePacket`) to keep one. Nothing is allocated per packet on this path beyond the timestamp.
 * - `for await (const pkt of capture)`: each packet is a copy the consumer owns and may keep across
 *   awaits. Packets are queued from the moment the capture opens (unless an onPacket listener was
 *   registered first and no iterator is running), up to `queueLimit`; beyond that new packets are
 *   dropped and counted in `stats().queueDrops`. Breaking out of the loop closes the capture;
 *   after close() the iterator delivers what is queued, then ends. One iterator at a time.
 *
 * Throws LiveIoError from the constructor when the addon is missing, the interface does not exist
 * (the message lists those that do), privileges are missing (the message says how to grant them) or
 * the filter does not compile.
 */
export class LiveCapture implements AsyncIterable<Packet> {
  readonly interface: string;
  /** LINKTYPE_* of the captured frames (what a capture file written from them must declare). */
  readonly link: LinkType;
  /** cap's own name for the link type ("ETHERNET", "LINKTYPE_LINUX_SLL", …). */
  readonly linkName: string;
  /** The filter the kernel runs: the user's, with the non-promiscuous clause when that applies. */
  readonly filter: string;
  readonly snapLength: number;
  readonly promiscuous: boolean;
  /** The interface's MAC when `promiscuous: false` narrowed the filter to it; otherwise null. */
  readonly mac: string | null;
  readonly queueLimit: number;

  private readonly handle: CapHandle;
  private readonly clock: Clock;
  /** cap copies every packet here (reused). */
  private readonly buffer = Buffer.allocUnsafe(MAX_SNAP_LENGTH);
  /** Views of buffer[0, n) by n, so the borrowed path allocates no Buffer per packet. */
  private readonly views = new Map<number, Buffer>();
  private readonly borrowed: Packet;
  private readonly listeners: ((pkt: Packet) => void)[] = [];
  private readonly queue: Packet[] = [];
  private queueHead = 0;
  private waiter: Waiter | null = null;
  private iterating = false;
  private queueing = true;
  private isClosed = false;
  private readonly counters = emptyLiveCaptureStats();

  constructor(options: LiveCaptureOptions) {
    if (typeof options.interface !== 'string' || options.interface === '') {
      throw new TypeError('LiveCapture needs an interface name (options.interface), as `ip link` shows it');
    }
    this.interface = options.interface;
    this.snapLength = checkInteger('snapLength', options.snapLength ?? MAX_SNAP_LENGTH, 1, MAX_SNAP_LENGTH);
    const bufferSize = checkInteger(
      'bufferSize',
      options.bufferSize ?? DEFAULT_CAPTURE_BUFFER_SIZE,
      MAX_SNAP_LENGTH,
      2 ** 31 - 1,
    );
    this.queueLimit = checkInteger('queueLimit', options.queueLimit ?? DEFAULT_QUEUE_LIMIT, 1, 2 ** 31 - 1);
    this.promiscuous = options.promiscuous ?? true;
    this.clock = options.clock ?? realClock();

    this.mac = this.promiscuous ? null : ethernetMac(this.interface);
    this.filter = combineFilters(options.filter ?? '', this.mac ? nonPromiscuousClause(this.mac) : null);

    const opened = openCap({
      action: 'live capture',
      interface: this.interface,
      filter: this.filter,
      bufferSize,
      buffer: this.buffer,
    });
    this.handle = opened.handle;
    this.link = opened.link;
    this.linkName = opened.linkName;
    this.borrowed = { data: this.buffer.subarray(0, 0), ts: 0n, link: this.link, origLen: 0 };
    this.handle.on('packet', this.onCapPacket);
  }

  /**
   * Calls `listener` with every packet, borrowed (valid only during the call; see the class comment).
   * Returns a function that removes the listener.
   */
  onPacket(listener: (pkt: Packet) => void): () => void {
    this.listeners.push(listener);
    this.updateQueueing();
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<Packet> {
    if (this.iterating) {
      throw new Error(`LiveCapture on ${this.interface} is already being iterated; use one loop at a time`);
    }
    this.iterating = true;
    this.updateQueueing();
    const done: IteratorResult<Packet> = { done: true, value: undefined };
    const iterator: AsyncIterator<Packet> = {
      next: () => {
        const pkt = this.dequeue();
        if (pkt) return Promise.resolve({ done: false, value: pkt });
        if (this.isClosed) {
          this.iterating = false;
          return Promise.resolve(done);
        }
        return new Promise<IteratorResult<Packet>>((resolve) => {
          this.waiter = resolve;
        });
      },
      return: () => {
        this.close();
        this.iterating = false;
        this.queue.length = 0;
        this.queueHead = 0;
        this.counters.queued = 0;
        return Promise.resolve(done);
      },
    };
    return iterator;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Stops capturing (idempotent). A running async iterator delivers what is queued, then ends. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.handle.close();
    this.handle.removeAllListeners('packet');
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.({ done: true, value: undefined });
  }

  stats(): LiveCaptureStats {
    return { ...this.counters };
  }

  /** cap's 'packet' event: the bytes are in this.buffer until the next event. */
  private readonly onCapPacket = (nbytes: number, truncatedByCap: boolean): void => {
    const ts = this.clock.now();
    const c = this.counters;
    c.packetsSeen++;
    c.bytesSeen += nbytes;
    if (truncatedByCap) c.truncatedByCap++;
    let caplen = nbytes;
    if (caplen > this.snapLength) {
      caplen = this.snapLength;
      c.truncatedBySnapLength++;
    }
    let data = this.views.get(caplen);
    if (data === undefined) {
      data = this.buffer.subarray(0, caplen);
      this.views.set(caplen, data);
    }
    const pkt = this.borrowed;
    pkt.data = data;
    pkt.ts = ts;
    pkt.origLen = nbytes;
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i]!(pkt);
    if (this.queueing) this.enqueue(pkt);
  };

  private enqueue(pkt: Packet): void {
    const waiter = this.waiter;
    if (waiter) {
      this.waiter = null;
      waiter({ done: false, value: ownedCopy(pkt) });
      return;
    }
    if (this.queue.length - this.queueHead >= this.queueLimit) {
      this.counters.queueDrops++;
      return;
    }
    this.queue.push(ownedCopy(pkt));
    this.counters.queued++;
  }

  private dequeue(): Packet | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const pkt = this.queue[this.queueHead]!;
    this.queue[this.queueHead++] = undefined as unknown as Packet;
    this.counters.queued--;
    // Compact now and then instead of shifting on every packet.
    if (this.queueHead >= 1024 && this.queueHead * 2 >= this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    return pkt;
  }

  /** Queue while iterating, or until someone chooses the borrowed path instead. */
  private updateQueueing(): void {
    this.queueing = this.iterating || this.listeners.length === 0;
  }
}

/** A copy of a borrowed packet with its own bytes (small ones come from Node's shared slab). */
function ownedCopy(pkt: Packet): Packet {
  const data = Buffer.allocUnsafe(pkt.data.length);
  pkt.data.copy(data);
  return { data, ts: pkt.ts, link: pkt.link, origLen: pkt.origLen! };
}
