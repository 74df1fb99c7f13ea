import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import { UDP_HEADER_LENGTH, UdpRepr, UdpView } from '../../src/codec/udp.js';
import { hex, junk } from '../helpers/bytes.js';

// A real frame: UDP 198.18.0.1:40000 -> 198.18.0.2:5353 "pktveil", captured on a veth between two
// namespaces with tx checksum offload off. tshark: udp.length 15, udp.checksum 0x0c33 [good].
const FRAME = hex(`
  a2da45295ec8 0e2fdfd27da7 0800
  4500 0023 d53a 4000 4011 d967 c6120001 c6120002
  9c40 14e9 000f 0c33 706b747665696c`);
const IP_OFF = 14;
const UDP_OFF = 34;
const pseudo = (buf: Buffer, udpLength: number) => ipv4PseudoHeaderSum(buf, IP_OFF, 17, udpLength);

describe('UdpView', () => {
  it('reads every field of a captured datagram as tshark does', () => {
    const v = new UdpView();
    expect(v.bind(FRAME, UDP_OFF)).toBeNull();
    expect(v.srcPort).toBe(40000);
    expect(v.dstPort).toBe(5353);
    expect(v.length).toBe(15);
    expect(v.checksum).toBe(0x0c33);
    expect(v.payloadLength).toBe(7);
    expect(FRAME.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength).toString()).toBe('pktveil');
    expect(v.checksumOk(pseudo(FRAME, 15))).toBe(true);
  });

  it('gives the exact error for every truncation of the header', () => {
    const v = new UdpView();
    for (let cut = 0; cut < UDP_HEADER_LENGTH; cut++) {
      expect(v.bind(FRAME, UDP_OFF, UDP_OFF + cut)).toEqual({
        layer: 'udp',
        kind: 'truncated',
        offset: UDP_OFF,
        detail: `udp header needs 8 bytes, ${cut} available`,
      });
    }
    // A header that is whole but a payload cut short is a truncated capture, not an error.
    expect(v.bind(FRAME, UDP_OFF, UDP_OFF + 8, 15)).toBeNull();
    expect(v.complete).toBe(false);
    expect(v.checksumOk(pseudo(FRAME, 15))).toBeNull();
  });

  it('reports a length field that contradicts the header or the IP layer', () => {
    const v = new UdpView();
    const short = Buffer.from(FRAME);
    short.writeUInt16BE(7, UDP_OFF + 4);
    expect(v.bind(short, UDP_OFF)).toMatchObject({ layer: 'udp', kind: 'malformed', offset: UDP_OFF });
    expect(v.bind(FRAME, UDP_OFF, FRAME.length, 12)?.detail).toBe(
      'length field 15 exceeds the 12 bytes the IP layer carries',
    );
  });

  it('judges checksums: flipped bit is bad, zero is "none"', () => {
    const v = new UdpView();
    const bad = Buffer.from(FRAME);
    bad[bad.length - 1]! ^= 1;
    v.bind(bad, UDP_OFF);
    expect(v.checksumOk(pseudo(bad, 15))).toBe(false);
    v.checksum = 0;
    expect(v.checksumOk(pseudo(bad, 15))).toBeNull();
  });
});

describe('UdpRepr', () => {
  it('encodes into junk exactly the captured header, checksum computed', () => {
    const buf = junk(FRAME.length);
    FRAME.copy(buf, 0, 0, UDP_OFF); // IP header for the pseudo-header
    FRAME.copy(buf, UDP_OFF + 8, UDP_OFF + 8); // payload
    const r = new UdpRepr({ srcPort: 40000, dstPort: 5353, payloadLength: 7 });
    expect(r.encodeInto(buf, UDP_OFF, pseudo(buf, 15))).toBe(8);
    expect(buf).toEqual(FRAME);
  });

  it('sends a computed zero checksum as 0xffff', () => {
    // Choose a payload word that makes the one's-complement sum 0xffff, so the checksum folds to 0.
    const buf = Buffer.alloc(10);
    const r = new UdpRepr({ srcPort: 1, dstPort: 2, payloadLength: 2 });
    r.encodeInto(buf, 0, 0);
    const v = new UdpView();
    v.bind(buf, 0);
    const sumWithoutPayload = 1 + 2 + 10; // ports and length; checksum and payload zero
    buf.writeUInt16BE(0xffff - sumWithoutPayload, 8);
    r.encodeInto(buf, 0, 0);
    expect(v.checksum).toBe(0xffff);
    expect(v.checksumOk(0)).toBe(true);
  });

  it('round-trips any header through encode and decode', () => {
    fc.assert(
      fc.property(
        fc.record({
          srcPort: fc.integer({ min: 0, max: 0xffff }),
          dstPort: fc.integer({ min: 0, max: 0xffff }),
          payloadLength: fc.integer({ min: 0, max: 0xffff - 8 }),
          checksum: fc.integer({ min: 0, max: 0xffff }),
        }),
        (fields) => {
          const buf = junk(8);
          new UdpRepr(fields).encodeInto(buf, 0);
          const v = new UdpView();
          expect(v.bind(buf, 0, 8, 8 + fields.payloadLength)).toBeNull();
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });

  it('never throws on random or mutated bytes', () => {
    const v = new UdpView();
    const mutated = fc
      .tuple(fc.integer({ min: 0, max: FRAME.length - 1 }), fc.integer({ min: 0, max: 255 }))
      .map(([i, b]) => {
        const m = Buffer.from(FRAME);
        m[i] = b;
        return m;
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        (buf) => {
          const off = Math.min(UDP_OFF, buf.length);
          if (v.bind(buf, off) === null) {
            v.toRepr();
            v.checksumOk(0);
          }
        },
      ),
    );
  });
});
