/**
 * A server's listen SID (research §4.4, mutual anonymity): one long-term session ID where clients make first
 * contact, shared by every client, so the filter cannot tell from it which session a packet belongs to.
 * Each client the server expects is a responder session (AnonSession.responder with this contact point)
 * with its own keys; a packet on the listen SID is tried against the waiting sessions' keys until one
 * opens it. That costs one replay check and at most one AEAD attempt per waiting session, for first
 * contact only: once a client moves to its ephemeral SIDs its packets go straight to its session.
 */
import type { SidRegistry } from '../filter/session-table.js';
import type { AnonContactPoint, AnonSession, AnonSessionDrop } from './session.js';
import { checkSid, type Sid, sidHi, sidLo } from './sid.js';

export interface AnonListenerOptions {
  listenSid: Sid;
  /** The host's SID filter; the listen SID is registered there under `index`. */
  registry: SidRegistry;
  index: number;
}

export class AnonListener implements AnonContactPoint {
  readonly listenSid: Sid;
  readonly listenHi: number;
  readonly listenLo: number;
  readonly index: number;
  /** The session that opened the last packet (valid after open() returned a length). */
  opened: AnonSession | null = null;
  private readonly registry: SidRegistry;
  private readonly candidates: AnonSession[] = [];
  private closed = false;

  constructor(options: AnonListenerOptions) {
    this.listenSid = checkSid('anonymity-layer listener: listenSid', options.listenSid);
    this.listenHi = sidHi(this.listenSid);
    this.listenLo = sidLo(this.listenSid);
    this.index = options.index;
    this.registry = options.registry;
    if (!this.registry.add(this.listenHi, this.listenLo, this.index))
      throw new Error(
        `anonymity-layer listener: listen SID ${this.listenSid.toString(16)} is already in use`,
      );
  }

  /** Sessions a packet on the listen SID may belong to (waiting for, or just past, first contact). */
  get waiting(): number {
    return this.candidates.length;
  }

  addCandidate(session: AnonSession): void {
    if (this.closed)
      throw new Error(`anonymity-layer listener ${this.listenSid.toString(16)}: closed, expects no sessions`);
    if (!this.candidates.includes(session)) this.candidates.push(session);
  }

  removeCandidate(session: AnonSession): void {
    const i = this.candidates.indexOf(session);
    if (i >= 0) this.candidates.splice(i, 1);
  }

  /**
   * Opens a packet that arrived on the listen SID with whichever waiting session's keys fit (see
   * AnonSession.open for the buffers). Returns the plaintext length (the session in `opened`), or:
   * 'replayed'/'too-old' when the packet is authentic for a session whose window has seen it (checked with
   * that session's key, so a stranger's packet is never called a replay), 'tag' when no waiting session's
   * key opens it, 'unknown-sid' when no session is waiting. `out` must not be `src`: a failed try may wipe
   * what it decrypted, and the next session tries the same bytes.
   */
  open(
    src: Uint8Array,
    off: number,
    len: number,
    out: Uint8Array,
    outOff: number,
    now: bigint,
  ): number | AnonSessionDrop {
    if (out === src) throw new RangeError('anonymity-layer listener: open into a buffer other than src');
    this.opened = null;
    const candidates = this.candidates;
    if (candidates.length === 0) return 'unknown-sid';
    // Backwards: a session that expires on this packet leaves the list without skipping another.
    for (let i = candidates.length - 1; i >= 0; i--) {
      const session = candidates[i]!;
      const verdict = session.check(src, off, len);
      if (verdict === 'truncated') return verdict;
      if (verdict !== 'ok') {
        if (session.authentic(src, off, len, out, outOff)) return verdict;
        continue;
      }
      const n = session.open(src, off, len, out, outOff, now);
      if (typeof n === 'number') {
        this.opened = session;
        return n;
      }
    }
    return 'tag';
  }

  /** Unregisters the listen SID and forgets the waiting sessions (they stay open; close them yourself). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.remove(this.listenHi, this.listenLo);
    this.candidates.length = 0;
  }
}
