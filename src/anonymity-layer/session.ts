/**
 * One end of an anonymity-layer session: the session-ID exchange and rotation, sealing and opening with the
 * session's keys, and the set of SIDs this end accepts (kept registered in the host's SID filter).
 *
 * Each direction has its own chain of SIDs, chosen by its sender: a packet carries the sender's current SID
 * in clear and announces the sender's next one inside the seal. The exchange (research §4, advanced mode):
 *
 *   initiator → (A, B)      A and B its own; it sends (A, B) until a reply arrives
 *   responder → (A, X)      replies on A, the initiator's first SID, announcing its own X
 *   initiator → (B, C)      the reply arrived: the initiator moves to B (the responder knows B), announces C
 *   responder → (X, Y)      B arrived: the initiator knows X, so the responder moves to X, announces Y
 *   … then each side rotates its own chain every N packets or T ms: (C, D), (Y, Z), …
 *
 * Server mode (§4.4): the server has a long-term listen SID L. The initiator's first packets are (L, A); the
 * server replies (A, X) and from there it is the exchange above with the initiator's chain L, A, B, ….
 *
 * Which SIDs a receiver accepts: the peer's SIDs it knows, by generation g (position in the peer's chain) —
 * the newest one seen as current (top), the announced next (top + 1), and `keepPreviousSids` older ones for
 * late packets. The first two rotations above are acknowledged by the exchange itself; later ones are not,
 * so a sender keeps each SID for at least `minPacketsPerSid` packets. Guarantee (tested by the model test):
 * with D the largest number of later packets that overtake a packet, D < minPacketsPerSid, D < the replay
 * window, keepPreviousSids ≥ 1, and no run of more than minPacketsPerSid − D − 1 consecutive losses, every
 * packet that arrives is accepted exactly once and the session never loses its SIDs. Outside that, the
 * session degrades to dropping packets ('unknown-sid' at the filter) and, if the peer's chain ran ahead of
 * everything this end knows, to an idle expiry.
 *
 * State changes only for packets whose tag verified. Time is the caller's `now` in nanoseconds (a Clock,
 * packet timestamps), compared in milliseconds as doubles: no BigInt arithmetic per packet.
 */

import { ANON_MIN_LENGTH } from '../codec/anon.js';
import type { BackendName } from '../esp/crypto/backend.js';
import { readU32 } from '../esp/esp-format.js';
import type { SidRegistry } from '../filter/session-table.js';
import type { AnonAead, AnonDirectionKeys } from './keys.js';
import { type AnonOpenDrop, AnonOpener, AnonSealer, type AnonSealRefusal } from './seal.js';
import { checkSid, type RandomSource, type Sid, SidGenerator, sidHi, sidLo, sidOf } from './sid.js';

export type AnonSessionRole = 'initiator' | 'responder';

export type AnonSessionState =
  /** Initiator: sending first contact, no reply yet. */
  | 'contacting'
  /** Responder: waiting for the initiator's first packet; cannot send. */
  | 'awaiting-contact'
  | 'established'
  /** Torn down (close() or idle expiry): nothing registered, nothing sent or accepted. */
  | 'closed';

export type AnonSessionEvent =
  /** The first authentic packet from the peer arrived (initiator: the reply; responder: first contact). */
  | { type: 'established'; session: AnonSession }
  /** This end moved to a new current SID and announces `next`. */
  | { type: 'rotated'; session: AnonSession; current: Sid; next: Sid }
  /** The peer moved to a new current SID; `next` is what it announced (null if refused). */
  | { type: 'peer-rotated'; session: AnonSession; current: Sid; next: Sid | null }
  /**
   * An authentic packet announced a next SID this end cannot accept: already mapped to something on this
   * host ('in-use'), 0 ('zero'), or different from what the same generation announced before ('mismatch').
   * Packets under it will not reach this session; if the peer rotates to it the session will expire.
   */
  | { type: 'sid-refused'; session: AnonSession; sid: Sid; reason: 'in-use' | 'zero' | 'mismatch' }
  /** The send key's sequence numbers are used up: seal() refuses; replace the session with new keys. */
  | { type: 'sequence-exhausted'; session: AnonSession }
  /** Nothing sent or received for idleTimeoutMs: torn down. */
  | { type: 'expired'; session: AnonSession }
  /** close() was called: torn down. */
  | { type: 'closed'; session: AnonSession };

