/**
 * AnonResponderAgent: the packet logic of the server side of advanced mode, without any I/O
 * (agent-live.ts puts it on sockets and interfaces; tests drive it directly). Two stages:
 *
 * - `fromClients`: anonymity-layer packets (IP protocol 253 by default) sent to the server from a subnet's
 *   broadcast address. First contact arrives on the server's listen SID and is tried against the keys of
 *   every expected peer (AnonListener); later packets go straight to their session by SID. The opened
 *   transport gets an IPv4 header for the server's stack: destination the server's address, source the
 *   session's virtual client address from the session-NAT (session-nat.ts), TCP/UDP checksum recomputed.
 *   Every session is its own client to the stack, even when two hosts chose the same ports.
 * - `fromServer`: the stack's replies to virtual client addresses (routed to a dummy interface and
 *   captured there) are sealed into the session holding that address and sent from the server's address
 *   to the broadcast address the session's packets came from.
 *
 * Each peer has one session waiting on the listen SID, so a host that restarts (a new session) is served
 * too. A new one starts waiting when the peer's session stops accepting the listen SID (after the client's
 * third rotation) or ends: until then a packet on the listen SID that the peer's keys open belongs to the
 * session already there (first contact is often several packets, before the reply arrives). A host that
 * restarts within that time is served once the old session expires. Sessions that expire give their virtual
 * address back. Emitted packets are raw IPv4 (LinkType.IPV4), borrowed until the next call; drops are
 * counted by reason. Fragments are not carried (see host-agent.ts).
 */

import { ANON_DEFAULT_PROTOCOL } from '../codec/anon.js';
import { ICMPV4_PROTOCOL } from '../codec/icmp.js';
import { readIpv4 } from '../codec/ip-address.js';
import { IPV4_HEADER_LENGTH } from '../codec/ipv4.js';
import { readU32 } from '../esp/esp-format.js';
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
} from './broadcast-rewrite.js';
import type { BroadcastSubnet } from './broadcast-subnet.js';
import { setTransportChecksum, writeIpv4Header } from './ipv4-envelope.js';
import { type AnonKeys, keysFor } from './keys.js';
import type { AnonListener } from './listener.js';
import { AnonReceiver } from './receiver.js';
import { ANON_HEADROOM, ANON_OVERHEAD } from './seal.js';
import type { AnonSession, AnonSessionEvent } from './session.js';
import { SessionNat } from './session-nat.js';
import type { Sid } from './sid.js';

export interface AnonResponderPeer {
  name: string;
  /** The secret shared with this peer (≥ 16 bytes). */
  secret: Uint8Array;
}

export interface AnonResponderAgentOptions {
  /** The server's own address (a number): destination of inner packets, source of replies. */
  address: number;
  /** Session-NAT pool, "198.18.99.0/24" or parsed: one virtual client address per session. */
  virtualClients: string | BroadcastSubnet;
  listenSid: Sid;
  peers: readonly AnonResponderPeer[];
  protocol?: number;
  rotateEveryPackets?: number;
  rotateEveryMs?: number;
  minPacketsPerSid?: number;
  idleTimeoutMs?: number;
  recordSids?: boolean;
  onEvent?: (event: AnonSessionEvent) => void;
}

export interface AnonResponderAgentStats {
  fromClients: StageStats;
  fromServer: StageStats;
  /** Sessions that made contact, and those open now (waiting ones not counted). */
  sessionsEstablished: number;
  sessionsOpen: number;
  rotations: number;
  peerRotations: number;
  expired: number;
  sidsRefused: number;
}

const MAX_IPV4 = 65_535;
const NO_PEER = -1;

export class AnonResponderAgent {
  readonly address: number;
  readonly protocol: number;
  readonly receiver: AnonReceiver;
  readonly listener: AnonListener;
  readonly nat: SessionNat;
  readonly fromClients: Stage;
  readonly fromServer: Stage;

  private readonly options: AnonResponderAgentOptions;
  private readonly keys: AnonKeys[];
  /** The session waiting for first contact, per peer. */
  private readonly waiting: (AnonSession | null)[];
  /** Per session slot: its peer, the broadcast address its packets come from, the session itself. */
  private peerOf = new Int32Array(16).fill(NO_PEER);
  private replyTo = new Uint32Array(16);
  private sessionAt: (AnonSession | null)[] = [];
  private readonly recorders: (SidRecorder | null)[] = [];
  private readonly log: SidLogEntry[] = [];
  private readonly wire = new PacketViews(IPV4_HEADER_LENGTH + ANON_OVERHEAD + MAX_IPV4);
  private readonly local = new PacketViews(MAX_IPV4);
  private readonly span: Ipv4Span = { offset: 0, headerLength: 0, totalLength: 0 };
  private closing = false;
  private ipId = (Math.random() * 0x10000) >>> 0;
  private readonly inStats: StageStats = { ...emptyStats(), delivered: 0, quotesRewritten: 0 };
  private readonly outStats: StageStats = { ...emptyStats(), sealed: 0 };
  private readonly counters = {
    sessionsEstablished: 0,
    rotations: 0,
    peerRotations: 0,
    expired: 0,
    sidsRefused: 0,
  };

