/**
 * The agents on real interfaces (root, or CAP_NET_RAW + CAP_NET_ADMIN): what `pktveil agent` runs.
 *
 * Host (LiveHostAgent). The host's apps send normally; the peers' addresses are routed through a dummy
 * interface, so the kernel hands those packets to it (and drops them there), where a packet capture takes
 * them. A second route to each peer through the router, with a higher metric, is what the outer packets
 * take: they go out through a raw socket bound to the subnet interface (SO_BINDTODEVICE), which makes the
 * kernel use that route. Setup, with the dummy's MTU leaving room for the layer (20 + 41 bytes):
 *
 *   ip link add pktveil0 type dummy && ip link set pktveil0 mtu 1400 up
 *   ethtool -K pktveil0 tx off sg off tso off gso off      # computed checksums, no super-packets
 *   ip route add PEER/32 dev pktveil0 src HOST_ADDRESS
 *   ip route add PEER/32 via ROUTER dev eth0 metric 100
 *
 * Inbound, a capture on the subnet interface runs the agent's prefilter; when the SIDs or tuples change
 * (rotation) a new capture with the new filter is opened before the old one closes (libpcap through `cap`
 * cannot change a running filter), and for the overlap a packet both captures saw is handed on once
 * (`overlapDuplicates`). Delivery: `stack` — inner packets through a raw socket to the host's own address,
 * which the kernel loops back to its stack; `file` — a pcap file (link type IPv4); or a callback.
 *
 * Apps should bind their sockets to the host's unicast address: a UDP socket on 0.0.0.0 would also get
 * the raw broadcast replies of basic mode from the kernel (they are addressed to the broadcast address
 * and a port it listens on), besides the copy the agent delivers. TCP never accepts broadcast segments.
 *
 * Responder (LiveResponderAgent). A raw socket for the layer's protocol receives its packets (and, being
 * there, stops the kernel's ICMP protocol-unreachable replies); inner packets go to the server's stack
 * through a raw socket to its own address. The session-NAT pool is routed to a dummy interface, where the
 * replies are captured, sealed and sent to the subnet's broadcast address:
 *
 *   ip link add pktveil0 type dummy && ip link set pktveil0 mtu 1400 up
 *   ethtool -K pktveil0 tx off sg off tso off gso off
 *   ip route add 198.18.99.0/24 dev pktveil0
 */

