/**
 * Decapsulation against damaged input, for every suite in tunnel and transport mode: every single-bit flip
 * of the ESP part, every truncation of the IP packet, and random or mutated bytes. Packets whose ESP part
 * changed must be dropped with a typed reason (never a throw), and a dropped packet must never move the
 * replay window. Suites without integrity are tested for what they can and cannot notice.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../src/codec/checksum.js';
import { type DecapDrop, decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { EspDecapStage } from '../../src/esp/esp-stages.js';
import { type EspMode, type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import {
  AUTHENTICATED_SUITES,
  espOffset,
  MODES,
  mustSeal,
  open,
  rawPacket,
  runOnce,
  saConfig,
  sadOf,
  saPair,
  UNAUTHENTICATED_SUITES,
  u32,
  udpPacket,
} from './engine-fixtures.js';

const DECAP_DROPS: readonly DecapDrop[] = [
  'not-esp',
  'truncated',
  'malformed',
  'fragment',
  'natt-keepalive',
  'unknown-spi',
  'sa-expired',
  'replayed',
  'too-old',
  'icv',
  'bad-padding',
  'dummy',
  'unexpected-next-header',
  'malformed-inner',
  'ecn-not-ect',
  'too-big',
];

const WINDOW = 64;
/** Packets 1..199 are sent; the receiver gets all but GAPS before the flips, so the window is in use. */
const SENT_BEFORE = 199;
const GAPS = new Set([192, 150]);
/**
 * The packet whose bits are flipped: seq 200 = 0b11001000, so single flips give numbers too old (72),
 * received inside the window (136), missing inside it (192: the ICV must say no) and ahead (201 …).
 */
const FLIPPED_SEQ = SENT_BEFORE + 1;

type Region = 'spi' | 'seq' | 'iv' | 'encrypted' | 'icv';

/** Which part of the ESP packet the byte at `i` belongs to. */
function regionOf(i: number, espOff: number, suite: SuiteName, length: number): Region {
  const s = SUITES[suite];
  if (i < espOff + 4) return 'spi';
  if (i < espOff + 8) return 'seq';
  if (i < espOff + 8 + s.ivLength) return 'iv';
  if (i < length - s.icvLength) return 'encrypted';
  return 'icv';
}

function flipBit(pkt: Buffer, bit: number): Buffer {
  const copy = Buffer.from(pkt);
  copy[bit >> 3]! ^= 0x80 >> (bit & 7);
  return copy;
}

/** What the RFC 4303 §3.4.3 window says about `seq` when `top` is the highest accepted and `received` the set. */
function windowVerdict(seq: number, top: number, received: Set<number>): 'too-old' | 'replayed' | 'ok' {
  if (seq === 0) return 'too-old';
  if (seq > top) return 'ok';
  if (top - seq >= WINDOW) return 'too-old';
  return received.has(seq) ? 'replayed' : 'ok';
}

