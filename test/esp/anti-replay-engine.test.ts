/**
 * Anti-replay as the engine applies it (RFC 4303 §3.4.3, Appendix A): packets made by `encapsulate` and
 * judged by `decapsulate`, so the window, the inferred high half of ESN and the ICV work together. The
 * window alone is tested in replay-window.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { type DecapDrop, newDecapInfo } from '../../src/esp/decapsulate.js';
import { type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import type { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import { espOffset, mustSeal, open, saConfig, sadOf, udpPacket } from './engine-fixtures.js';

const SUITES_TESTED: SuiteName[] = ['aes-gcm-16', 'aes-cbc-hmac-sha256-128', 'null-hmac-sha256-128'];
const WINDOW_SIZES = [32, 64, 1024, 4096];
const TWO_32 = 0x1_0000_0000;

/** A sender's packets by sequence number and one receiver, from the same SA config. */
class Link {
  readonly config: SaConfig;
  readonly rx: SecurityAssociation;
  readonly sad: SecurityAssociationDatabase;
  readonly inner = udpPacket();
  private readonly sent = new Map<number, Buffer>();

  constructor(suite: SuiteName, overrides: Partial<SaConfig>) {
    this.config = saConfig(suite, 'tunnel', overrides);
    this.rx = new SecurityAssociation(this.config);
    this.sad = sadOf(this.rx);
  }

  /** Packets with sequence numbers first, first+1, … first+count−1 (a sender SA starting at `first`). */
  send(first: number, count: number): void {
    const tx = new SecurityAssociation({ ...this.config, seq: BigInt(first) });
    for (let i = 0; i < count; i++) this.sent.set(first + i, mustSeal(tx, this.inner));
  }

  packet(seq: number): Buffer {
    const pkt = this.sent.get(seq);
    if (!pkt) throw new Error(`test bug: packet ${seq} was not sent`);
    return pkt;
  }

  /** 'ok' when the inner packet came out intact, else the drop reason. */
  receive(seq: number): 'ok' | DecapDrop | 'wrong-bytes' {
    return this.judge(this.packet(seq));
  }

  judge(pkt: Uint8Array): 'ok' | DecapDrop | 'wrong-bytes' {
    const info = newDecapInfo();
    const got = open(this.sad, pkt, info);
    if (typeof got === 'string') return got;
    return got.equals(this.inner) ? 'ok' : 'wrong-bytes';
  }

  get top(): [number, number] {
    return [this.rx.replay!.topHi, this.rx.replay!.topLo];
  }
}

describe.each(SUITES_TESTED.flatMap((suite) => WINDOW_SIZES.map((window) => ({ suite, window }))))(
  'anti-replay through the engine: $suite, window $window',
  ({ suite, window }) => {
    it('refuses duplicates as replayed, the newest and older ones alike', () => {
      const link = new Link(suite, { replayWindow: window });
      link.send(1, 10);
      for (let seq = 1; seq <= 10; seq++) expect([seq, link.receive(seq)]).toEqual([seq, 'ok']);
      for (const seq of [10, 1, 5, 10]) expect([seq, link.receive(seq)]).toEqual([seq, 'replayed']);
      expect(link.top).toEqual([0, 10]);
    });

    it('refuses numbers left of the window as too-old, and takes the left edge', () => {
      const link = new Link(suite, { replayWindow: window });
      const top = window + 10;
      link.send(1, top);
      expect(link.receive(top)).toBe('ok');
      expect(link.receive(top - window)).toBe('too-old');
      expect(link.receive(1)).toBe('too-old');
      expect(link.receive(top - window + 1)).toBe('ok');
      expect(link.receive(top - 1)).toBe('ok');
      expect(link.receive(top - window)).toBe('too-old');
      expect(link.top).toEqual([0, top]);
    });

    it('accepts packets reordered within the window, then knows every one of them', () => {
      const link = new Link(suite, { replayWindow: window });
      const total = 3 * window;
      link.send(1, total);
      // Blocks of `window` packets delivered newest first: each arrives at most window − 1 behind the top.
      for (let block = 0; block < 3; block++)
        for (let seq = (block + 1) * window; seq > block * window; seq--)
          expect([seq, link.receive(seq)]).toEqual([seq, 'ok']);
      expect(link.top).toEqual([0, total]);
      for (let seq = 1; seq <= total; seq++)
        expect([seq, link.receive(seq)]).toEqual([seq, total - seq < window ? 'replayed' : 'too-old']);
    });

    it('accepts a jump of 2^20 forward, after which the old numbers are too old', () => {
      const link = new Link(suite, { replayWindow: window });
      const jump = 11 + 2 ** 20;
      link.send(1, 10);
      link.send(jump - window, window + 2);
      for (let seq = 1; seq <= 5; seq++) expect(link.receive(seq)).toBe('ok');
      expect(link.receive(jump)).toBe('ok');
      expect(link.top).toEqual([0, jump]);
      for (let seq = 6; seq <= 10; seq++) expect([seq, link.receive(seq)]).toEqual([seq, 'too-old']);
      expect(link.receive(jump - window)).toBe('too-old');
      expect(link.receive(jump - window + 1)).toBe('ok');
      expect(link.receive(jump + 1)).toBe('ok');
      expect(link.receive(jump)).toBe('replayed');
    });

    it('drops a forged far-future packet as icv without moving the window', () => {
      const link = new Link(suite, { replayWindow: window });
      const top = window + 20;
      const justInside = top - window + 1;
      link.send(1, top + 2);
      for (let seq = 1; seq <= top; seq++) if (seq !== justInside) expect(link.receive(seq)).toBe('ok');
      // A genuine packet with its sequence number moved far ahead and its ICV replaced by garbage.
      const forged = Buffer.from(link.packet(top + 1));
      forged.writeUInt32BE(top + 1_000_000, espOffset(forged) + 4);
      forged.fill(0x5c, forged.length - SUITES[suite].icvLength);
      expect(link.judge(forged)).toBe('icv');
      // The same far-ahead number with the genuine ICV: the number is authenticated too.
      const renumbered = Buffer.from(link.packet(top + 1));
      renumbered.writeUInt32BE(top + 1_000_000, espOffset(renumbered) + 4);
      expect(link.judge(renumbered)).toBe('icv');
      expect(link.top).toEqual([0, top]);
      expect(link.receive(justInside)).toBe('ok');
      expect(link.receive(top + 1)).toBe('ok');
      expect(link.receive(top + 2)).toBe('ok');
    });
  },
);

