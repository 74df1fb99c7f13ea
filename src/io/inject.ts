/**
 * Sending packets onto the network, as pipeline sinks (DESIGN.md §2):
 * - RawIpv4Sink: IPv4 packets through a raw socket (optional `raw-socket` addon); the kernel routes
 *   them by destination and adds the link layer.
 * - FrameSink: whole link-layer frames through libpcap (optional `cap` addon) on one interface.
 * Both need root or CAP_NET_RAW (FrameSink also CAP_NET_ADMIN: cap opens a capture handle to send).
 * A packet that cannot be sent is counted, never thrown; setup failures throw LiveIoError.
 */
import { EthernetView, EtherType } from '../codec/ethernet.js';
import { ipv4String } from '../codec/ip-address.js';
import { Ipv4View } from '../codec/ipv4.js';
import { Sll2View, SllView } from '../codec/sll.js';
import { LinkType, type Packet, wireLength } from '../packet.js';
import type { Drainable } from '../stages/pipeline.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import { type CapHandle, loadRawSocket, type RawSocket } from './addons.js';
import { openCap } from './cap-open.js';
import { errorText, explainFailure } from './live-io-error.js';

/** IPPROTO_RAW: a raw socket that only sends, with IP_HDRINCL implied (raw(7)). */
const IPPROTO_RAW = 255;
/** Sends handed to raw-socket and not yet completed before `needsDrain` asks the driver to wait. */
export const DEFAULT_MAX_IN_FLIGHT = 256;

/** Counters shared by both sinks; send failures are also counted by the kernel's/libpcap's words. */
export interface InjectStats extends StageStats {
  /** Packets the kernel accepted. */
  sent: number;
  /** Packets the kernel refused (see sendErrors for why). */
  failed: number;
  bytesSent: number;
  /** Failure counts keyed by the error text ("Message too long", "Network is unreachable", …). */
  sendErrors: Record<string, number>;
}

/** Counters of a sink that has sent nothing yet. */
export function emptyInjectStats(): InjectStats {
  return { ...emptyStats(), sent: 0, failed: 0, bytesSent: 0, sendErrors: {} };
}

function snapshot(s: InjectStats): InjectStats {
  return { ...s, dropped: { ...s.dropped }, sendErrors: { ...s.sendErrors } };
}

export interface RawIpv4SinkOptions {
  name?: string;
  /** Send only through this interface (SO_BINDTODEVICE); default: wherever the routing table says. */
  interface?: string;
  /** Allow broadcast destinations (SO_BROADCAST; default true: pktveil's anonymity layer needs them). */
  broadcast?: boolean;
  /** Outstanding sends before `needsDrain` (default 256); beyond twice that, packets are dropped. */
  maxInFlight?: number;
}

/**
 * Sends the IPv4 packet inside each packet it is given through a raw IPPROTO_RAW socket, and emits
 * the packet on unchanged. The IPv4 header goes out as built, with the exceptions raw(7) states for
 * IP_HDRINCL: the kernel always fills in the total length and header checksum, and fills in the
 * source address and ID when they are zero. The destination for routing is the header's.
 *
 * Accepts raw IPv4 (LINKTYPE 101 with version 4, 228), Ethernet and Linux cooked frames carrying
 * IPv4 (the link header is skipped); the rest is dropped and counted: `not-ipv4`, `link-type`,
 * `truncated` (the capture lacks part of the packet), `malformed` (no valid IPv4 header),
 * `queue-full` (more than 2·maxInFlight sends outstanding), `closed` (after close()).
 * Every other packet is emitted when handed to the socket; whether the kernel then took it shows in
 * `sent` or in `failed` and `sendErrors` (by the kernel's words, e.g. "Message too long").
 *
 * Sending is asynchronous (raw-socket queues it until the socket is writable), so the bytes are copied
 * and the outcome is counted later in `sent`/`failed`. Drive it with a loop that awaits `drain()`
 * when `needsDrain` (runStage does), and `await close()` at the end to wait for outstanding sends.
 */
export class RawIpv4Sink implements Stage, Drainable {
  readonly name: string;
  readonly maxInFlight: number;
  private readonly socket: RawSocket;
  private readonly counters = emptyInjectStats();
  private readonly eth = new EthernetView();
  private readonly sll = new SllView();
  private readonly sll2 = new Sll2View();
  private readonly ipv4 = new Ipv4View();
  private inFlight = 0;
  private lastDst = -1;
  private lastDstText = '';
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  /** Completes each send (one function for all, so a send allocates no closure here). */
  private readonly afterSend: (error: Error | null, bytes: number) => void;

