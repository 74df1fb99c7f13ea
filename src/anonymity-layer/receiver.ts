/**
 * The host side of the broadcast anonymity layer: everything broadcast into the subnet arrives here, and
 * only this host's sessions come out. Per packet: IPv4 header checks, the protocol number (default 253),
 * the clear current SID looked up in the session table — a miss is dropped as 'unknown-sid' before any
 * crypto, which is what lets the filter run at line rate — then the owning session opens it (replay check,
 * tag, SID and window updates) and the protocol and transport bytes are handed back.
 *
 * The receiver owns the table and the sessions' slots: create sessions and listeners through it so their
 * SIDs land in its table, and their slots are freed when they close or expire.
 */
import { ANON_DEFAULT_PROTOCOL, ANON_MIN_LENGTH, ANON_SID_LENGTH } from '../codec/anon.js';
import { SessionTable } from '../filter/session-table.js';
import { countDrop, emptyStats, type StageStats } from '../stages/stage.js';
import { AnonListener } from './listener.js';
import {
  type AnonInitiatorOptions,
  type AnonResponderOptions,
  AnonSession,
  type AnonSessionDrop,
  type AnonSessionEvent,
  type AnonSessionOptions,
} from './session.js';
import type { Sid } from './sid.js';

/** Why receive() delivered nothing (counted in stats().dropped). */
export type AnonReceiveDrop =
  /** Not an IPv4 packet (version field). */
  | 'not-ipv4'
  /** IPv4, but another protocol than the anonymity layer's. */
  | 'not-anon'
  /** IPv4 header lengths that contradict each other (IHL below 5, total length below the header). */
  | 'malformed'
  /** A fragment: reassemble first. */
  | 'fragment'
  | AnonSessionDrop;

/** What the last successful receive() handed back; the bytes are in `buffer` until the next call. */
export interface AnonDelivery {
  session: AnonSession | null;
  /** IP protocol number of the transport (6 TCP, 17 UDP, …), from inside the seal. */
  protocol: number;
  buffer: Buffer;
  transportOffset: number;
  transportLength: number;
}

export interface AnonReceiverOptions {
  /** IP protocol number of the anonymity layer (default 253). */
  protocol?: number;
  /** Sessions to size the table for (default 1024); it grows past that. */
  expectedSessions?: number;
  /** Called for every event of every session, after the session's own onEvent. */
  onEvent?: (event: AnonSessionEvent) => void;
}

/** Session options without what the receiver fills in (its table, the session's slot); keeps unions apart. */
export type AnonEndpointOptions<T extends AnonSessionOptions = AnonSessionOptions> = T extends unknown
  ? Omit<T, 'registry' | 'index'>
  : never;

/** Peer SIDs a session keeps registered at most with the default tolerance: 2 previous, current, next. */
const SIDS_PER_SESSION = 4;
/** The largest IPv4 packet: the plaintext of any anonymity-layer packet fits. */
const MAX_PACKET = 65_535;

export class AnonReceiver {
  readonly protocol: number;
  readonly table: SessionTable;
  readonly delivered: AnonDelivery;
  private readonly slots: (AnonSession | AnonListener | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly buffer = Buffer.alloc(MAX_PACKET);
  private readonly counters: StageStats = { ...emptyStats(), sessions: 0 };
  private readonly onEvent: ((event: AnonSessionEvent) => void) | null;

  constructor(options: AnonReceiverOptions = {}) {
    const protocol = options.protocol ?? ANON_DEFAULT_PROTOCOL;
    if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255)
      throw new Error(`anonymity-layer receiver: protocol ${protocol} must be an IP protocol number 0..255`);
    this.protocol = protocol;
    this.table = new SessionTable({ expectedEntries: (options.expectedSessions ?? 1024) * SIDS_PER_SESSION });
    this.onEvent = options.onEvent ?? null;
    this.delivered = {
      session: null,
      protocol: 0,
      buffer: this.buffer,
      transportOffset: 0,
      transportLength: 0,
    };
  }

  /** Open sessions and listeners. */
  get sessions(): number {
    return this.slots.length - this.freeSlots.length;
  }

  /** The session or listener in a slot (what a table lookup returned), or undefined. */
  slot(index: number): AnonSession | AnonListener | undefined {
    return this.slots[index];
  }

  initiator(options: AnonEndpointOptions<AnonInitiatorOptions>): AnonSession {
    return this.place((index) => AnonSession.initiator(this.sessionOptions(options, index)));
  }

  responder(options: AnonEndpointOptions<AnonResponderOptions>): AnonSession {
    return this.place((index) => AnonSession.responder(this.sessionOptions(options, index)));
  }