describe.each(AUTHENTICATED_SUITES.flatMap((suite) => MODES.map((mode) => ({ suite, mode }))))(
  'decapsulate $suite $mode: every single-bit flip of the ESP part',
  ({ suite, mode }) => {
    it('is dropped with the reason of its region, counted, and leaves the window where it was', () => {
      const { tx, rx } = saPair(saConfig(suite, mode, { replayWindow: WINDOW }));
      const inner = udpPacket();
      const stage = new EspDecapStage([rx]);
      const received = new Set<number>();
      for (let seq = 1; seq <= SENT_BEFORE; seq++) {
        const pkt = mustSeal(tx, inner);
        if (GAPS.has(seq)) continue;
        expect(runOnce(stage, rawPacket(pkt)).emitted).toHaveLength(1);
        received.add(seq);
      }
      const target = mustSeal(tx, inner);
      const next = mustSeal(tx, inner);
      expect(u32(target, espOffset(target) + 4)).toBe(FLIPPED_SEQ);
      const espOff = espOffset(target);

      const expected: Record<string, number> = {};
      for (let bit = espOff * 8; bit < target.length * 8; bit++) {
        const region = regionOf(bit >> 3, espOff, suite, target.length);
        let reason: string;
        if (region === 'spi') reason = 'unknown-spi';
        else if (region === 'seq') {
          const seq = u32(flipBit(target, bit), espOff + 4);
          const verdict = windowVerdict(seq, SENT_BEFORE, received);
          reason = verdict === 'ok' ? 'icv' : verdict;
        } else reason = 'icv';
        const { emitted, dropped } = runOnce(stage, rawPacket(flipBit(target, bit)));
        expect({ bit, region, emitted: emitted.length, dropped }).toEqual({
          bit,
          region,
          emitted: 0,
          dropped: [reason],
        });
        expected[reason] = (expected[reason] ?? 0) + 1;
      }
      expect(stage.stats().dropped).toEqual(expected);
      // Seq flips reached all three replay verdicts and the ICV, so the model above was exercised.
      expect(Object.keys(expected).sort()).toEqual(['icv', 'replayed', 'too-old', 'unknown-spi']);
      expect([rx.replay!.topHi, rx.replay!.topLo]).toEqual([0, SENT_BEFORE]);

      // The genuine packets after all that: the next one, then the flipped one intact, then a gap.
      for (const pkt of [next, target]) {
        const { emitted, dropped } = runOnce(stage, rawPacket(pkt));
        expect(dropped).toEqual([]);
        expect(emitted.map((p) => p.data)).toEqual([inner]);
      }
      expect(runOnce(stage, rawPacket(target)).dropped).toEqual(['replayed']);
    });
  },
);

/*
 * Without integrity (the `null` suite of RFC 2410 and confidentiality-only `aes-cbc`) the receiver cannot
 * tell a changed packet from a genuine one. What it can still notice:
 *  - a changed SPI (no SA) and sequence number 0 (never sent);
 *  - padding that is not 1, 2, 3, … and a pad length that does not fit (RFC 4303 §2.4);
 *  - a Next Header the mode cannot carry (tunnel mode wants 4 or 41);
 *  - an inner IPv4 header that contradicts itself (version, IHL, total length beyond the payload).
 * What it cannot: any other change to the payload is delivered as it arrived (with null encryption bit
 * for bit; with CBC a flip in the IV flips the same bit of the first plaintext block), and a changed
 * sequence number is accepted. RFC 4303 §3.2 allows anti-replay only with integrity for this reason, so
 * each flip below goes to a fresh receiver.
 */
