import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyNattPayload,
  ESP_HEADER_LENGTH,
  EspRepr,
  EspView,
  NATT_PORT,
  NON_ESP_MARKER_LENGTH,
} from '../../src/codec/esp.js';
import { hex, junk } from '../helpers/bytes.js';

// Packets made once with scapy (SecurityAssociation(ESP, spi=0xa5f8, crypt_algo='AES-GCM',
// crypt_key=feffe992…cafebabe).encrypt(IP/ICMP/"pktveil", seq_num=2, iv=facedbaddecaf889)) and written to
// a raw-IPv4 pcap; readings from tshark 4.0.
// tshark: ip.proto 50, esp.spi 0x0000a5f8, esp.sequence 2.
const ESP_IN_IP = hex(`
  4500 0048 0001 0000 4032 ee5b c6120001 c6120002
  0000a5f8 00000002 facedbaddecaf889 8d10b51d51fd7a964180aa17b0f2c4d60e7e54b8fb5a511efb092c4cee08dea8d6e79352`);
// The same ESP packet inside UDP 4500 -> 4500 (RFC 3948). tshark: udp.length 60, udp.checksum 0x7e44
// [good], "UDP Encapsulation of IPsec Packets", esp.spi 0x0000a5f8, esp.sequence 2.
const ESP_IN_UDP = hex(`
  4500 0050 0001 0000 4011 ee74 c6120001 c6120002
  1194 1194 003c 7e44
  0000a5f8 00000002 facedbaddecaf8898d10b51d51fd7a964180aa17b0f2c4d60e7e54b8fb5a511efb092c4cee08dea8d6e79352`);
// tshark: "UDP Encapsulation of IPsec Packets / Non-ESP Marker", then ISAKMP (length 28).
const IKE_IN_UDP = hex(`
  4500 003c 0001 0000 4011 ee88 c6120001 c6120002
  1194 1194 0028 3ff9
  00000000 0011223344556677 0000000000000000 21202208 00000000 0000001c`);
// tshark: "UDP Encapsulation of IPsec Packets / NAT-keepalive packet".
const KEEPALIVE = hex(`
  4500 001d 0001 0000 4011 eea7 c6120001 c6120002
  1194 1194 0009 518b ff`);

const udpPayload = (frame: Buffer): [number, number] => [28, frame.readUInt16BE(24) - 8];

describe('EspView', () => {
  it('reads SPI and sequence number as tshark does, directly over IP', () => {
    const v = new EspView();
    expect(v.bind(ESP_IN_IP, 20)).toBeNull();
    expect(v.spi).toBe(0xa5f8);
    expect(v.seq).toBe(2);
    expect(v.payloadOffset).toBe(28);
    // 8-byte IV, 20 bytes of ciphertext (ICMP echo "pktveil" + pad + trailer), 16-byte ICV.
    expect(v.payloadLength).toBe(44);
    expect(ESP_IN_IP.subarray(v.payloadOffset, v.payloadOffset + 8).toString('hex')).toBe('facedbaddecaf889');
    expect(v.complete).toBe(true);
  });

  it('reads the same packet under NAT-T once the payload is classified as ESP', () => {
    const [off, len] = udpPayload(ESP_IN_UDP);
    expect(ESP_IN_UDP.readUInt16BE(22)).toBe(NATT_PORT);
    expect(classifyNattPayload(ESP_IN_UDP, off, len)).toBe('esp');
    const v = new EspView();
    expect(v.bind(ESP_IN_UDP, off, ESP_IN_UDP.length, len)).toBeNull();
    expect({ ...v.toRepr() }).toEqual({ spi: 0xa5f8, seq: 2, payloadLength: 44 });
  });

  it('gives the exact error for every truncation of the header', () => {
    const v = new EspView();
    for (let cut = 0; cut < ESP_HEADER_LENGTH; cut++) {
      expect(v.bind(ESP_IN_IP, 20, 20 + cut)).toEqual({
        layer: 'esp',
        kind: 'truncated',
        offset: 20,
        detail: `esp header needs 8 bytes, ${cut} available`,
      });
    }
    expect(v.bind(ESP_IN_IP, 20, 28, 52)).toBeNull();
    expect(v.complete).toBe(false);
    expect(v.payloadLength).toBe(44);
  });

  it('treats SPI 0 and a too-short enclosing length as malformed', () => {
    const zero = Buffer.from(ESP_IN_IP);
    zero.fill(0, 20, 24);
    const v = new EspView();
    expect(v.bind(zero, 20)).toEqual({
      layer: 'esp',
      kind: 'malformed',
      offset: 20,
      detail: 'SPI 0 is reserved and never sent on the wire',
    });
    expect(v.bind(ESP_IN_IP, 20, ESP_IN_IP.length, 7)?.detail).toBe(
      'the enclosing layer carries 7 bytes, less than the 8-byte header',
    );
  });

  it('has setters that touch only their field', () => {
    const buf = Buffer.from(ESP_IN_IP);
    const v = new EspView();
    v.bind(buf, 20);
    v.seq = 0xffffffff;
    expect(v.spi).toBe(0xa5f8);
    v.spi = 0x80000001;
    expect([v.spi, v.seq]).toEqual([0x80000001, 0xffffffff]);
    expect(buf.subarray(28)).toEqual(ESP_IN_IP.subarray(28));
  });
});