describe.each(SUITES_TESTED)('anti-replay with ESN through the engine: %s', (suite) => {
  // The receiver starts at 0 like any new SA. Appendix A infers numbers up to 2^32 − W ahead of the top,
  // so a first packet at 2^32 − 50 would be read as −50 (too old); one at 2^32 − 10000 brings the window
  // close enough to the boundary for every size tested.
  const PRIME = TWO_32 - 10_000;
  const FIRST = TWO_32 - 50;
  const COUNT = 96;
  const BLOCK = 8;

  function esnLink(window: number): Link {
    const link = new Link(suite, { replayWindow: window, esn: true });
    link.send(PRIME, 1);
    link.send(FIRST, COUNT);
    expect(link.receive(PRIME)).toBe('ok');
    return link;
  }

  it.each(WINDOW_SIZES)(
    'crosses 2^32 with packets reordered across it (window %i), inferring the high half each time',
    (window) => {
      const link = esnLink(window);
      // Blocks of 8 newest first; the seventh holds 2^32 − 2 … 2^32 + 5, so 2^32 + 5 … 2^32 arrive before
      // 2^32 − 1 and 2^32 − 2, which the receiver must then place in the epoch before.
      const info = newDecapInfo();
      for (let block = 0; block < COUNT / BLOCK; block++) {
        for (let i = BLOCK - 1; i >= 0; i--) {
          const seq = FIRST + block * BLOCK + i;
          const got = open(link.sad, link.packet(seq), info);
          expect([seq, got]).toEqual([seq, link.inner]);
          expect([info.seqHi, info.seqLo]).toEqual([Math.floor(seq / TWO_32), seq % TWO_32]);
        }
      }
      const last = FIRST + COUNT - 1;
      expect(link.top).toEqual([1, last - TWO_32]);
      // Inside the window a second copy is replayed. Left of it, Appendix A reads the low half as a number
      // in the next epoch (far ahead), so it passes the window and the ICV, computed by the sender with the
      // real high half, refuses it.
      for (const seq of [PRIME, TWO_32 - 2, TWO_32 - 1, TWO_32, TWO_32 + 1, last])
        expect([seq, link.receive(seq)]).toEqual([seq, last - seq < window ? 'replayed' : 'icv']);
      expect(link.top).toEqual([1, last - TWO_32]);
    },
  );

  it('reads a first packet at 2^32 − 50 as −50 on a fresh receiver: too-old, as Appendix A says', () => {
    const link = new Link(suite, { replayWindow: 64, esn: true });
    link.send(FIRST, 1);
    expect(link.receive(FIRST)).toBe('too-old');
    expect(link.top).toEqual([0, 0]);
  });

  it('drops a forged packet in the next epoch as icv without moving the window', () => {
    const link = esnLink(64);
    for (let seq = FIRST; seq < TWO_32 - 2; seq++) expect(link.receive(seq)).toBe('ok');
    // Low half 5 is read as 2^32 + 5 (Appendix A: ahead, next epoch); the garbage ICV must stop it there.
    const forged = Buffer.from(link.packet(TWO_32 + 5));
    forged.fill(0xa7, forged.length - SUITES[suite].icvLength);
    expect(link.judge(forged)).toBe('icv');
    expect(link.top).toEqual([0, TWO_32 - 3]);
    for (const seq of [TWO_32 - 2, TWO_32 - 1, TWO_32, TWO_32 + 5])
      expect([seq, link.receive(seq)]).toEqual([seq, 'ok']);
    expect(link.top).toEqual([1, 5]);
  });
});