describe.each(UNAUTHENTICATED_SUITES.flatMap((suite) => MODES.map((mode) => ({ suite, mode }))))(
  'decapsulate $suite $mode (no integrity): single-bit flips',
  ({ suite, mode }) => {
    it('drops what the padding, Next Header and SPI reveal, and delivers undetectable flips as they are', () => {
      const config = saConfig(suite, mode, {
        iv: SUITES[suite].ivLength ? Buffer.alloc(16, 0x3c) : undefined,
      });
      const tx = new SecurityAssociation(config);
      const inner = udpPacket();
      const pkt = mustSeal(tx, inner);
      const espOff = espOffset(pkt);
      const s = SUITES[suite];
      const dataOff = espOff + 8 + s.ivLength;
      // Tunnel: the inner packet is the payload. Transport: the payload is what follows the IP header.
      const payloadStart = mode === 'tunnel' ? 0 : 20;
      const payloadLength = inner.length - payloadStart;
      const padLength = (s.blockSize - ((payloadLength + 2) % s.blockSize)) % s.blockSize;
      // The null packets' padding is 3 bytes (1 2 3), so no single flip of the pad length gives a length
      // whose bytes happen to match (0 would: it checks nothing).
      if (suite === 'null') expect(padLength).toBe(3);
      const padOff = dataOff + payloadLength;
      const trailerOff = padOff + padLength;

      for (let bit = espOff * 8; bit < pkt.length * 8; bit++) {
        const i = bit >> 3;
        const flipped = flipBit(pkt, bit);
        const rx = new SecurityAssociation(config);
        const got = open(sadOf(rx), flipped);
        // Never a throw, always a typed verdict or a packet.
        if (typeof got === 'string') expect(DECAP_DROPS).toContain(got);
        // The inner packet with the same bit flipped, as far as its (perhaps changed) total length says:
        // in tunnel mode a shorter total length leaves the rest behind as if it were TFC padding.
        const withBitFlipped = (at: number) => {
          const want = flipBit(inner, (at << 3) | (bit & 7));
          return mode === 'tunnel' ? want.subarray(0, Math.min(want.readUInt16BE(2), want.length)) : want;
        };
        const where = { bit, got };
        if (i < espOff + 4) expect(where).toEqual({ bit, got: 'unknown-spi' });
        else if (i < espOff + 8)
          expect(where).toEqual({ bit, got: u32(flipped, espOff + 4) === 0 ? 'too-old' : inner });
        else if (i < dataOff) {
          // CBC: the IV flip lands on the same bit of the first plaintext block.
          const at = payloadStart + (i - (espOff + 8));
          if (mode === 'transport' || at >= 20) expect(where).toEqual({ bit, got: withBitFlipped(at) });
          else if (typeof got !== 'string') expect(where).toEqual({ bit, got: withBitFlipped(at) });
        } else if (suite === 'null') {
          const at = payloadStart + (i - dataOff);
          if (i < padOff) {
            // Inside the inner IPv4 header (tunnel mode) a flip may make it contradict itself.
            if (mode === 'transport' || at >= 20) expect(where).toEqual({ bit, got: withBitFlipped(at) });
            else if (typeof got !== 'string') expect(where).toEqual({ bit, got: withBitFlipped(at) });
            else expect(where).toEqual({ bit, got: 'malformed-inner' });
          } else if (i <= trailerOff) expect(where).toEqual({ bit, got: 'bad-padding' });
          else if (mode === 'tunnel') expect(where).toEqual({ bit, got: 'unexpected-next-header' });
          else {
            // Transport: the Next Header becomes the rebuilt header's protocol, checksum fixed to match.
            const want = Buffer.from(inner);
            want[9] = flipped[i]!;
            want.writeUInt16BE(0, 10);
            want.writeUInt16BE(internetChecksum(want, 0, 20), 10);
            expect(where).toEqual({ bit, got: want });
          }
        }
      }
    });
  },
);

/** An ESP packet of `suite`/`mode`; with `natt`, UDP-encapsulated. */
function genuine(suite: SuiteName, mode: EspMode, natt: boolean) {
  const config = saConfig(suite, mode, natt ? { natt: { srcPort: 4500, dstPort: 4500 } } : {});
  return { pkt: mustSeal(new SecurityAssociation(config), udpPacket()), config };
}

/**
 * Runs decapsulate on pkt[0, len) with junk `fill` after it, on a fresh receiver; the result and whether
 * src stayed intact.
 */
function decapCut(config: SaConfig, pkt: Buffer, len: number, fill: number) {
  const rx = new SecurityAssociation(config);
  const src = Buffer.alloc(pkt.length + 32, fill);
  pkt.copy(src, 0, 0, len);
  const before = Buffer.from(src);
  const out = Buffer.alloc(pkt.length + 64);
  const n = decapsulate(sadOf(rx), src, 0, len, out, 0, newDecapInfo());
  return {
    result: typeof n === 'string' ? n : Buffer.from(out.subarray(0, n)),
    srcIntact: src.equals(before),
  };
}