  /** A listen SID for server mode; expect clients with responder({ contact: listener, … }). */
  listener(listenSid: Sid): AnonListener {
    return this.place((index) => new AnonListener({ listenSid, registry: this.table, index }));
  }

  /** Closes a listener and frees its slot (its waiting sessions stay open). */
  closeListener(listener: AnonListener): void {
    if (this.slots[listener.index] !== listener) return;
    listener.close();
    this.release(listener.index);
  }

  /**
   * Receives the raw IPv4 packet at buf[off, off + len). Returns the transport length (protocol, bytes and
   * session in `delivered`) or why the packet was dropped. Never throws on packet bytes; buf is not modified.
   */
  receive(buf: Uint8Array, off: number, len: number, now: bigint): number | AnonReceiveDrop {
    this.counters.packetsIn++;
    const r = this.receiveIpv4(buf, off, len, now);
    if (typeof r === 'string') countDrop(this.counters, r);
    else this.counters.packetsOut++;
    return r;
  }

  /**
   * Receives an anonymity-layer packet without its IP header: buf[off, off + len) from the current SID to
   * the tag. Same results as receive().
   */
  receiveAnon(buf: Uint8Array, off: number, len: number, now: bigint): number | AnonReceiveDrop {
    this.counters.packetsIn++;
    const r = this.open(buf, off, len, now);
    if (typeof r === 'string') countDrop(this.counters, r);
    else this.counters.packetsOut++;
    return r;
  }

  /** Time-driven work: expires idle sessions (a pass over the slots). */
  tick(now: bigint): void {
    for (const s of this.slots) if (s instanceof AnonSession) s.tick(now);
  }

  stats(): StageStats {
    this.counters.sessions = this.sessions;
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private receiveIpv4(buf: Uint8Array, off: number, len: number, now: bigint): number | AnonReceiveDrop {
    if (len < 1) return 'truncated';
    const vihl = buf[off]!;
    if (vihl >>> 4 !== 4) return 'not-ipv4';
    const ihl = (vihl & 0x0f) << 2;
    if (ihl < 20) return 'malformed';
    if (len < ihl) return 'truncated';
    const total = (buf[off + 2]! << 8) | buf[off + 3]!;
    if (total < ihl) return 'malformed';
    if (buf[off + 9] !== this.protocol) return 'not-anon';
    if (total > len) return 'truncated';
    if (((buf[off + 6]! << 8) | buf[off + 7]!) & 0x3fff) return 'fragment';
    return this.open(buf, off + ihl, total - ihl, now);
  }

  private open(buf: Uint8Array, off: number, len: number, now: bigint): number | AnonReceiveDrop {
    if (len < ANON_SID_LENGTH) return 'truncated';
    const index = this.table.lookupAt(buf, off);
    if (index < 0) return 'unknown-sid';
    if (len < ANON_MIN_LENGTH) return 'truncated';
    const slot = this.slots[index];
    if (slot === undefined) return 'unknown-sid';
    const n = slot.open(buf, off, len, this.buffer, 0, now);
    if (typeof n === 'string') return n;
    const d = this.delivered;
    d.session = slot instanceof AnonListener ? slot.opened : slot;
    d.protocol = this.buffer[ANON_SID_LENGTH]!;
    d.transportOffset = ANON_SID_LENGTH + 1;
    d.transportLength = n - ANON_SID_LENGTH - 1;
    return d.transportLength;
  }

  /** The caller's options plus this receiver's table, the slot, and an onEvent that frees the slot. */
  private sessionOptions<T extends { onEvent?: ((event: AnonSessionEvent) => void) | undefined }>(
    options: T,
    index: number,
  ): T & Pick<AnonSessionOptions, 'registry' | 'index' | 'onEvent'> {
    const own = options.onEvent;
    const onEvent = (event: AnonSessionEvent): void => {
      if (event.type === 'closed' || event.type === 'expired') this.release(event.session.index);
      own?.(event);
      this.onEvent?.(event);
    };
    return { ...options, registry: this.table, index, onEvent };
  }

  private place<T extends AnonSession | AnonListener>(make: (index: number) => T): T {
    const index = this.freeSlots.pop() ?? this.slots.length;
    let made: T;
    try {
      made = make(index);
    } catch (err) {
      if (index < this.slots.length) this.freeSlots.push(index);
      throw err;
    }
    this.slots[index] = made;
    return made;
  }

  private release(index: number): void {
    if (this.slots[index] === undefined) return;
    this.slots[index] = undefined;
    this.freeSlots.push(index);
  }
}
