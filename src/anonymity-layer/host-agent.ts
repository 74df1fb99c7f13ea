/**
 * AnonHostAgent: the packet logic of an end host in the broadcast scheme, without any I/O (agent-live.ts
 * puts it on interfaces; tests drive it directly). Two stages:
 *
 * - `outbound`: the host's own packets to its peers (captured where the peers' routes point, a dummy
 *   interface) become packets sent from the subnet's broadcast address:
 *   advanced mode — the transport header and data are sealed into the peer's anonymity-layer session
 *   (IP protocol 253 by default, destination the peer, source the broadcast address); the inner IP header
 *   is not carried (the responder rebuilds one). basic mode — the packet keeps its transport, its source
 *   becomes the broadcast address (incremental checksums), and its tuple (peer, peer port, local port,
 *   protocol) is registered in the host's tuple matcher.
 * - `inbound`: what is broadcast into the subnet (captured on the subnet interface, behind the kernel
 *   prefilter from `prefilter()`) becomes packets for the local stack: advanced mode — the SID table picks
 *   the session before any crypto, the session opens it, and an IPv4 header is built around the transport
 *   (source the peer, destination this host, TCP/UDP checksum recomputed for that pseudo-header); basic
 *   mode — the tuple matcher keeps this host's replies and the destination becomes this host's address.
 *   ICMP errors quoting the host's packet get the host's address back in the quote.
 *
 * One session per peer (the host initiates, in server mode: first contact on the peer's listen SID),
 * created at start and again after it expires; all the host's conversations with that peer share it.
 * Sessions start their sequence at a random point (agent-parts.ts says why).
 *
 * Emitted packets are raw IPv4 (LinkType.IPV4) borrowed from the agent's buffers until the next call.
 * Nothing is thrown for a packet: drops are counted by reason in each stage's stats. `onFilterChange` is
 * called when the SIDs or tuples the prefilter must pass changed; rebuild it from `prefilter()`.
 *
 * Limits: fragments are not carried (dropped `fragment`: give the outbound interface an MTU that leaves
 * room for the 41 bytes of the layer and 20 of the outer header); basic-mode tuples stay registered until
 * the agent stops; basic mode carries only protocols with ports (TCP, UDP, …).
 */