describe.each([
  ...AUTHENTICATED_SUITES.flatMap((suite) => MODES.map((mode) => ({ suite, mode, natt: false }))),
  ...UNAUTHENTICATED_SUITES.flatMap((suite) => MODES.map((mode) => ({ suite, mode, natt: false }))),
  { suite: 'aes-gcm-16' as SuiteName, mode: 'tunnel' as EspMode, natt: true },
  { suite: 'aes-cbc-hmac-sha1-96' as SuiteName, mode: 'transport' as EspMode, natt: true },
])('decapsulate $suite $mode natt=$natt: every truncation', ({ suite, mode, natt }) => {
  const s = SUITES[suite];
  const authenticated = s.icvLength > 0;
  const udp = natt ? 8 : 0;

  it('with the IP total length left as it was: not-esp below the IP header, truncated above', () => {
    const { pkt, config } = genuine(suite, mode, natt);
    for (let cut = 0; cut <= pkt.length; cut++) {
      // The same verdict whatever follows the cut: nothing past `len` is read.
      const a = decapCut(config, pkt, cut, 0x00);
      const b = decapCut(config, pkt, cut, 0xff);
      expect({ cut, a: a.result }).toEqual({ cut, a: b.result });
      expect([a.srcIntact, b.srcIntact]).toEqual([true, true]);
      let want: string | Buffer;
      if (cut === pkt.length) want = udpPacket();
      else if (cut < 20 + udp)
        want = 'not-esp'; // with NAT-T the UDP ports are needed to call it ESP
      else want = 'truncated';
      expect({ cut, got: a.result }).toEqual({ cut, got: want });
    }
  });

  it('with the IP total length set to the cut: a typed reason, never a throw, never a packet', () => {
    const { pkt, config } = genuine(suite, mode, natt);
    // With integrity one receiver sees every cut (none may move its window); without, a shortened packet
    // can be accepted, so each cut gets a fresh one.
    const shared = new SecurityAssociation(config);
    const receiver = () => (authenticated ? shared : new SecurityAssociation(config));
    for (let cut = 0; cut <= pkt.length; cut++) {
      const cutPkt = Buffer.from(pkt.subarray(0, cut));
      if (cut >= 20) {
        cutPkt.writeUInt16BE(cut, 2);
        cutPkt.writeUInt16BE(0, 10);
        cutPkt.writeUInt16BE(internetChecksum(cutPkt, 0, 20), 10);
      }
      const got = open(sadOf(receiver()), cutPkt);
      if (cut === pkt.length) {
        expect(got).toEqual(udpPacket());
        continue;
      }
      const espLength = cut - 20 - udp;
      const dataLength = espLength - 8 - s.ivLength - s.icvLength;
      let want: string | null;
      if (cut < 20) want = 'not-esp';
      // NAT-T: fewer than 4 payload bytes cannot be told from a keepalive or IKE (RFC 3948 §2.2).
      else if (natt && espLength < 4) want = 'not-esp';
      else if (espLength < 8 || dataLength < 2) want = 'truncated';
      else if (s.blockSize === 16 && dataLength % 16 !== 0) want = 'malformed';
      else want = authenticated ? 'icv' : null;
      if (want !== null) expect({ cut, got }).toEqual({ cut, got: want });
      // Without integrity a shortened payload can look complete; it must still be a typed verdict.
      else if (typeof got === 'string') expect(DECAP_DROPS).toContain(got);
    }
  });
});

