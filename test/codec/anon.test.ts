import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ANON_DEFAULT_PROTOCOL,
  ANON_MIN_LENGTH,
  AnonRepr,
  AnonSealedRepr,
  AnonSealedView,
  AnonView,
} from '../../src/codec/anon.js';
import { hex, junk } from '../helpers/bytes.js';

// An anonymity-layer packet over IPv4, written field by field from DESIGN.md §6. The IPv4 source is the
// subnet's broadcast address (198.18.0.255), as the broadcast anonymity scheme sends it.
const IP_OFF = 0;
const ANON_OFF = 20;
const PACKET = hex(`
  4500 0045 0000 4000 40 fd 0000 c61200ff c6120002
  0011223344556677
  0000000000000001
  a1a2a3a4a5a6a7a8 a9 b0b1b2b3b4b5b6b7
  c0c1c2c3c4c5c6c7c8c9cacbcccdcecf`);

// The shortest valid packet: clear part, a sealed header with no transport bytes, the tag.
const MINIMAL = hex(`
  fedcba9876543210
  ffffffff00000002
  a1a2a3a4a5a6a7a8 a9
  c0c1c2c3c4c5c6c7c8c9cacbcccdcecf`);

describe('AnonView', () => {
  it('reads the clear header without BigInt on the fast path, and in slow forms', () => {
    expect(PACKET[IP_OFF + 9]).toBe(ANON_DEFAULT_PROTOCOL);
    const v = new AnonView();
    expect(v.bind(PACKET, ANON_OFF, PACKET.length, PACKET.readUInt16BE(2) - 20)).toBeNull();
    expect([v.sidHi, v.sidLo]).toEqual([0x00112233, 0x44556677]);
    expect(v.currentSidHex).toBe('0011223344556677');
    expect(v.currentSid).toBe(0x0011223344556677n);
    expect([v.sequenceHi, v.sequenceLo]).toEqual([0, 1]);
    expect(v.sequence).toBe(1n);
    expect(v.headerLength).toBe(16);
    expect(v.payloadOffset).toBe(ANON_OFF + 16);
    expect(v.payloadLength).toBe(33);
    expect(v.sealedOffset).toBe(ANON_OFF + 16);
    expect(v.sealedLength).toBe(17);
    expect(v.tagOffset).toBe(PACKET.length - 16);
    expect(PACKET.subarray(v.tagOffset).toString('hex')).toBe('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf');
    expect(v.complete).toBe(true);
  });

  it('reads SIDs and sequences with the top bit set as unsigned', () => {
    const v = new AnonView();
    expect(v.bind(MINIMAL, 0)).toBeNull();
    expect([v.sidHi, v.sidLo]).toEqual([0xfedcba98, 0x76543210]);
    expect(v.currentSid).toBe(0xfedcba9876543210n);
    expect(v.currentSidHex).toBe('fedcba9876543210');
    expect([v.sequenceHi, v.sequenceLo]).toEqual([0xffffffff, 2]);
    expect(v.sequence).toBe(0xffffffff00000002n);
    expect(v.sealedLength).toBe(9);
  });

  it('says which part is missing for every length below the minimum', () => {
    const v = new AnonView();
    const part = (n: number): [number, string] =>
      n < 8
        ? [8, 'current session ID']
        : n < 16
          ? [16, 'sequence number']
          : n < 25
            ? [25, 'sealed next session ID and protocol']
            : [41, 'authentication tag'];
    for (let cut = 0; cut < ANON_MIN_LENGTH; cut++) {
      const [need, what] = part(cut);
      expect(v.bind(MINIMAL, 0, cut)).toEqual({
        layer: 'anon',
        kind: 'truncated',
        offset: 0,
        detail: `anon ${what} needs ${need} bytes, ${cut} available`,
      });
    }
    expect(v.bind(MINIMAL, 0, ANON_MIN_LENGTH)).toBeNull();
  });

  it('binds a capture cut short after the clear part, for the filter', () => {
    const v = new AnonView();
    for (let cut = 16; cut < 49; cut++) {
      expect(v.bind(PACKET, ANON_OFF, ANON_OFF + cut, 49)).toBeNull();
      expect(v.complete).toBe(false);
      expect(v.currentSidHex).toBe('0011223344556677');
      expect(v.tagOffset).toBe(ANON_OFF + 33);
    }
    expect(v.bind(PACKET, ANON_OFF, ANON_OFF + 12, 49)?.detail).toBe(
      'anon sequence number needs 16 bytes, 12 available',
    );
  });

  it('has setters that touch only their field', () => {
    const buf = Buffer.from(MINIMAL);
    const v = new AnonView();
    v.bind(buf, 0);
    v.sidLo = 1;
    expect(v.currentSidHex).toBe('fedcba9800000001');
    v.sidHi = 0;
    v.sequenceLo = 0xffffffff;
    v.sequenceHi = 7;
    expect([v.currentSid, v.sequence]).toEqual([1n, 0x7ffffffffn]);
    v.currentSid = 0xfedcba9876543210n;
    v.sequence = 0xffffffff00000002n;
    expect(buf).toEqual(MINIMAL);
    expect(() => {
      v.sequence = 1n << 64n;
    }).toThrow(RangeError);
  });
});