import { ANON_DEFAULT_PROTOCOL } from '../codec/anon.js';
import { ICMPV4_PROTOCOL } from '../codec/icmp.js';
import { ipv4String, readIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { readU32 } from '../esp/esp-format.js';
import { buildPrefilter, type Prefilter } from '../filter/prefilter.js';
import {
  type ConversationTuple,
  OTHER_HOST,
  PORT_PROTOCOLS,
  TUPLE_AMBIGUOUS,
  TUPLE_NO_MATCH,
  TupleMatcher,
} from '../filter/tuple-matcher.js';
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';
import {
  agentKeys,
  type Ipv4Span,
  isFragment,
  PacketViews,
  randomFirstSequence,
  type SidLogEntry,
  SidRecorder,
  takeIpv4,
} from './agent-parts.js';
import {
  IPV4_DESTINATION_FIELD,
  IPV4_SOURCE_FIELD,
  isIcmpError,
  rewriteIcmpQuotedAddress,
  rewriteIpv4Destination,
  rewriteIpv4Source,
} from './broadcast-rewrite.js';
import { BroadcastSubnet } from './broadcast-subnet.js';
import { setTransportChecksum, writeIpv4Header } from './ipv4-envelope.js';
import { keysFor } from './keys.js';
import { AnonReceiver } from './receiver.js';
import { ANON_HEADROOM, ANON_OVERHEAD } from './seal.js';
import type { AnonSession, AnonSessionEvent } from './session.js';
import type { Sid } from './sid.js';

export interface AnonHostPeer {
  name: string;
  /** The peer's IPv4 address as a number (parseIpv4). */
  address: number;
  /** Advanced mode: the secret shared with the peer (≥ 16 bytes) and the peer's listen SID. */
  secret?: Uint8Array;
  listenSid?: Sid;
}

export interface AnonHostAgentOptions {
  mode: 'advanced' | 'basic';
  /** The host's subnet, "198.18.5.0/24" or parsed. */
  subnet: string | BroadcastSubnet;
  /** This host's own address in the subnet (a number). */
  hostAddress: number;
  peers: readonly AnonHostPeer[];
  /** IP protocol number of the anonymity layer (default 253). */
  protocol?: number;
  /** Rotate the own SID every this many packets / milliseconds (defaults 1000 / 10 000; 0 = not). */
  rotateEveryPackets?: number;
  rotateEveryMs?: number;
  minPacketsPerSid?: number;
  idleTimeoutMs?: number;
  /** The prefilter: one clause per SID or tuple (default 'sids'), or the protocol alone. */
  prefilter?: 'sids' | 'protocol';
  /** Keep every SID each session used (sidLog()); off by default. */
  recordSids?: boolean;
  onFilterChange?: () => void;
  onEvent?: (event: AnonSessionEvent) => void;
}

/** Counters of the agent as a whole (the stages' own are in their stats()). */
export interface AnonHostAgentStats {
  mode: 'advanced' | 'basic';
  outbound: StageStats;
  inbound: StageStats;
  sessionsStarted: number;
  established: number;
  /** Own SID rotations, and the peers' seen by this host. */
  rotations: number;
  peerRotations: number;
  expired: number;
  sidsRefused: number;
  /** Basic mode: tuples registered. */
  tuples: number;
  filterChanges: number;
}

const MAX_IPV4 = 65_535;

export class AnonHostAgent {
  readonly mode: 'advanced' | 'basic';
  readonly subnet: BroadcastSubnet;
  readonly hostAddress: number;
  readonly protocol: number;
  readonly peers: readonly AnonHostPeer[];
  /** Advanced mode: the host's SID table and sessions. */
  readonly receiver: AnonReceiver;
  /** Basic mode: the host's conversations. */
  readonly tuples = new TupleMatcher({ expectedEntries: 256 });
  readonly outbound: Stage;
  readonly inbound: Stage;

  private readonly options: AnonHostAgentOptions;
  private readonly peerAddresses: Uint32Array;
  private readonly sessions: (AnonSession | null)[];
  /** Peer index by session slot (receiver slot index); −1 for none. */
  private sessionPeer = new Int32Array(16).fill(-1);
  private readonly recorders: (SidRecorder | null)[] = [];
  private readonly log: SidLogEntry[] = [];
  private readonly wire = new PacketViews(IPV4_HEADER_LENGTH + ANON_OVERHEAD + MAX_IPV4);
  private readonly local = new PacketViews(MAX_IPV4);
  private readonly span: Ipv4Span = { offset: 0, headerLength: 0, totalLength: 0 };
  private readonly tuple: ConversationTuple = { remoteAddress: 0, remotePort: 0, localPort: 0, protocol: 0 };
  private ipId: number;
  private readonly outStats: StageStats = { ...emptyStats(), sealed: 0, rewritten: 0 };
  private readonly inStats: StageStats = { ...emptyStats(), delivered: 0, quotesRewritten: 0 };
  private readonly counters = {
    sessionsStarted: 0,
    established: 0,
    rotations: 0,
    peerRotations: 0,
    expired: 0,
    sidsRefused: 0,
    filterChanges: 0,
  };

  constructor(options: AnonHostAgentOptions) {
    this.options = options;
    this.mode = options.mode;
    if (this.mode !== 'advanced' && this.mode !== 'basic')
      throw new Error(`host agent: mode must be 'advanced' or 'basic', got '${String(this.mode)}'`);
    this.subnet = BroadcastSubnet.from(options.subnet);
    this.hostAddress = options.hostAddress >>> 0;
    if (!this.subnet.isHost(this.hostAddress))
      throw new Error(`host agent: hostAddress is not a host address of ${this.subnet}`);
    this.protocol = options.protocol ?? ANON_DEFAULT_PROTOCOL;
    if (options.peers.length === 0) throw new Error('host agent: give at least one peer');
    for (const p of options.peers) {
      if (this.subnet.contains(p.address >>> 0))
        throw new Error(`host agent: peer ${p.name} lies inside ${this.subnet}; peers are beyond the router`);
      if (this.mode === 'advanced' && (p.secret === undefined || p.listenSid === undefined))
        throw new Error(`host agent: peer ${p.name} needs a secret and a listenSid in advanced mode`);
    }
    this.peers = options.peers;
    this.peerAddresses = Uint32Array.from(options.peers.map((p) => p.address >>> 0));
    this.receiver = new AnonReceiver({
      protocol: this.protocol,
      expectedSessions: options.peers.length,
      onEvent: (e) => this.onSessionEvent(e),
    });
    this.sessions = options.peers.map(() => null);
    this.ipId = (Math.random() * 0x10000) >>> 0;
    if (this.mode === 'advanced') for (let i = 0; i < options.peers.length; i++) this.startSession(i);
    this.outbound = {
      name: 'host-agent-outbound',
      process: (pkt, emit) => this.processOutbound(pkt, emit),
      stats: () => snapshot(this.outStats),
    };
    this.inbound = {
      name: 'host-agent-inbound',
      process: (pkt, emit) => this.processInbound(pkt, emit),
      tick: (now) => this.tick(now),
      stats: () => snapshot(this.inStats),
    };
  }

  /** Time-driven work: idle sessions expire (a new one starts with the next outbound packet). */
  tick(now: bigint): void {
    this.receiver.tick(now);
  }

  /** The kernel prefilter for the subnet interface now (rebuild it after onFilterChange). */
  prefilter(): Prefilter {
    const broadcastAddress = this.subnet.broadcast;
    if (this.mode === 'advanced') {
      if (this.options.prefilter === 'protocol') return protocolOnly(broadcastAddress, this.protocol);
      const sids = this.receiver.table.entries().map(([hi, lo]) => ({ hi, lo }));
      return buildPrefilter({ sids, anonProtocol: this.protocol, broadcastAddress });
    }
    if (this.options.prefilter === 'protocol') return protocolOnly(broadcastAddress, -1);
    return buildPrefilter({ tuples: this.tuples.entries().map((e) => e.tuple), broadcastAddress });
  }

  /**
   * Basic mode: another host was seen using `tuple` (a coordinator or the router told us). The tuple
   * becomes contested and its replies are delivered to nobody until the other host is gone (see
   * tuple-matcher.ts). Returns the tuple's state.
   */
  reportOtherHostUse(tuple: ConversationTuple): 'owned' | 'contested' {
    return this.tuples.reportUse(tuple, OTHER_HOST);
  }

  /** Every session's SIDs so far, by peer and direction (needs recordSids). */
  sidLog(): SidLogEntry[] {
    return this.log.map((e) => ({ ...e, sids: [...e.sids] }));
  }

  stats(): AnonHostAgentStats {
    return {
      mode: this.mode,
      outbound: snapshot(this.outStats),
      inbound: snapshot(this.inStats),
      ...this.counters,
      tuples: this.tuples.entries().length,
    };
  }

  /** Closes every session (their SIDs leave the table). */
  close(): void {
    for (const s of this.sessions) s?.close();
  }

  private processOutbound(pkt: Packet, emit: Emit): void {
    const c = this.outStats;
    const span = this.span;
    if (!takeIpv4(pkt, span, c)) return;
    const data = pkt.data;
    const ip = span.offset;
    const dst = readIpv4(data, ip + IPV4_DESTINATION_FIELD);
    const peer = this.peerAddresses.indexOf(dst);
    if (peer < 0) {
      countDrop(c, 'not-to-peer');
      return;
    }
    if (readIpv4(data, ip + IPV4_SOURCE_FIELD) !== this.hostAddress) {
      countDrop(c, 'source-not-host');
      return;
    }
    if (isFragment(data, ip)) {
      countDrop(c, 'fragment');
      return;
    }
    if (this.mode === 'advanced') this.seal(pkt, peer, emit);
    else this.rewriteSource(pkt, emit);
  }

  private seal(pkt: Packet, peer: number, emit: Emit): void {
    const c = this.outStats;
    const data = pkt.data;
    const span = this.span;
    let session = this.sessions[peer];
    if (session === null || session === undefined || session.state === 'closed')
      session = this.startSession(peer);
    const tOff = span.offset + span.headerLength;
    const tLen = span.totalLength - span.headerLength;
    const buf = this.wire.buffer;
    data.copy(buf, IPV4_HEADER_LENGTH + ANON_HEADROOM, tOff, tOff + tLen);
    const n = session.seal(buf, IPV4_HEADER_LENGTH, tLen, data[span.offset + 9]!, pkt.ts);
    if (typeof n === 'string') {
      countDrop(c, n);
      return;
    }
    this.recorders[session.index]?.sent(session.currentHi, session.currentLo);
    const total = writeIpv4Header(
      buf,
      0,
      n,
      this.protocol,
      this.subnet.broadcast,
      this.peerAddresses[peer]!,
      this.nextId(),
    );
    c.sealed = (c.sealed as number) + 1;
    c.packetsOut++;
    emit(this.wire.packet(total, pkt.ts));
  }

  private rewriteSource(pkt: Packet, emit: Emit): void {
    const c = this.outStats;
    const data = pkt.data;
    const ip = this.span.offset;
    const protocol = data[ip + 9]!;
    if (!PORT_PROTOCOLS.includes(protocol)) {
      countDrop(c, 'no-ports');
      return;
    }
    const t = ip + this.span.headerLength;
    if (this.span.totalLength - this.span.headerLength < 4) {
      countDrop(c, 'truncated');
      return;
    }
    const tuple = this.tuple;
    tuple.remoteAddress = readIpv4(data, ip + IPV4_DESTINATION_FIELD);
    tuple.remotePort = (data[t + 2]! << 8) | data[t + 3]!;
    tuple.localPort = (data[t]! << 8) | data[t + 1]!;
    tuple.protocol = protocol;
    const owner = this.tuples.ownerOf(tuple);
    if (owner === TUPLE_NO_MATCH) {
      this.tuples.register({ ...tuple }, 0);
      this.filterChanged();
    }
    const total = this.span.totalLength;
    const buf = this.wire.buffer;
    data.copy(buf, 0, ip, ip + total);
    const result = rewriteIpv4Source(buf, 0, this.subnet.broadcast, total);
    if (result !== 'ok') {
      countDrop(c, result);
      return;
    }
    c.rewritten = (c.rewritten as number) + 1;
    c.packetsOut++;
    emit(this.wire.packet(total, pkt.ts));
  }

  private processInbound(pkt: Packet, emit: Emit): void {
    const c = this.inStats;
    const span = this.span;
    if (!takeIpv4(pkt, span, c)) return;
    const data = pkt.data;
    if (readIpv4(data, span.offset + IPV4_DESTINATION_FIELD) !== this.subnet.broadcast) {
      countDrop(c, 'not-to-broadcast');
      return;
    }
    if (this.mode === 'advanced') this.open(pkt, emit);
    else this.matchTuple(pkt, emit);
  }

  private open(pkt: Packet, emit: Emit): void {
    const c = this.inStats;
    const data = pkt.data;
    const span = this.span;
    const r = this.receiver.receive(data, span.offset, span.totalLength, pkt.ts);
    if (typeof r === 'string') {
      countDrop(c, r);
      return;
    }
    const d = this.receiver.delivered;
    const session = d.session!;
    const peer = this.sessionPeer[session.index]!;
    const sidOff = span.offset + span.headerLength;
    this.recorders[session.index]?.received(readU32(data, sidOff), readU32(data, sidOff + 4));
    const buf = this.local.buffer;
    d.buffer.copy(buf, IPV4_HEADER_LENGTH, d.transportOffset, d.transportOffset + r);
    const total = writeIpv4Header(
      buf,
      0,
      r,
      d.protocol,
      this.peerAddresses[peer]!,
      this.hostAddress,
      this.nextId(),
    );
    if (setTransportChecksum(buf, 0) !== 'ok') {
      countDrop(c, 'transport-truncated');
      return;
    }
    if (d.protocol === ICMPV4_PROTOCOL && r >= 8 && isIcmpError(buf[IPV4_HEADER_LENGTH]!))
      this.quoteHostAddress(buf, total);
    this.deliver(total, pkt.ts, emit);
  }

  private matchTuple(pkt: Packet, emit: Emit): void {
    const c = this.inStats;
    const data = pkt.data;
    const span = this.span;
    const owner = this.tuples.lookupPacket(data, span.offset, span.offset + span.totalLength);
    if (owner < 0) {
      countDrop(
        c,
        owner === TUPLE_NO_MATCH
          ? 'unknown-tuple'
          : owner === TUPLE_AMBIGUOUS
            ? 'tuple-contested'
            : 'no-tuple',
      );
      return;
    }
    const total = span.totalLength;
    const buf = this.local.buffer;
    data.copy(buf, 0, span.offset, span.offset + total);
    const result = rewriteIpv4Destination(buf, 0, this.hostAddress, total);
    if (result !== 'ok') {
      countDrop(c, result);
      return;
    }
    this.deliver(total, pkt.ts, emit);
  }

  /** An ICMP error quoting the host's packet: the quote's source becomes the host's address again. */
  private quoteHostAddress(buf: Buffer, total: number): void {
    const quoteSrc = IPV4_HEADER_LENGTH + 8 + IPV4_SOURCE_FIELD;
    if (total < quoteSrc + 4 || readIpv4(buf, quoteSrc) === this.hostAddress) return;
    if (
      rewriteIcmpQuotedAddress(buf, IPV4_HEADER_LENGTH, IPV4_SOURCE_FIELD, this.hostAddress, total) === 'ok'
    )
      this.inStats.quotesRewritten = (this.inStats.quotesRewritten as number) + 1;
  }

  private deliver(total: number, ts: bigint, emit: Emit): void {
    const c = this.inStats;
    c.delivered = (c.delivered as number) + 1;
    c.packetsOut++;
    emit(this.local.packet(total, ts));
  }

  private startSession(peer: number): AnonSession {
    const p = this.peers[peer]!;
    const o = this.options;
    const keys = agentKeys(p.secret!);
    const session = this.receiver.initiator({
      keys: keysFor(keys, 'initiator'),
      aead: keys.aead,
      listenSid: p.listenSid,
      rotateEveryPackets: o.rotateEveryPackets,
      rotateEveryMs: o.rotateEveryMs,
      minPacketsPerSid: o.minPacketsPerSid,
      idleTimeoutMs: o.idleTimeoutMs,
      firstSequence: randomFirstSequence(),
      onEvent: o.onEvent,
    });
    this.sessions[peer] = session;
    if (session.index >= this.sessionPeer.length) {
      const grown = new Int32Array(session.index * 2 + 1).fill(-1);
      grown.set(this.sessionPeer);
      this.sessionPeer = grown;
    }
    this.sessionPeer[session.index] = peer;
    if (o.recordSids) {
      const rec = new SidRecorder(p.name);
      this.recorders[session.index] = rec;
      this.log.push(rec.out, rec.in);
    }
    this.counters.sessionsStarted++;
    this.filterChanged();
    return session;
  }

  private onSessionEvent(e: AnonSessionEvent): void {
    const k = this.counters;
    switch (e.type) {
      case 'rotated':
        k.rotations++;
        return;
      case 'peer-rotated':
        k.peerRotations++;
        break;
      case 'established':
        k.established++;
        break;
      case 'sid-refused':
        k.sidsRefused++;
        break;
      case 'expired':
      case 'closed': {
        if (e.type === 'expired') k.expired++;
        const i = e.session.index;
        const peer = this.sessionPeer[i]!;
        if (peer >= 0 && this.sessions[peer] === e.session) this.sessions[peer] = null;
        this.sessionPeer[i] = -1;
        this.recorders[i] = null;
        break;
      }
      default:
        return;
    }
    this.filterChanged();
  }

  private filterChanged(): void {
    this.counters.filterChanges++;
    this.options.onFilterChange?.();
  }

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}

/** `ip dst host B and ip proto P` (P < 0: TCP or UDP), for the 'protocol' prefilter setting. */
function protocolOnly(broadcast: number, protocol: number): Prefilter {
  const b = ipv4String(broadcast);
  const proto = protocol < 0 ? '(ip proto 6 or ip proto 17)' : `ip proto ${protocol}`;
  return {
    expression: `ip dst host ${b} and ${proto}`,
    exact: false,
    sessionsCovered: 0,
    fallback: 'protocol',
    sidMatch: protocol < 0 ? 'none' : 'protocol',
    sidPrefixBits: 0,
    tupleMatch: protocol < 0 ? 'protocol' : 'none',
    remotePrefixBits: 0,
    estimatedInstructions: 8,
  };
}

function snapshot(s: StageStats): StageStats {
  return { ...s, dropped: { ...s.dropped } };
}