  constructor(options: AnonResponderAgentOptions) {
    this.options = options;
    this.address = options.address >>> 0;
    this.protocol = options.protocol ?? ANON_DEFAULT_PROTOCOL;
    if (options.peers.length === 0) throw new Error('responder agent: give at least one peer');
    this.nat = new SessionNat(options.virtualClients);
    if (this.nat.pool.contains(this.address))
      throw new Error(`responder agent: the server's address lies inside virtualClients ${this.nat.pool}`);
    this.receiver = new AnonReceiver({
      protocol: this.protocol,
      expectedSessions: options.peers.length * 2,
      onEvent: (e) => this.onSessionEvent(e),
    });
    this.listener = this.receiver.listener(options.listenSid);
    this.keys = options.peers.map((p) => agentKeys(p.secret));
    this.waiting = options.peers.map(() => null);
    for (let i = 0; i < options.peers.length; i++) this.wait(i);
    this.fromClients = {
      name: 'responder-from-clients',
      process: (pkt, emit) => this.processFromClient(pkt, emit),
      tick: (now) => this.receiver.tick(now),
      stats: () => snapshot(this.inStats),
    };
    this.fromServer = {
      name: 'responder-from-server',
      process: (pkt, emit) => this.processFromServer(pkt, emit),
      stats: () => snapshot(this.outStats),
    };
  }

  tick(now: bigint): void {
    this.receiver.tick(now);
  }

  /** The established session holding a virtual client address, or null. */
  sessionFor(virtualAddress: number): AnonSession | null {
    const i = this.nat.lookup(virtualAddress);
    return i < 0 ? null : (this.sessionAt[i] ?? null);
  }

  /** The name of the peer a session belongs to (for logs and tests). */
  peerName(session: AnonSession): string | null {
    const p = this.peerOf[session.index];
    return p === undefined || p === NO_PEER ? null : this.options.peers[p]!.name;
  }

  sidLog(): SidLogEntry[] {
    return this.log.map((e) => ({ ...e, sids: [...e.sids] }));
  }

  stats(): AnonResponderAgentStats {
    let open = 0;
    for (const s of this.sessionAt) if (s && s.state === 'established') open++;
    return {
      fromClients: snapshot(this.inStats),
      fromServer: snapshot(this.outStats),
      sessionsEstablished: this.counters.sessionsEstablished,
      sessionsOpen: open,
      rotations: this.counters.rotations,
      peerRotations: this.counters.peerRotations,
      expired: this.counters.expired,
      sidsRefused: this.counters.sidsRefused,
    };
  }

  close(): void {
    this.closing = true;
    for (const s of [...this.sessionAt, ...this.waiting]) s?.close();
    this.receiver.closeListener(this.listener);
  }

  private processFromClient(pkt: Packet, emit: Emit): void {
    const c = this.inStats;
    const span = this.span;
    if (!takeIpv4(pkt, span, c)) return;
    const data = pkt.data;
    const r = this.receiver.receive(data, span.offset, span.totalLength, pkt.ts);
    if (typeof r === 'string') {
      countDrop(c, r);
      return;
    }
    const d = this.receiver.delivered;
    const session = d.session!;
    const index = session.index;
    // A session that opened a packet without becoming established has no SID to reply on (the client's
    // announced SID is taken here): its client would get no answers, so the packet goes no further.
    if (session.state !== 'established') {
      countDrop(c, 'not-established');
      return;
    }
    const virtual = this.nat.assign(index);
    if (virtual === -1) {
      countDrop(c, 'nat-pool-exhausted');
      return;
    }
    this.replyTo[index] = readIpv4(data, span.offset + IPV4_SOURCE_FIELD);
    const sidOff = span.offset + span.headerLength;
    this.recorders[index]?.received(readU32(data, sidOff), readU32(data, sidOff + 4));
    const buf = this.local.buffer;
    d.buffer.copy(buf, IPV4_HEADER_LENGTH, d.transportOffset, d.transportOffset + r);
    const total = writeIpv4Header(buf, 0, r, d.protocol, virtual, this.address, this.nextId());
    if (setTransportChecksum(buf, 0) !== 'ok') {
      countDrop(c, 'transport-truncated');
      return;
    }
    // An ICMP error from the host quotes the server's packet to the host: make it a packet to the client.
    if (
      d.protocol === ICMPV4_PROTOCOL &&
      r >= 28 &&
      isIcmpError(buf[IPV4_HEADER_LENGTH]!) &&
      rewriteIcmpQuotedAddress(buf, IPV4_HEADER_LENGTH, IPV4_DESTINATION_FIELD, virtual, total) === 'ok'
    )
      c.quotesRewritten = (c.quotesRewritten as number) + 1;
    c.delivered = (c.delivered as number) + 1;
    c.packetsOut++;
    emit(this.local.packet(total, pkt.ts));
  }

