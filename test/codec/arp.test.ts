import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARP_FIXED_LENGTH, ArpOperation, ArpRepr, ArpView } from '../../src/codec/arp.js';
import { macString } from '../../src/codec/ethernet.js';
import { ipv4String, readIpv4 } from '../../src/codec/ip-address.js';
import { hex, junk } from '../helpers/bytes.js';
import { ARP_REPLY, ARP_REQUEST, Q9100_ARP } from './fixtures/veth-capture.js';

const ARP_OFF = 14;

describe('ArpView', () => {
  it('reads a captured request as tshark does', () => {
    const v = new ArpView();
    expect(v.bind(ARP_REQUEST, ARP_OFF)).toBeNull();
    expect([v.htype, v.ptype, v.hlen, v.plen, v.oper]).toEqual([1, 0x0800, 6, 4, ArpOperation.REQUEST]);
    expect(macString(ARP_REQUEST, v.senderHwOffset)).toBe('fa:73:38:fb:87:d9');
    expect(ipv4String(readIpv4(ARP_REQUEST, v.senderProtoOffset))).toBe('198.18.0.1');
    expect(macString(ARP_REQUEST, v.targetHwOffset)).toBe('00:00:00:00:00:00');
    expect(ipv4String(readIpv4(ARP_REQUEST, v.targetProtoOffset))).toBe('198.18.0.2');
    expect(v.length).toBe(28);
  });

  it('reads a captured reply as tshark does', () => {
    const v = new ArpView();
    expect(v.bind(ARP_REPLY, ARP_OFF)).toBeNull();
    expect(v.oper).toBe(ArpOperation.REPLY);
    expect(macString(ARP_REPLY, v.senderHwOffset)).toBe('6a:36:9a:57:6a:3e');
    expect(ipv4String(readIpv4(ARP_REPLY, v.senderProtoOffset))).toBe('198.18.0.2');
    expect(macString(ARP_REPLY, v.targetHwOffset)).toBe('fa:73:38:fb:87:d9');
    expect(ipv4String(readIpv4(ARP_REPLY, v.targetProtoOffset))).toBe('198.18.0.1');
  });

  it('reads ARP behind two VLAN tags as the same request', () => {
    const tagged = new ArpView();
    const plain = new ArpView();
    expect(tagged.bind(Q9100_ARP, 22)).toBeNull();
    expect(plain.bind(ARP_REQUEST, ARP_OFF)).toBeNull();
    expect(tagged.toRepr()).toEqual(plain.toRepr());
  });

  it('takes Ethernet padding after the addresses as not ARP', () => {
    const padded = Buffer.concat([ARP_REQUEST, Buffer.alloc(18)]);
    const v = new ArpView();
    expect(v.bind(padded, ARP_OFF)).toBeNull();
    expect(v.captured).toBe(46);
    expect(v.length).toBe(28);
  });

  it('gives the exact error for every truncation of the fixed part and of the addresses', () => {
    const v = new ArpView();
    for (let cut = 0; cut < ARP_FIXED_LENGTH; cut++) {
      expect(v.bind(ARP_REQUEST, ARP_OFF, ARP_OFF + cut)).toEqual({
        layer: 'arp',
        kind: 'truncated',
        offset: ARP_OFF,
        detail: `arp header needs 8 bytes, ${cut} available`,
      });
    }
    for (let cut = ARP_FIXED_LENGTH; cut < 28; cut++) {
      expect(v.bind(ARP_REQUEST, ARP_OFF, ARP_OFF + cut)).toEqual({
        layer: 'arp',
        kind: 'truncated',
        offset: ARP_OFF,
        detail: `arp packet with 6-byte and 4-byte addresses needs 28 bytes, ${cut} available`,
      });
    }
    expect(v.bind(ARP_REQUEST, ARP_OFF, ARP_OFF + 28)).toBeNull();
  });

  it('checks address lengths against the captured bytes, whatever they claim', () => {
    const v = new ArpView();
    const huge = hex('0001 0800 ff ff 0001 00000000');
    expect(v.bind(huge, 0)).toEqual({
      layer: 'arp',
      kind: 'truncated',
      offset: 0,
      detail: 'arp packet with 255-byte and 255-byte addresses needs 1028 bytes, 12 available',
    });
    // Zero-length addresses are legal: the packet is the fixed part alone.
    expect(v.bind(hex('0001 0800 00 00 0001'), 0)).toBeNull();
    expect(v.length).toBe(8);
    expect(v.targetProtoOffset).toBe(8);
  });

  it('rewrites fields in place', () => {
    const buf = Buffer.from(ARP_REQUEST);
    const v = new ArpView();
    v.bind(buf, ARP_OFF);
    v.oper = ArpOperation.REPLY;
    v.htype = 6;
    v.ptype = 0x86dd;
    expect(buf.subarray(ARP_OFF, ARP_OFF + 8)).toEqual(hex('0006 86dd 06 04 0002'));
  });

  it('never throws on random or mutated bytes', () => {
    const v = new ArpView();
    const mutated = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
      const m = Buffer.from(ARP_REQUEST);
      m[ARP_OFF + (i % 28)] = b;
      return m;
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        (buf) => {
          const off = Math.min(ARP_OFF, buf.length);
          if (v.bind(buf, off) === null) {
            expect(off + v.length).toBeLessThanOrEqual(buf.length);
            v.toRepr();
          }
        },
      ),
    );
  });
});

describe('ArpRepr', () => {
  const request = () =>
    new ArpRepr({
      htype: 1,
      ptype: 0x0800,
      oper: ArpOperation.REQUEST,
      senderHw: hex('fa7338fb87d9'),
      senderProto: hex('c6120001'),
      targetHw: hex('000000000000'),
      targetProto: hex('c6120002'),
    });

  it('encodes into junk exactly the captured request', () => {
    const buf = junk(ARP_REQUEST.length);
    ARP_REQUEST.copy(buf, 0, 0, ARP_OFF);
    const r = request();
    expect(r.encodedLength).toBe(28);
    expect(r.encodeInto(buf, ARP_OFF)).toBe(28);
    expect(buf).toEqual(ARP_REQUEST);
  });

  it('refuses sender and target addresses of different lengths', () => {
    const r = request();
    expect(() => new ArpRepr({ ...r, targetHw: hex('00') })).toThrow(
      'hardware addresses must have the same length',
    );
    expect(() => new ArpRepr({ ...r, targetProto: hex('00') })).toThrow(
      'protocol addresses must have the same length',
    );
  });

  it('round-trips any packet through encode and decode', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ minLength: 128, maxLength: 128 }),
        (hlen, plen, htype, ptype, oper, bytes) => {
          const b = Buffer.from(bytes);
          const fields = {
            htype,
            ptype,
            oper,
            senderHw: b.subarray(0, hlen),
            senderProto: b.subarray(32, 32 + plen),
            targetHw: b.subarray(64, 64 + hlen),
            targetProto: b.subarray(96, 96 + plen),
          };
          const r = new ArpRepr(fields);
          const buf = junk(r.encodedLength);
          expect(r.encodeInto(buf, 0)).toBe(8 + 2 * (hlen + plen));
          const v = new ArpView();
          expect(v.bind(buf, 0)).toBeNull();
          expect({ ...v.toRepr() }).toEqual(fields);
        },
      ),
    );
  });
});