import { ipv4String } from '../codec/ip-address.js';
import { loadRawSocket, type RawSocket } from '../io/addons.js';
import { openCaptureWriter } from '../io/capture-file.js';
import { CaptureSinkStage } from '../io/file-stages.js';
import { emptyInjectStats, type InjectStats, RawIpv4Sink } from '../io/inject.js';
import { emptyLiveCaptureStats, LiveCapture, type LiveCaptureStats } from '../io/live-capture.js';
import { explainFailure } from '../io/live-io-error.js';
import { LinkType, type Packet } from '../packet.js';
import { type Clock, realClock } from '../stages/clock.js';
import { emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import type { AgentDelivery } from './agent-config.js';
import { AnonHostAgent, type AnonHostAgentOptions, type AnonHostAgentStats } from './host-agent.js';
import {
  AnonResponderAgent,
  type AnonResponderAgentOptions,
  type AnonResponderAgentStats,
} from './responder-agent.js';

/** How long an old capture keeps running after its replacement opened. */
const CAPTURE_OVERLAP_MS = 150;
/** Kernel buffer of each capture: the agent's captures see only its own traffic. */
const CAPTURE_BUFFER_BYTES = 4 * 1024 * 1024;
const TICK_MS = 250;

/** Where opened inner packets go: the local stack, a pcap file, or a function (borrowed packets). */
export type LiveDelivery = AgentDelivery | { kind: 'callback'; deliver: (pkt: Packet) => void };

const noEmit = (): void => {};

/** Opens the delivery stage. */
async function openDelivery(delivery: LiveDelivery): Promise<{ stage: Stage; close: () => Promise<void> }> {
  if (delivery.kind === 'stack') {
    const sink = new RawIpv4Sink({ name: 'local-stack' });
    return { stage: sink, close: () => sink.close() };
  }
  if (delivery.kind === 'file') {
    const writer = await openCaptureWriter(delivery.path, { format: 'pcap', link: LinkType.IPV4 });
    const stage = new CaptureSinkStage(writer, { name: 'delivery-file' });
    return { stage, close: () => writer.close() };
  }
  const deliver = delivery.deliver;
  const counters: StageStats = { packetsIn: 0, packetsOut: 0, dropped: {} };
  const stage: Stage = {
    name: 'delivery-callback',
    process(pkt) {
      counters.packetsIn++;
      counters.packetsOut++;
      deliver(pkt);
    },
    stats: () => ({ ...counters, dropped: {} }),
  };
  return { stage, close: async () => {} };
}

/**
 * Hands on each frame once while two captures overlap: a ring of hashes of the last frames seen. Outside
 * an overlap it does nothing.
 */
class OverlapDeduper {
  private readonly ring = new Int32Array(512);
  private readonly lengths = new Int32Array(512);
  private next = 0;
  duplicates = 0;

  /** True when this frame was already handed on during the overlap. */
  seen(data: Buffer): boolean {
    let h = 0x811c9dc5 ^ data.length;
    const n = Math.min(data.length, 128);
    for (let i = 0; i < n; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
    for (let i = 0; i < this.ring.length; i++)
      if (this.ring[i] === h && this.lengths[i] === data.length) {
        this.duplicates++;
        return true;
      }
    this.ring[this.next] = h;
    this.lengths[this.next] = data.length;
    this.next = (this.next + 1) % this.ring.length;
    return false;
  }

  reset(): void {
    this.lengths.fill(-1);
  }
}

export interface LiveHostAgentOptions {
  agent: Omit<AnonHostAgentOptions, 'onFilterChange'>;
  /** The subnet interface: replies are captured and outer packets sent here. */
  interface: string;
  /** Where the peers' routes point (a dummy interface): the host's packets to them are captured here. */
  outboundInterface: string;
  delivery: LiveDelivery;
  clock?: Clock;
  /** Told about prefilter changes and other notable things (one line each). */
  log?: (line: string) => void;
}

export interface LiveHostAgentStats extends AnonHostAgentStats {
  prefilter: { expression: string; exact: boolean; rebuilds: number; overlapDuplicates: number };
  wire: InjectStats;
  delivery: StageStats;
  captures: { outbound: LiveCaptureStats; inbound: LiveCaptureStats };
}

export class LiveHostAgent {
  readonly agent: AnonHostAgent;
  private readonly options: LiveHostAgentOptions;
  private readonly clock: Clock;
  private wire: RawIpv4Sink | null = null;
  private delivery: { stage: Stage; close: () => Promise<void> } | null = null;
  private outCapture: LiveCapture | null = null;
  private inCapture: LiveCapture | null = null;
  private readonly retiring = new Set<LiveCapture>();
  private readonly dedupe = new OverlapDeduper();
  private expression = '';
  private exact = true;
  private rebuilds = 0;
  private rebuildScheduled = false;
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly emitWire = (pkt: Packet): void => this.wire!.process(pkt, noEmit);
  private readonly emitLocal = (pkt: Packet): void => this.delivery!.stage.process(pkt, noEmit);
  private readonly onInbound = (pkt: Packet): void => {
    if (this.retiring.size > 0 && this.dedupe.seen(pkt.data)) return;
    this.agent.inbound.process(pkt, this.emitLocal);
  };

  constructor(options: LiveHostAgentOptions) {
    this.options = options;
    this.clock = options.clock ?? realClock();
    this.agent = new AnonHostAgent({ ...options.agent, onFilterChange: () => this.scheduleRebuild() });
  }

  /**
   * Opens the sockets and captures; throws a LiveIoError (privileges, missing interface, …) after closing
   * whatever it had opened.
   */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }
  }

  private async open(): Promise<void> {
    this.delivery = await openDelivery(this.options.delivery);
    this.wire = new RawIpv4Sink({ name: 'wire', interface: this.options.interface });
    this.rebuild();
    const peers = this.agent.peers.map((p) => `dst host ${ipv4String(p.address)}`).join(' or ');
    this.outCapture = new LiveCapture({
      interface: this.options.outboundInterface,
      filter: `ip and (${peers})`,
      bufferSize: CAPTURE_BUFFER_BYTES,
      clock: this.clock,
    });
    this.outCapture.onPacket((pkt) => this.agent.outbound.process(pkt, this.emitWire));
    this.ticker = setInterval(() => this.agent.tick(this.clock.now()), TICK_MS);
  }

  /** Stops capturing, waits for outstanding sends and returns the counters. Idempotent. */
  async stop(): Promise<LiveHostAgentStats> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.ticker) clearInterval(this.ticker);
      this.outCapture?.close();
      this.inCapture?.close();
      for (const c of this.retiring) c.close();
      this.retiring.clear();
      await this.wire?.close();
      await this.delivery?.close();
    }
    return this.stats();
  }

  stats(): LiveHostAgentStats {
    return {
      ...this.agent.stats(),
      prefilter: {
        expression: this.expression,
        exact: this.exact,
        rebuilds: this.rebuilds,
        overlapDuplicates: this.dedupe.duplicates,
      },
      wire: this.wire?.stats() ?? emptyInjectStats(),
      delivery: this.delivery?.stage.stats() ?? emptyStats(),
      captures: {
        outbound: this.outCapture?.stats() ?? emptyLiveCaptureStats(),
        inbound: this.inCapture?.stats() ?? emptyLiveCaptureStats(),
      },
    };
  }

  private scheduleRebuild(): void {
    if (this.rebuildScheduled || this.inCapture === null) return;
    this.rebuildScheduled = true;
    setImmediate(() => {
      this.rebuildScheduled = false;
      if (!this.stopped) this.rebuild();
    });
  }

  /** Opens a capture with the current prefilter; the previous one closes after the overlap. */
  private rebuild(): void {
    const prefilter = this.agent.prefilter();
    if (prefilter.expression === this.expression && this.inCapture !== null) return;
    const capture = new LiveCapture({
      interface: this.options.interface,
      filter: prefilter.expression,
      bufferSize: CAPTURE_BUFFER_BYTES,
      clock: this.clock,
    });
    capture.onPacket(this.onInbound);
    const old = this.inCapture;
    this.inCapture = capture;
    this.expression = prefilter.expression;
    this.exact = prefilter.exact;
    this.rebuilds++;
    if (old !== null) {
      if (this.retiring.size === 0) this.dedupe.reset();
      this.retiring.add(old);
      setTimeout(() => {
        old.close();
        this.retiring.delete(old);
      }, CAPTURE_OVERLAP_MS);
    }
    this.options.log?.(
      `prefilter ${prefilter.exact ? 'exact' : prefilter.fallback}: ${prefilter.expression}`,
    );
  }
}

