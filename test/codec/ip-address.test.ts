import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ipv4String,
  ipv6String,
  parseIpv4,
  parseIpv6,
  readIpv4,
  writeIpv4,
  writeIpv6,
} from '../../src/codec/ip-address.js';
import { hex, junk } from '../helpers/bytes.js';

/** Eight 16-bit groups in full, for handing to an independent formatter. */
function fullForm(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(((bytes[2 * g]! << 8) | bytes[2 * g + 1]!).toString(16));
  return groups.join(':');
}

const isV4Mapped = (b: Uint8Array) =>
  b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** Byte arrays with many zero groups, so "::" placement is exercised, not just random noise. */
const ipv6Bytes = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((groups) => {
    const b = Buffer.alloc(16);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(groups[i]!, 2 * i);
    return b;
  });

describe('IPv4 text', () => {
  it('formats and parses dotted quads', () => {
    expect(ipv4String(0xc6120001)).toBe('198.18.0.1');
    expect(ipv4String(0)).toBe('0.0.0.0');
    expect(ipv4String(0xffffffff)).toBe('255.255.255.255');
    // A signed 32-bit value (what `|` produces) is the same address.
    expect(ipv4String(0xc6120001 | 0)).toBe('198.18.0.1');
    expect(parseIpv4('198.18.0.1')).toBe(0xc6120001);
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
  });

  it('refuses text that is not a four-part decimal address', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      '01.2.3.4',
      '1.2.3.-4',
      ' 1.2.3.4',
      '1.2.3.4 ',
      'a.b.c.d',
      '1..2.3',
    ])
      expect(() => parseIpv4(bad), bad).toThrow(
        `not an IPv4 address in dotted-quad form: ${JSON.stringify(bad)}`,
      );
  });

  it('round-trips every 32-bit value through text and bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (addr) => {
        expect(parseIpv4(ipv4String(addr))).toBe(addr);
        const buf = junk(6);
        writeIpv4(buf, 1, addr);
        expect(buf[0]).toBe(0xa5);
        expect(buf[5]).toBe(0xa5);
        expect(readIpv4(buf, 1)).toBe(addr);
        expect(buf.readUInt32BE(1)).toBe(addr);
      }),
    );
  });
});

describe('IPv6 text (RFC 5952)', () => {
  const cases: [string, string][] = [
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['fe800000000000000000000000000000', 'fe80::'],
    // §4.2.2: one zero group is not compressed.
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run is compressed; on a tie, the first.
    ['20010000000000010000000000000001', '2001:0:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    // §4.1: no leading zeros; §4.3: lowercase.
    ['20010db800aa0000000000000000abcd', '2001:db8:aa::abcd'],
    // §5: IPv4-mapped addresses in mixed notation.
    ['00000000000000000000ffffc6120001', '::ffff:198.18.0.1'],
    ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
  ];

  it('formats the RFC 5952 examples', () => {
    for (const [bytes, text] of cases) {
      expect(ipv6String(hex(bytes), 0)).toBe(text);
      expect(parseIpv6(text)).toEqual(hex(bytes));
    }
    // At an offset inside a larger buffer.
    expect(ipv6String(hex(`ffff ${cases[0]![0]} ffff`), 2)).toBe('2001:db8::1');
  });

  it('parses every RFC 4291 form: full, leading zeros, uppercase, "::" anywhere, embedded IPv4', () => {
    expect(parseIpv6('2001:0DB8:0000:0000:0000:0000:0000:0001')).toEqual(
      hex('20010db8000000000000000000000001'),
    );
    expect(parseIpv6('1:2:3:4:5:6:7::')).toEqual(hex('00010002000300040005000600070000'));
    expect(parseIpv6('::2:3:4:5:6:7:8')).toEqual(hex('00000002000300040005000600070008'));
    expect(parseIpv6('64:ff9b::198.18.0.1')).toEqual(hex('0064ff9b0000000000000000c6120001'));
    expect(parseIpv6('1:2:3:4:5:6:198.18.0.1')).toEqual(hex('000100020003000400050006c6120001'));
    const buf = junk(20);
    writeIpv6(buf, 2, '::1');
    expect(buf).toEqual(hex('a5a5 00000000000000000000000000000001 a5a5'));
  });

  it('refuses text that is not an IPv6 address', () => {
    const bad = [
      '',
      ':',
      ':::',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8::',
      '12345::',
      'g::',
      ':1::',
      '1.2.3.4::',
      '::1.2.3',
      '::256.0.0.1',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::1.2.3.4:5',
    ];
    for (const text of bad)
      expect(() => parseIpv6(text), text).toThrow(`not an IPv6 address: ${JSON.stringify(text)}`);
  });

  it('agrees with the WHATWG URL serializer (an independent RFC 5952 formatter) on random addresses', () => {
    fc.assert(
      fc.property(ipv6Bytes, (bytes) => {
        fc.pre(!isV4Mapped(bytes)); // the URL serializer never uses mixed notation
        expect(`[${ipv6String(bytes, 0)}]`).toBe(new URL(`http://[${fullForm(bytes)}]/`).hostname);
      }),
    );
  });

  it('round-trips any 16 bytes through text', () => {
    fc.assert(
      fc.property(ipv6Bytes, (bytes) => {
        expect(parseIpv6(ipv6String(bytes, 0))).toEqual(bytes);
        expect(parseIpv6(fullForm(bytes))).toEqual(bytes);
      }),
    );
  });
});