describe('EspRepr', () => {
  it('encodes into junk exactly the captured header', () => {
    const buf = junk(ESP_IN_IP.length);
    ESP_IN_IP.copy(buf, 0, 0, 20);
    ESP_IN_IP.copy(buf, 28, 28);
    expect(new EspRepr({ spi: 0xa5f8, seq: 2, payloadLength: 44 }).encodeInto(buf, 20)).toBe(8);
    expect(buf).toEqual(ESP_IN_IP);
  });

  it('refuses SPI 0', () => {
    expect(() => new EspRepr({ spi: 0, seq: 1, payloadLength: 0 }).encodeInto(Buffer.alloc(8), 0)).toThrow(
      /SPI 0/,
    );
  });

  it('round-trips any header through encode and decode', () => {
    fc.assert(
      fc.property(
        fc.record({
          spi: fc.integer({ min: 1, max: 0xffffffff }),
          seq: fc.integer({ min: 0, max: 0xffffffff }),
          payloadLength: fc.integer({ min: 0, max: 0xffff }),
        }),
        (fields) => {
          const buf = junk(8);
          expect(new EspRepr(fields).encodeInto(buf, 0)).toBe(8);
          const v = new EspView();
          expect(v.bind(buf, 0, 8, 8 + fields.payloadLength)).toBeNull();
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });

  it('never throws on random bytes', () => {
    const v = new EspView();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.integer({ min: -4, max: 30 }), (a, wire) => {
        const buf = Buffer.from(a);
        if (v.bind(buf, 0, buf.length, wire) === null) {
          expect(v.spi).not.toBe(0);
          v.toRepr();
        }
      }),
    );
  });
});

describe('classifyNattPayload', () => {
  it('classifies the captured IKE message and keepalive as tshark does', () => {
    expect(classifyNattPayload(IKE_IN_UDP, ...udpPayload(IKE_IN_UDP))).toBe('ike');
    expect(udpPayload(IKE_IN_UDP)[1]).toBe(NON_ESP_MARKER_LENGTH + 28);
    expect(classifyNattPayload(KEEPALIVE, ...udpPayload(KEEPALIVE))).toBe('keepalive');
  });

  it('says truncated when the wire or the capture holds too few bytes to tell', () => {
    expect(classifyNattPayload(KEEPALIVE, 28, 0)).toBe('truncated');
    expect(classifyNattPayload(hex('fe'), 0, 1)).toBe('truncated');
    expect(classifyNattPayload(hex('ffff'), 0, 2)).toBe('truncated');
    expect(classifyNattPayload(hex('000000'), 0, 3)).toBe('truncated');
    // The UDP header says 4+ bytes, but the capture stopped early.
    expect(classifyNattPayload(ESP_IN_UDP.subarray(0, 31), 28, 52)).toBe('truncated');
    expect(classifyNattPayload(KEEPALIVE.subarray(0, 28), 28, 1)).toBe('truncated');
    // Exactly the marker, or exactly four SPI bytes: classified; the next decoder judges the rest.
    expect(classifyNattPayload(hex('00000000'), 0, 4)).toBe('ike');
    expect(classifyNattPayload(hex('00000001'), 0, 4)).toBe('esp');
  });

  it('follows RFC 3948 §2.2 for any bytes and never throws', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 12 }),
        fc.integer({ min: 0, max: 16 }),
        fc.nat(14),
        (a, len, off) => {
          const kind = classifyNattPayload(a, off, len);
          const have = Math.min(len, a.length - off);
          if (len === 1 && have === 1 && a[off] === 0xff) expect(kind).toBe('keepalive');
          else if (len < 4 || have < 4) expect(kind).toBe('truncated');
          else expect(kind).toBe(a.subarray(off, off + 4).every((b) => b === 0) ? 'ike' : 'esp');
        },
      ),
    );
  });
});