/** raw-socket's receiving side, which the shared RawSocket type leaves out. */
type ReceivingSocket = RawSocket & {
  on(event: 'message', listener: (buffer: Buffer, source: string) => void): ReceivingSocket;
};

export interface LiveResponderAgentOptions {
  agent: AnonResponderAgentOptions;
  /** Where the routes to the virtual clients point (a dummy interface): the server's replies. */
  replyInterface: string;
  delivery: LiveDelivery;
  clock?: Clock;
}

export interface LiveResponderAgentStats extends AnonResponderAgentStats {
  wire: InjectStats;
  delivery: StageStats;
  replies: LiveCaptureStats;
}

export class LiveResponderAgent {
  readonly agent: AnonResponderAgent;
  private readonly options: LiveResponderAgentOptions;
  private readonly clock: Clock;
  private socket: ReceivingSocket | null = null;
  private replies: LiveCapture | null = null;
  private wire: RawIpv4Sink | null = null;
  private delivery: { stage: Stage; close: () => Promise<void> } | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly received: Packet = { data: Buffer.alloc(0), ts: 0n, link: LinkType.IPV4 };
  private readonly emitWire = (pkt: Packet): void => this.wire!.process(pkt, noEmit);
  private readonly emitLocal = (pkt: Packet): void => this.delivery!.stage.process(pkt, noEmit);

  constructor(options: LiveResponderAgentOptions) {
    this.options = options;
    this.clock = options.clock ?? realClock();
    this.agent = new AnonResponderAgent(options.agent);
  }

  /** As LiveHostAgent.start. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.stop().catch(() => {});
      throw err;
    }
  }

  private async open(): Promise<void> {
    this.delivery = await openDelivery(this.options.delivery);
    this.wire = new RawIpv4Sink({ name: 'wire' });
    const raw = loadRawSocket();
    try {
      this.socket = raw.createSocket({
        protocol: this.agent.protocol,
        addressFamily: raw.AddressFamily.IPv4,
        bufferSize: 65_535,
      }) as ReceivingSocket;
    } catch (err) {
      throw explainFailure(`raw socket for IP protocol ${this.agent.protocol}`, err);
    }
    this.socket.on('error', () => {});
    this.socket.on('message', (buffer) => {
      const pkt = this.received;
      pkt.data = buffer;
      pkt.ts = this.clock.now();
      this.agent.fromClients.process(pkt, this.emitLocal);
    });
    const pool = this.agent.nat.pool;
    this.replies = new LiveCapture({
      interface: this.options.replyInterface,
      filter: `ip and dst net ${pool}`,
      bufferSize: CAPTURE_BUFFER_BYTES,
      clock: this.clock,
    });
    this.replies.onPacket((pkt) => this.agent.fromServer.process(pkt, this.emitWire));
    this.ticker = setInterval(() => this.agent.tick(this.clock.now()), TICK_MS);
  }

  async stop(): Promise<LiveResponderAgentStats> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.ticker) clearInterval(this.ticker);
      this.replies?.close();
      this.socket?.close();
      await this.wire?.close();
      await this.delivery?.close();
    }
    return this.stats();
  }

  stats(): LiveResponderAgentStats {
    return {
      ...this.agent.stats(),
      wire: this.wire?.stats() ?? emptyInjectStats(),
      delivery: this.delivery?.stage.stats() ?? emptyStats(),
      replies: this.replies?.stats() ?? emptyLiveCaptureStats(),
    };
  }
}