describe('decapsulate on random and mutated bytes', () => {
  // One receiver database for every authenticated suite, mode and NAT-T: each SA its own SPI.
  const cases = AUTHENTICATED_SUITES.flatMap((suite, si) =>
    MODES.flatMap((mode, mi) =>
      [false, true].map((natt, ni) => {
        const spi = 0x1000 + si * 16 + mi * 4 + ni;
        const config = saConfig(suite, mode, {
          spi,
          ...(natt ? { natt: { srcPort: 4500, dstPort: 4500 } } : {}),
        });
        const { tx, rx } = saPair(config);
        const inner = udpPacket({ id: spi });
        return { spi, rx, inner, pkt: mustSeal(tx, inner), later: mustSeal(tx, inner) };
      }),
    ),
  );
  const spis = cases.map((c) => c.spi);
  const rxs = cases.map((c) => c.rx);

  /** An IPv4 header for protocol 50 (or 17 to port 4500) with a known SPI, then random bytes. */
  const espLike = fc
    .record({
      spi: fc.constantFrom(...spis),
      natt: fc.boolean(),
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      body: fc.uint8Array({ maxLength: 160 }),
      lengthDelta: fc.integer({ min: -40, max: 8 }),
    })
    .map(({ spi, natt, seq, body, lengthDelta }) => {
      const head = natt ? 28 : 20;
      const buf = Buffer.alloc(head + 8 + body.length);
      buf[0] = 0x45;
      buf.writeUInt16BE(Math.max(0, buf.length + lengthDelta), 2);
      buf[8] = 64;
      buf[9] = natt ? 17 : 50;
      buf.writeUInt32BE(0xc6120001, 12);
      buf.writeUInt32BE(0xc6120002, 16);
      if (natt) {
        buf.writeUInt16BE(4500, 20);
        buf.writeUInt16BE(4500, 22);
        buf.writeUInt16BE(buf.length - 20, 24);
      }
      buf.writeUInt32BE(spi, head);
      buf.writeUInt32BE(seq, head + 4);
      buf.set(body, head + 8);
      return buf;
    });

  /** A genuine packet with 1 to 6 bytes changed, at least one in the ESP part, perhaps cut or extended. */
  const mutated = fc
    .record({
      which: fc.integer({ min: 0, max: cases.length - 1 }),
      espChange: fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })),
      others: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 5 }),
      resize: fc.integer({ min: -8, max: 8 }),
    })
    .map(({ which, espChange, others, resize }) => {
      const genuine = cases[which]!.pkt;
      const pkt = Buffer.from(genuine);
      for (const [at, x] of others) pkt[at % pkt.length]! ^= x;
      // Last, and against the genuine byte, so no other change can undo it (a genuine packet would be delivered).
      const espOff = espOffset(genuine);
      const at = espOff + (espChange[0] % (genuine.length - espOff));
      pkt[at] = genuine[at]! ^ espChange[1];
      if (resize < 0) return pkt.subarray(0, pkt.length + resize);
      return Buffer.concat([pkt, Buffer.alloc(resize, 0x5a)]);
    });

  const input = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
    espLike,
    mutated,
  );

  it('decapsulate never throws and never delivers for the authenticated suites', () => {
    const sad = sadOf(...rxs);
    const out = Buffer.alloc(70_000);
    const info = newDecapInfo();
    fc.assert(
      fc.property(input, fc.integer({ min: 0, max: 7 }), (pkt, outOff) => {
        const n = decapsulate(sad, pkt, 0, pkt.length, out, outOff, info);
        expect(DECAP_DROPS).toContain(n);
      }),
      { numRuns: 3000 },
    );
    for (const rx of rxs) expect([rx.replay!.topHi, rx.replay!.topLo]).toEqual([0, 0]);
  });

  it('EspDecapStage never throws, removes no layer and emits only what it passes through untouched', () => {
    const stage = new EspDecapStage(rxs);
    fc.assert(
      fc.property(input, (pkt) => {
        const { emitted } = runOnce(stage, rawPacket(pkt));
        // Only frames that are not ESP at all come out, and then exactly as they went in.
        for (const e of emitted) expect(e.data).toEqual(pkt);
      }),
      { numRuns: 3000 },
    );
    const stats = stage.stats();
    expect(stats.layersRemoved).toBe(0);
    expect(stats.packetsOut).toBe(stats.passedThrough);
    expect(stats.packetsIn).toBe(
      (stats.passedThrough as number) + Object.values(stats.dropped).reduce((a, b) => a + b, 0),
    );
    // The windows never moved: every SA still takes its genuine packets, later one first.
    for (const c of cases) {
      expect(open(sadOf(c.rx), c.later)).toEqual(c.inner);
      expect(open(sadOf(c.rx), c.pkt)).toEqual(c.inner);
    }
  });
});