/** Why a session refused to seal. */
export type AnonSendRefusal = AnonSealRefusal | 'not-established' | 'closed' | 'expired';
/** Why a session dropped a packet routed to it. */
export type AnonSessionDrop =
  | AnonOpenDrop
  /** The session is closed (or expired on this packet). */
  | 'closed'
  | 'expired'
  /** The packet's current SID is not one this session accepts (the filter and the session disagree). */
  | 'unknown-sid';

/** Where server-mode sessions wait for first contact on a listen SID (listener.ts implements it). */
export interface AnonContactPoint {
  readonly listenHi: number;
  readonly listenLo: number;
  addCandidate(session: AnonSession): void;
  removeCandidate(session: AnonSession): void;
}

export interface AnonSessionOptions {
  /** Key material this end seals with (`send`) and opens with (`receive`): keys.ts keysFor(). */
  keys: AnonDirectionKeys;
  /** Default 'chacha20-poly1305'. */
  aead?: AnonAead;
  backend?: BackendName;
  /** The host's SID filter, where this session keeps the SIDs it accepts registered. */
  registry: SidRegistry;
  /** This session's index in the registry: what a lookup of its SIDs returns. */
  index: number;
  /** Rotate the own SID after this many packets under it; 0 = not by count (default 1000). */
  rotateEveryPackets?: number;
  /** Rotate the own SID after this many milliseconds under it; 0 = not by time (default 10 000). */
  rotateEveryMs?: number;
  /** Never rotate before this many packets went out under the current SID: the loss tolerance (default 8). */
  minPacketsPerSid?: number;
  /** Older peer SIDs still accepted for late packets (default 2). */
  keepPreviousSids?: number;
  /** Anti-replay window in packets, 32 … 65536 (default 64). */
  replayWindow?: number;
  /**
   * Tear down after this many milliseconds without a packet either way; 0 = never (default 120 000). The
   * clock starts at the session's first call with a time (seal, open, tick): a server session waiting for a
   * client expires this long after its first tick unless the client comes; give 0 to wait indefinitely.
   */
  idleTimeoutMs?: number;
  /** Sequence number range of the send key (default 1 … 2^64 − 1). */
  firstSequence?: bigint;
  lastSequence?: bigint;
  onEvent?: (event: AnonSessionEvent) => void;
  /** Random bytes for new SIDs (default: the OS CSPRNG). */
  random?: RandomSource;
}

export interface AnonInitiatorOptions extends AnonSessionOptions {
  /** Its first SID A: random by default; keys.ts's rendezvousSid when the responder must know it ahead. */
  firstSid?: Sid;
  /** Server mode: the server's listen SID, carried as current SID until the server replies. */
  listenSid?: Sid;
}

export type AnonResponderOptions = AnonSessionOptions &
  (
    | {
        /** The initiator's first SID A, known ahead (keys.ts rendezvousSid, or agreed out of band). */
        firstSid: Sid;
        contact?: undefined;
      }
    | {
        /** Server mode: first contact arrives on this listen SID, shared with other clients. */
        contact: AnonContactPoint;
        firstSid?: undefined;
      }
  );

const NS_PER_MS = 1e6;

function nsToMs(now: bigint): number {
  return Number(now) / NS_PER_MS;
}