  constructor(options: RawIpv4SinkOptions = {}) {
    this.name = options.name ?? 'raw-ipv4-sink';
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) {
      throw new RangeError(`RawIpv4Sink maxInFlight must be a positive integer, got ${this.maxInFlight}`);
    }
    const raw = loadRawSocket();
    const action = 'raw IPv4 socket';
    try {
      this.socket = raw.createSocket({ protocol: IPPROTO_RAW, addressFamily: raw.AddressFamily.IPv4 });
    } catch (err) {
      throw explainFailure(action, err);
    }
    // raw-socket closes the socket on a poll error and emits it; without a listener it would throw.
    this.socket.on('error', (err) => this.countFailure(err));
    try {
      if (options.broadcast ?? true) {
        this.socket.setOption(raw.SocketLevel.SOL_SOCKET, raw.SocketOption.SO_BROADCAST, 1);
      }
      if (options.interface !== undefined) {
        const option = raw.SocketOption.SO_BINDTODEVICE;
        if (option === undefined) throw new Error('SO_BINDTODEVICE is only available on Linux');
        const name = Buffer.from(`${options.interface}\0`);
        this.socket.setOption(raw.SocketLevel.SOL_SOCKET, option, name, name.length);
      }
    } catch (err) {
      this.socket.close();
      throw explainFailure(
        options.interface === undefined ? action : `${action} bound to ${options.interface}`,
        err,
        options.interface,
      );
    }
    this.afterSend = (error, bytes) => {
      this.inFlight--;
      if (error) this.countFailure(error);
      else {
        this.counters.sent++;
        this.counters.bytesSent += bytes;
      }
      if (this.inFlight < this.maxInFlight) this.wakeDrainers();
    };
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    const ipOff = this.ipv4Offset(pkt);
    if (ipOff < 0) return;
    const ip = this.ipv4;
    const error = ip.bind(pkt.data, ipOff, pkt.data.length, wireLength(pkt) - ipOff);
    if (error !== null) {
      countDrop(c, error.kind === 'truncated' ? 'truncated' : 'malformed');
      return;
    }
    if (!ip.complete) {
      countDrop(c, 'truncated');
      return;
    }
    if (this.inFlight >= 2 * this.maxInFlight || this.closing) {
      countDrop(c, this.closing ? 'closed' : 'queue-full');
      return;
    }
    const length = ip.totalLength;
    const bytes = Buffer.allocUnsafe(length);
    pkt.data.copy(bytes, 0, ipOff, ipOff + length);
    const dst = ip.dst;
    if (dst !== this.lastDst) {
      this.lastDst = dst;
      this.lastDstText = ipv4String(dst);
    }
    this.inFlight++;
    this.socket.send(bytes, 0, length, this.lastDstText, this.afterSend);
    c.packetsOut++;
    emit(pkt);
  }

  /** True while more sends are outstanding than maxInFlight. */
  get needsDrain(): boolean {
    return this.inFlight >= this.maxInFlight;
  }

  /** Resolves once fewer than maxInFlight sends are outstanding. */
  drain(): Promise<void> {
    if (!this.needsDrain) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Sends still outstanding. */
  get pending(): number {
    return this.inFlight;
  }

  /**
   * Waits (at most `timeoutMs`, default 10 s) for outstanding sends to complete, then closes the
   * socket; sends still outstanding then are counted as failed ('closed before sent'). Idempotent.
   */
  close(timeoutMs = 10_000): Promise<void> {
    this.closing ??= (async () => {
      const deadline = Date.now() + timeoutMs;
      while (this.inFlight > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1));
      }
      if (this.inFlight > 0) {
        const n = this.inFlight;
        this.counters.failed += n;
        this.counters.sendErrors['closed before sent'] =
          (this.counters.sendErrors['closed before sent'] ?? 0) + n;
      }
      this.socket.close();
      this.wakeDrainers();
    })();
    return this.closing;
  }

  stats(): InjectStats {
    return snapshot(this.counters);
  }

  /** Offset of the IPv4 header in pkt.data, or -1 after counting why there is none. */
  private ipv4Offset(pkt: Packet): number {
    const c = this.counters;
    const data = pkt.data;
    switch (pkt.link) {
      case LinkType.IPV4:
        return 0;
      case LinkType.RAW:
        if (data.length > 0 && data[0]! >>> 4 === 4) return 0;
        countDrop(c, data.length === 0 ? 'truncated' : 'not-ipv4');
        return -1;
      case LinkType.ETHERNET:
        if (this.eth.bind(data, 0) !== null) break;
        if (this.eth.etherType !== EtherType.IPV4) {
          countDrop(c, 'not-ipv4');
          return -1;
        }
        return this.eth.payloadOffset;
      case LinkType.LINUX_SLL:
        if (this.sll.bind(data, 0) !== null) break;
        if (this.sll.protocol !== EtherType.IPV4) {
          countDrop(c, 'not-ipv4');
          return -1;
        }
        return this.sll.payloadOffset;
      case LinkType.LINUX_SLL2:
        if (this.sll2.bind(data, 0) !== null) break;
        if (this.sll2.protocol !== EtherType.IPV4) {
          countDrop(c, 'not-ipv4');
          return -1;
        }
        return this.sll2.payloadOffset;
      default:
        countDrop(c, 'link-type');
        return -1;
    }
    countDrop(c, 'truncated'); // the link header itself is cut short
    return -1;
  }

  /**
   * A send that failed after the packet was handed on: counted in failed/sendErrors only, not in
   * `dropped`, which counts packets refused before being emitted (so packetsIn = packetsOut + drops).
   */
  private countFailure(err: unknown): void {
    const c = this.counters;
    c.failed++;
    const key = errorText(err);
    c.sendErrors[key] = (c.sendErrors[key] ?? 0) + 1;
  }

  private wakeDrainers(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}