  private processFromServer(pkt: Packet, emit: Emit): void {
    const c = this.outStats;
    const span = this.span;
    if (!takeIpv4(pkt, span, c)) return;
    const data = pkt.data;
    const index = this.nat.lookup(readIpv4(data, span.offset + IPV4_DESTINATION_FIELD));
    const session = index < 0 ? null : (this.sessionAt[index] ?? null);
    if (session === null) {
      countDrop(c, 'no-session-for-address');
      return;
    }
    if (isFragment(data, span.offset)) {
      countDrop(c, 'fragment');
      return;
    }
    const tOff = span.offset + span.headerLength;
    const tLen = span.totalLength - span.headerLength;
    const buf = this.wire.buffer;
    data.copy(buf, IPV4_HEADER_LENGTH + ANON_HEADROOM, tOff, tOff + tLen);
    const n = session.seal(buf, IPV4_HEADER_LENGTH, tLen, data[span.offset + 9]!, pkt.ts);
    if (typeof n === 'string') {
      countDrop(c, n);
      return;
    }
    this.recorders[index]?.sent(session.currentHi, session.currentLo);
    const total = writeIpv4Header(
      buf,
      0,
      n,
      this.protocol,
      this.address,
      this.replyTo[index]!,
      this.nextId(),
    );
    c.sealed = (c.sealed as number) + 1;
    c.packetsOut++;
    emit(this.wire.packet(total, pkt.ts));
  }

  /** A fresh session for `peer`, waiting for first contact on the listen SID. */
  private wait(peer: number): void {
    const o = this.options;
    const keys = this.keys[peer]!;
    const session = this.receiver.responder({
      contact: this.listener,
      keys: keysFor(keys, 'responder'),
      aead: keys.aead,
      rotateEveryPackets: o.rotateEveryPackets,
      rotateEveryMs: o.rotateEveryMs,
      minPacketsPerSid: o.minPacketsPerSid,
      idleTimeoutMs: o.idleTimeoutMs,
      firstSequence: randomFirstSequence(),
      onEvent: o.onEvent,
    });
    this.waiting[peer] = session;
    const i = session.index;
    if (i >= this.peerOf.length) {
      const size = i * 2 + 1;
      const peerOf = new Int32Array(size).fill(NO_PEER);
      peerOf.set(this.peerOf);
      this.peerOf = peerOf;
      const replyTo = new Uint32Array(size);
      replyTo.set(this.replyTo);
      this.replyTo = replyTo;
    }
    this.peerOf[i] = peer;
    this.replyTo[i] = 0;
    this.sessionAt[i] = null;
  }

  private onSessionEvent(e: AnonSessionEvent): void {
    const k = this.counters;
    const i = e.session.index;
    switch (e.type) {
      case 'rotated':
        k.rotations++;
        return;
      case 'peer-rotated': {
        k.peerRotations++;
        const peer = this.peerOf[i]!;
        if (peer !== NO_PEER && this.waiting[peer] === null && !this.acceptsListenSid(e.session))
          this.wait(peer);
        return;
      }
      case 'sid-refused':
        k.sidsRefused++;
        return;
      case 'established': {
        k.sessionsEstablished++;
        const peer = this.peerOf[i]!;
        this.sessionAt[i] = e.session;
        if (this.options.recordSids) {
          const rec = new SidRecorder(this.options.peers[peer]!.name);
          this.recorders[i] = rec;
          this.log.push(rec.out, rec.in);
        }
        // The next waiting session starts only once this one stops accepting the listen SID (see below).
        if (this.waiting[peer] === e.session) this.waiting[peer] = null;
        return;
      }
      case 'expired':
      case 'closed': {
        if (e.type === 'expired') k.expired++;
        const peer = this.peerOf[i]!;
        this.nat.release(i);
        this.sessionAt[i] = null;
        this.recorders[i] = null;
        this.peerOf[i] = NO_PEER;
        if (peer === NO_PEER) return;
        if (this.waiting[peer] === e.session) this.waiting[peer] = null;
        if (!this.closing && this.waiting[peer] === null) this.wait(peer);
        return;
      }
    }
  }

  /**
   * Whether a session still takes packets on the listen SID (its peer's first generations are kept for
   * late packets). While it does, a packet there that its keys open is its own; a second waiting session
   * with the same keys would open it too and split the client in two.
   */
  private acceptsListenSid(session: AnonSession): boolean {
    const listen = this.listener.listenSid;
    return session.acceptedSids().includes(listen);
  }

  private nextId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}

function snapshot(s: StageStats): StageStats {
  return { ...s, dropped: { ...s.dropped } };
}