function nonNegativeInt(who: string, name: string, v: number, min = 0): number {
  if (!Number.isInteger(v) || v < min)
    throw new Error(`${who}: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export class AnonSession {
  readonly role: AnonSessionRole;
  readonly index: number;
  /** Server mode: where first contact arrives (null otherwise). */
  readonly contact: AnonContactPoint | null;
  readonly sealer: AnonSealer;
  readonly opener: AnonOpener;
  state: AnonSessionState;
  onEvent: ((event: AnonSessionEvent) => void) | null;

  /** Own chain: the current SID (clear in every packet sent) and the announced next one. */
  currentHi = 0;
  currentLo = 0;
  nextHi = 0;
  nextLo = 0;
  /** Generation of the own current SID (0 = the first SID of this end's chain). */
  ownGeneration = 0;
  /** Packets sent under the own current SID. */
  packetsUnderCurrent = 0;

  private readonly registry: SidRegistry;
  private readonly rotateEveryPackets: number;
  private readonly rotateEveryMs: number;
  private readonly minPacketsPerSid: number;
  private readonly keepPrevious: number;
  private readonly idleTimeoutMs: number;
  private readonly generator: SidGenerator;
  private readonly inUse: (hi: number, lo: number) => boolean;
  /** Rotations by count/time allowed (after the exchange's acknowledged first rotation). */
  private canRotate = false;
  private rotatedAtMs = Number.NaN;
  private lastActivityMs = Number.NaN;
  private exhaustionReported = false;

  /** Peer chain, a ring of keepPrevious + 2 generations: slot g % size holds generation g. */
  private readonly ringSize: number;
  private readonly peerHi: Uint32Array;
  private readonly peerLo: Uint32Array;
  private readonly peerGen: Float64Array;
  /** 1 when the slot's SID is registered (in the registry, or via the contact point for generation 0). */
  private readonly peerRegistered: Uint8Array;
  /** Highest peer generation seen as a packet's current SID (−1: none yet). */
  private peerTop = -1;
  /** Highest peer generation known (announced or given). */
  private peerKnown = 0;

  /** Use AnonSession.initiator / AnonSession.responder. */
  private constructor(role: AnonSessionRole, options: AnonSessionOptions, contact: AnonContactPoint | null) {
    const who = `anonymity-layer ${role}`;
    this.role = role;
    this.index = nonNegativeInt(who, 'index', options.index);
    this.contact = contact;
    this.registry = options.registry;
    this.onEvent = options.onEvent ?? null;
    this.rotateEveryPackets = nonNegativeInt(who, 'rotateEveryPackets', options.rotateEveryPackets ?? 1000);
    this.rotateEveryMs = options.rotateEveryMs ?? 10_000;
    if (!(this.rotateEveryMs >= 0 && Number.isFinite(this.rotateEveryMs)))
      throw new Error(`${who}: rotateEveryMs must be a finite number ≥ 0, got ${this.rotateEveryMs}`);
    this.minPacketsPerSid = nonNegativeInt(who, 'minPacketsPerSid', options.minPacketsPerSid ?? 8, 1);
    if (this.rotateEveryPackets !== 0 && this.rotateEveryPackets < this.minPacketsPerSid)
      throw new Error(
        `${who}: rotateEveryPackets ${this.rotateEveryPackets} is below minPacketsPerSid ${this.minPacketsPerSid}; ` +
          'raise it (or lower minPacketsPerSid, which is the loss tolerance)',
      );
    this.keepPrevious = nonNegativeInt(who, 'keepPreviousSids', options.keepPreviousSids ?? 2);
    if (this.keepPrevious > 64) throw new Error(`${who}: keepPreviousSids ${this.keepPrevious} is above 64`);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
    if (!(this.idleTimeoutMs >= 0 && Number.isFinite(this.idleTimeoutMs)))
      throw new Error(`${who}: idleTimeoutMs must be a finite number ≥ 0, got ${this.idleTimeoutMs}`);
    if (options.keys.send.length === options.keys.receive.length) {
      let same = true;
      for (let i = 0; i < options.keys.send.length; i++)
        if (options.keys.send[i] !== options.keys.receive[i]) same = false;
      if (same)
        throw new Error(
          `${who}: keys.send and keys.receive are the same; each direction needs its own key (keys.ts deriveAnonKeys)`,
        );
    }
    const cipher = { aead: options.aead, backend: options.backend };
    this.sealer = new AnonSealer({
      ...cipher,
      keyMaterial: options.keys.send,
      firstSequence: options.firstSequence,
      lastSequence: options.lastSequence,
    });
    this.opener = new AnonOpener({
      ...cipher,
      keyMaterial: options.keys.receive,
      replayWindow: options.replayWindow,
    });
    this.generator = new SidGenerator(options.random);
    this.inUse = (hi, lo) =>
      this.registry.lookup(hi, lo) !== -1 ||
      (hi === this.currentHi && lo === this.currentLo) ||
      (hi === this.nextHi && lo === this.nextLo) ||
      (contact !== null && hi === contact.listenHi && lo === contact.listenLo);
    this.ringSize = this.keepPrevious + 2;
    this.peerHi = new Uint32Array(this.ringSize);
    this.peerLo = new Uint32Array(this.ringSize);
    this.peerGen = new Float64Array(this.ringSize).fill(-1);
    this.peerRegistered = new Uint8Array(this.ringSize);
    this.state = role === 'initiator' ? 'contacting' : 'awaiting-contact';
  }

  /**
   * An initiator: registers its first SID A (where replies arrive) and sends (A, B) — or (L, A) to a
   * server's listen SID L — until the first reply. Throws when a given SID is already in use on this host.
   */
  static initiator(options: AnonInitiatorOptions): AnonSession {
    const s = new AnonSession('initiator', options, null);
    let aHi: number;
    let aLo: number;
    if (options.firstSid !== undefined) {
      const a = checkSid('anonymity-layer initiator: firstSid', options.firstSid);
      aHi = sidHi(a);
      aLo = sidLo(a);
    } else {
      s.generator.next(s.inUse);
      aHi = s.generator.hi;
      aLo = s.generator.lo;
    }
    // A is where the responder's replies arrive: generation 0 of the peer's chain.
    s.setPeerSlot(0, aHi, aLo);
    if (!s.registerPeer(0, aHi, aLo))
      throw new Error(
        `anonymity-layer initiator: firstSid ${sidOf(aHi, aLo).toString(16)} is already in use on this host`,
      );
    if (options.listenSid !== undefined) {
      const l = checkSid('anonymity-layer initiator: listenSid', options.listenSid);
      s.currentHi = sidHi(l);
      s.currentLo = sidLo(l);
      s.nextHi = aHi;
      s.nextLo = aLo;
    } else {
      s.currentHi = aHi;
      s.currentLo = aLo;
      s.generator.next(s.inUse);
      s.nextHi = s.generator.hi;
      s.nextLo = s.generator.lo;
    }
    return s;
  }

  /**
   * A responder: waits for first contact on the initiator's first SID (given), or as a candidate of a
   * server's contact point (server mode). It cannot send before that packet arrives.
   */
  static responder(options: AnonResponderOptions): AnonSession {
    if (options.contact) {
      const s = new AnonSession('responder', options, options.contact);
      s.setPeerSlot(0, options.contact.listenHi, options.contact.listenLo);
      s.registerPeer(0, options.contact.listenHi, options.contact.listenLo);
      return s;
    }
    const s = new AnonSession('responder', options, null);
    const a = checkSid('anonymity-layer responder: firstSid', options.firstSid);
    s.setPeerSlot(0, sidHi(a), sidLo(a));
    if (!s.registerPeer(0, sidHi(a), sidLo(a)))
      throw new Error(`anonymity-layer responder: firstSid ${a.toString(16)} is already in use on this host`);
    return s;
  }

  /** True when this session can seal now. */
  get canSend(): boolean {
    return this.state === 'contacting' || this.state === 'established';
  }

  /** The own current SID (allocates). */
  get currentSid(): Sid {
    return sidOf(this.currentHi, this.currentLo);
  }

  /** The own announced next SID (allocates). */
  get nextSid(): Sid {
    return sidOf(this.nextHi, this.nextLo);
  }

  /** Highest peer generation seen as current (−1 before the first authentic packet). */
  get peerGeneration(): number {
    return this.peerTop;
  }

  /**
   * The SIDs this end accepts right now, oldest generation first (allocates; for tests and diagnostics).
   * In server mode a listen SID appears while the session is still reachable through its contact point.
   */
  acceptedSids(): Sid[] {
    const out: { gen: number; sid: Sid }[] = [];
    for (let i = 0; i < this.ringSize; i++)
      if (this.peerRegistered[i])
        out.push({ gen: this.peerGen[i]!, sid: sidOf(this.peerHi[i]!, this.peerLo[i]!) });
    return out.sort((a, b) => a.gen - b.gen).map((e) => e.sid);
  }

  /**
   * Seals one packet of this session (see AnonSealer.seal for the buffer layout: transport bytes at
   * off + ANON_HEADROOM, 16 bytes of tailroom), rotating the own SID first when it is due. Returns the
   * packet length or why nothing was sealed.
   */
  seal(
    buf: Uint8Array,
    off: number,
    transportLength: number,
    protocol: number,
    now: bigint,
  ): number | AnonSendRefusal {
    const state = this.state;
    if (state === 'closed') return 'closed';
    if (state === 'awaiting-contact') return 'not-established';
    const ms = nsToMs(now);
    if (this.idleSince(ms)) {
      this.teardown('expired');
      return 'expired';
    }
    if (Number.isNaN(this.rotatedAtMs)) this.rotatedAtMs = ms;
    if (
      this.canRotate &&
      this.packetsUnderCurrent >= this.minPacketsPerSid &&
      ((this.rotateEveryPackets !== 0 && this.packetsUnderCurrent >= this.rotateEveryPackets) ||
        (this.rotateEveryMs !== 0 && ms - this.rotatedAtMs >= this.rotateEveryMs))
    )
      this.rotate(ms);
    const n = this.sealer.seal(
      buf,
      off,
      transportLength,
      protocol,
      this.currentHi,
      this.currentLo,
      this.nextHi,
      this.nextLo,
    );
    if (n === 'sequence-exhausted') {
      if (!this.exhaustionReported) {
        this.exhaustionReported = true;
        this.emit({ type: 'sequence-exhausted', session: this });
      }
      return n;
    }
    this.packetsUnderCurrent++;
    this.lastActivityMs = ms;
    return n;
  }

  /**
   * Opens a packet the filter routed to this session: src[off, off + len) from the current SID to the tag.
   * The plaintext (next SID | protocol | transport) goes to out[outOff, …) (with 16 bytes of room behind it
   * for the tag, see AnonOpener.open) and its length is returned, or why
   * the packet was dropped. Order: the packet's SID against this session's accepted set, replay check, tag,
   * then the window, the SIDs and the state move. Never throws on packet bytes.
   */
  open(
    src: Uint8Array,
    off: number,
    len: number,
    out: Uint8Array,
    outOff: number,
    now: bigint,
  ): number | AnonSessionDrop {
    if (this.state === 'closed') return 'closed';
    if (len < ANON_MIN_LENGTH) return 'truncated';
    const ms = nsToMs(now);
    if (this.idleSince(ms)) {
      this.teardown('expired');
      return 'expired';
    }
    const slot = this.findPeer(readU32(src, off), readU32(src, off + 4));
    if (slot < 0) return 'unknown-sid';
    const n = this.opener.open(src, off, len, out, outOff);
    if (typeof n === 'string') return n;
    const gen = this.peerGen[slot]!;
    this.lastActivityMs = ms;
    if (gen > this.peerTop) this.advancePeer(gen);
    this.learnNext(gen, readU32(out, outOff), readU32(out, outOff + 4), gen === this.peerTop);
    this.afterPeerPacket(gen, ms);
    return n;
  }

  /** Time-driven work: expires the session after idleTimeoutMs without traffic. */
  tick(now: bigint): void {
    if (this.state === 'closed') return;
    const ms = nsToMs(now);
    if (this.idleSince(ms)) this.teardown('expired');
  }

  /** Tears the session down: every accepted SID unregistered, nothing sent or accepted any more. */
  close(): void {
    if (this.state !== 'closed') this.teardown('closed');
  }

  /** Replay check of a packet without changing anything (for a contact point trying its candidates). */
  check(src: Uint8Array, off: number, len: number): 'ok' | AnonOpenDrop {
    return this.opener.check(src, off, len);
  }

  /** Whether the packet's tag verifies under this session's key; changes nothing but `scratch`. */
  authentic(src: Uint8Array, off: number, len: number, scratch: Uint8Array, scratchOff: number): boolean {
    return this.opener.authentic(src, off, len, scratch, scratchOff);
  }

  private idleSince(ms: number): boolean {
    if (Number.isNaN(this.lastActivityMs)) {
      this.lastActivityMs = ms;
      return false;
    }
    return this.idleTimeoutMs !== 0 && ms - this.lastActivityMs >= this.idleTimeoutMs;
  }

  /** After an authentic packet of peer generation `gen`: the exchange's state changes. */
  private afterPeerPacket(gen: number, ms: number): void {
    if (this.state === 'contacting') {
      // The reply proves the responder has (A, B): move to B now (acknowledged), then rotate freely.
      this.state = 'established';
      this.canRotate = true;
      this.emit({ type: 'established', session: this });
      this.rotate(ms);
    } else if (this.state === 'awaiting-contact') {
      // Reply on the initiator's first SID A, or in server mode on the A it announced (L is shared).
      const replySlot = this.contact ? this.findGen(1) : this.findGen(0);
      // Server mode with the announced A refused (in use here): no SID to reply on. Stay waiting.
      if (replySlot < 0 || !this.peerRegistered[replySlot]) return;
      this.currentHi = this.peerHi[replySlot]!;
      this.currentLo = this.peerLo[replySlot]!;
      this.generator.next(this.inUse);
      this.nextHi = this.generator.hi;
      this.nextLo = this.generator.lo;
      this.rotatedAtMs = ms;
      this.state = 'established';
      this.emit({ type: 'established', session: this });
    }
    if (this.role === 'responder' && !this.canRotate && gen >= 1) {
      // The initiator moved off its first SID, so it has our reply and knows X: move to X (acknowledged).
      this.canRotate = true;
      this.rotate(ms);
    }
  }

  /** The own chain moves on: next becomes current, a fresh next is announced. */
  private rotate(ms: number): void {
    this.currentHi = this.nextHi;
    this.currentLo = this.nextLo;
    this.generator.next(this.inUse);
    this.nextHi = this.generator.hi;
    this.nextLo = this.generator.lo;
    this.ownGeneration++;
    this.packetsUnderCurrent = 0;
    this.rotatedAtMs = ms;
    if (this.onEvent)
      this.emit({ type: 'rotated', session: this, current: this.currentSid, next: this.nextSid });
  }

  /** The peer's newest current SID is now generation `gen`: forget generations older than the tolerance. */
  private advancePeer(gen: number): void {
    this.peerTop = gen;
    const oldest = gen - this.keepPrevious;
    for (let i = 0; i < this.ringSize; i++) {
      const g = this.peerGen[i]!;
      if (g >= 0 && g < oldest) {
        this.unregisterPeer(i);
        this.peerGen[i] = -1;
      }
    }
  }

  /** What a packet of generation `gen` announced as the peer's next SID. */
  private learnNext(gen: number, hi: number, lo: number, newest: boolean): void {
    const next = gen + 1;
    if (next <= this.peerKnown) {
      const slot = this.findGen(next);
      if (slot >= 0 && (this.peerHi[slot] !== hi || this.peerLo[slot] !== lo))
        this.emit({ type: 'sid-refused', session: this, sid: sidOf(hi, lo), reason: 'mismatch' });
      return;
    }
    // next = peerKnown + 1; its ring slot held generation next − ringSize, already forgotten.
    this.peerKnown = next;
    let reason: 'zero' | 'in-use' | null = null;
    if (hi === 0 && lo === 0) reason = 'zero';
    else {
      this.setPeerSlot(next, hi, lo);
      if (!this.registerPeer(next, hi, lo)) reason = 'in-use';
    }
    if (reason) this.emit({ type: 'sid-refused', session: this, sid: sidOf(hi, lo), reason });
    if (newest && gen > 0 && this.onEvent) {
      const slot = this.findGen(gen);
      this.emit({
        type: 'peer-rotated',
        session: this,
        current: sidOf(this.peerHi[slot]!, this.peerLo[slot]!),
        next: reason ? null : sidOf(hi, lo),
      });
    }
  }

  private setPeerSlot(gen: number, hi: number, lo: number): void {
    const slot = gen % this.ringSize;
    this.peerHi[slot] = hi;
    this.peerLo[slot] = lo;
    this.peerGen[slot] = gen;
    this.peerRegistered[slot] = 0;
  }

  /** Registers generation `gen` (already in its slot) with the filter; false when the SID is taken. */
  private registerPeer(gen: number, hi: number, lo: number): boolean {
    const slot = gen % this.ringSize;
    if (gen === 0 && this.contact) {
      this.contact.addCandidate(this);
      this.peerRegistered[slot] = 1;
      return true;
    }
    if (!this.registry.add(hi, lo, this.index)) return false;
    this.peerRegistered[slot] = 1;
    return true;
  }

  private unregisterPeer(slot: number): void {
    if (!this.peerRegistered[slot]) return;
    this.peerRegistered[slot] = 0;
    if (this.peerGen[slot] === 0 && this.contact) this.contact.removeCandidate(this);
    else this.registry.remove(this.peerHi[slot]!, this.peerLo[slot]!);
  }

  /** Ring slot of an accepted peer SID, or −1. */
  private findPeer(hi: number, lo: number): number {
    for (let i = 0; i < this.ringSize; i++)
      if (this.peerRegistered[i] && this.peerHi[i] === hi && this.peerLo[i] === lo) return i;
    return -1;
  }

  private findGen(gen: number): number {
    const slot = gen % this.ringSize;
    return this.peerGen[slot] === gen ? slot : -1;
  }

  private teardown(why: 'expired' | 'closed'): void {
    for (let i = 0; i < this.ringSize; i++) {
      this.unregisterPeer(i);
      this.peerGen[i] = -1;
    }
    this.state = 'closed';
    this.emit({ type: why, session: this });
  }

  private emit(event: AnonSessionEvent): void {
    this.onEvent?.(event);
  }
}