export interface FrameSinkOptions {
  /** The interface to send on. */
  interface: string;
  name?: string;
}

/** Kernel buffer for the capture handle cap needs in order to send (it receives nothing; see below). */
const SEND_HANDLE_BUFFER_SIZE = 1 << 20;
/** A filter no frame matches (no frame is 1 byte or shorter), so the send handle captures nothing. */
const MATCH_NOTHING = 'less 1';

/**
 * Sends each packet's bytes as a whole frame on one interface (libpcap's pcap_sendpacket through
 * cap.send) and emits the packet on. The frames must be of the interface's link type (`link`;
 * Ethernet for veths and NICs): others are dropped as `link-type`. Sending is synchronous, so
 * borrowed packets are fine; a frame the kernel refuses (too long, interface down) is counted in
 * `failed` and `sendErrors` and not emitted.
 *
 * cap can only send through an open capture handle, so this opens one with a filter that matches
 * nothing; like every cap handle it puts the interface in promiscuous mode while open. close() it.
 */
export class FrameSink implements Stage {
  readonly name: string;
  readonly interface: string;
  /** LINKTYPE_* of the interface: the frames this sink accepts. */
  readonly link: number;
  private readonly handle: CapHandle;
  private readonly counters = emptyInjectStats();
  private isClosed = false;

  constructor(options: FrameSinkOptions) {
    if (typeof options.interface !== 'string' || options.interface === '') {
      throw new TypeError('FrameSink needs an interface name (options.interface), as `ip link` shows it');
    }
    this.interface = options.interface;
    this.name = options.name ?? `frame-sink(${options.interface})`;
    const opened = openCap({
      action: 'frame injection',
      interface: options.interface,
      filter: MATCH_NOTHING,
      bufferSize: SEND_HANDLE_BUFFER_SIZE,
      buffer: Buffer.allocUnsafe(64),
    });
    this.handle = opened.handle;
    this.link = opened.link;
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    if (pkt.link !== this.link) {
      countDrop(c, 'link-type');
      return;
    }
    if (this.isClosed) {
      countDrop(c, 'closed');
      return;
    }
    if (pkt.origLen !== undefined && pkt.origLen > pkt.data.length) {
      countDrop(c, 'truncated'); // a capture cut short: sending the stub would put a lie on the wire
      return;
    }
    try {
      this.handle.send(pkt.data, pkt.data.length);
    } catch (err) {
      c.failed++;
      const key = errorText(err);
      c.sendErrors[key] = (c.sendErrors[key] ?? 0) + 1;
      countDrop(c, 'send-failed');
      return;
    }
    c.sent++;
    c.bytesSent += pkt.data.length;
    c.packetsOut++;
    emit(pkt);
  }

  /** Closes the libpcap handle (idempotent). */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.handle.close();
  }

  stats(): InjectStats {
    return snapshot(this.counters);
  }
}