describe('AnonRepr', () => {
  it('encodes into junk exactly the hand-built clear header', () => {
    const buf = junk(PACKET.length);
    PACKET.copy(buf, 0, 0, ANON_OFF);
    PACKET.copy(buf, ANON_OFF + 16, ANON_OFF + 16);
    const r = new AnonRepr({ currentSid: 0x0011223344556677n, sequence: 1n, payloadLength: 33 });
    expect(r.encodedLength).toBe(16);
    expect(r.encodeInto(buf, ANON_OFF)).toBe(16);
    expect(buf).toEqual(PACKET);
  });

  it('refuses values that do not fit, saying what to change', () => {
    const buf = Buffer.alloc(16);
    expect(() =>
      new AnonRepr({ currentSid: -1n, sequence: 0n, payloadLength: 25 }).encodeInto(buf, 0),
    ).toThrow(/currentSid must be an unsigned 64-bit value/);
    expect(() =>
      new AnonRepr({ currentSid: 0n, sequence: 1n << 64n, payloadLength: 25 }).encodeInto(buf, 0),
    ).toThrow(/sequence/);
    expect(() =>
      new AnonRepr({ currentSid: 0n, sequence: 0n, payloadLength: 24 }).encodeInto(buf, 0),
    ).toThrow(/at least 25/);
  });

  it('round-trips any header through encode and decode', () => {
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(
        fc.record({ currentSid: u64, sequence: u64, payloadLength: fc.integer({ min: 25, max: 1500 }) }),
        (fields) => {
          const buf = junk(16);
          new AnonRepr(fields).encodeInto(buf, 0);
          const v = new AnonView();
          expect(v.bind(buf, 0, 16, 16 + fields.payloadLength)).toBeNull();
          expect({ ...v.toRepr() }).toEqual(fields);
          expect(v.sidHi * 2 ** 32 + v.sidLo).toBe(Number(fields.currentSid));
          expect(v.currentSidHex).toBe(fields.currentSid.toString(16).padStart(16, '0'));
        },
      ),
    );
  });

  it('never throws on random bytes', () => {
    const v = new AnonView();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.integer({ min: 0, max: 80 }), (a, wire) => {
        const buf = Buffer.from(a);
        if (v.bind(buf, 0, buf.length, wire) === null) {
          v.toRepr();
          expect(v.sealedLength).toBeGreaterThanOrEqual(9);
          expect(v.currentSidHex).toHaveLength(16);
        }
      }),
    );
  });
});

describe('AnonSealedView and AnonSealedRepr (the opened sealed part)', () => {
  const PLAIN = hex('8899aabbccddeeff 11 9c40 14e9 000f 0000 706b747665696c');

  it('read next SID, protocol and the transport offset', () => {
    const v = new AnonSealedView();
    expect(v.bind(PLAIN, 0)).toBeNull();
    expect([v.nextSidHi, v.nextSidLo]).toEqual([0x8899aabb, 0xccddeeff]);
    expect(v.nextSid).toBe(0x8899aabbccddeeffn);
    expect(v.nextSidHex).toBe('8899aabbccddeeff');
    expect(v.protocol).toBe(17);
    expect(v.transportOffset).toBe(9);
    expect(v.transportLength).toBe(15);
  });

  it('give the exact error for every truncation', () => {
    const v = new AnonSealedView();
    for (let cut = 0; cut < 9; cut++) {
      expect(v.bind(PLAIN, 0, cut)).toEqual({
        layer: 'anon',
        kind: 'truncated',
        offset: 0,
        detail: `anon opened next session ID and protocol needs 9 bytes, ${cut} available`,
      });
    }
  });

  it('encode into junk and round-trip', () => {
    const buf = junk(PLAIN.length);
    PLAIN.copy(buf, 9, 9);
    expect(new AnonSealedRepr({ nextSid: 0x8899aabbccddeeffn, protocol: 17 }).encodeInto(buf, 0)).toBe(9);
    expect(buf).toEqual(PLAIN);
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 255 }),
        (nextSid, protocol) => {
          const b = junk(9);
          new AnonSealedRepr({ nextSid, protocol }).encodeInto(b, 0);
          const v = new AnonSealedView();
          expect(v.bind(b, 0)).toBeNull();
          expect({ ...v.toRepr() }).toEqual({ nextSid, protocol });
        },
      ),
    );
  });
});
