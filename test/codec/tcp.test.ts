import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4PseudoHeaderSum } from '../../src/codec/checksum.js';
import {
  TCP_HEADER_LENGTH,
  TCP_OPTION_END,
  TCP_OPTION_MALFORMED,
  TcpFlags,
  type TcpOption,
  TcpOptionKind,
  TcpRepr,
  TcpView,
} from '../../src/codec/tcp.js';
import { hex, junk } from '../helpers/bytes.js';

// Real frames from a Linux kernel TCP transfer 198.18.1.1:43888 -> 198.18.2.1:5001 through a router
// namespace, captured on the receiver's veth with tx checksum offload off on every veth. The SACK came
// from briefly turning off forwarding on the router mid-transfer. Readings from
// `tshark -o tcp.check_checksum:TRUE -o tcp.relative_sequence_numbers:FALSE -T fields ...`.
const ETH = 14;
const TCP_OFF = 34;

// Frame 1, SYN. tshark: srcport 43888 dstport 5001 seq 3718648047 ack 0 hdr_len 40 flags 0x0002
// window 64240 checksum 0x48e7 [good] urgent 0, options 020405b40402080a0998bdd6000000000103030a:
// MSS=1460 SACK_PERM TSval=161005014 TSecr=0 NOP WS=1024 (shift 10).
const SYN = hex(`
  9685a5aad71a e6db1d099456 0800
  4500 003c 3ee7 4000 3f06 6dae c6120101 c6120201
  ab70 1389 dda610ef 00000000 a002 faf0 48e7 0000
  020405b4 0402 080a0998bdd600000000 01 03030a`);

// Frame 14, PSH+ACK with 760 bytes of "pktveil!". tshark: seq 3718655288 ack 1303473625 hdr_len 32
// flags 0x0018 window 63 checksum 0x9a7b [good] len 760, options 0101080a0998bdd6c4508661
// (NOP NOP TSval=161005014 TSecr=3293611617).
const DATA = Buffer.concat([
  hex(`
  9685a5aad71a e6db1d099456 0800
  4500 032c 3eee 4000 3f06 6ab7 c6120101 c6120201
  ab70 1389 dda62d38 4db16dd9 8018 003f 9a7b 0000
  0101 080a0998bdd6c4508661`),
  Buffer.from('pktveil!'.repeat(95)),
]);

// Frame 1151, duplicate ACK with SACK. tshark: srcport 5001 dstport 43888 seq 1303473625 ack 3719928048
// hdr_len 44 flags 0x0010 window 108 checksum 0x7ac9 [good], options
// 0101080ac45087210998be930101050addb9b830ddb9bdd8: NOP NOP TSval=3293611809 TSecr=161005203 NOP NOP
// SACK SLE=3719936048 SRE=3719937496.
const SACK = hex(`
  e6db1d099456 9685a5aad71a 0800
  4500 0040 bb12 4000 4006 f07e c6120201 c6120101
  1389 ab70 4db16dd9 ddb998f0 b010 006c 7ac9 0000
  0101 080ac45087210998be93 0101 050addb9b830ddb9bdd8`);

// Frame 2150, FIN+ACK. tshark: seq 3721048048 ack 1303473625 hdr_len 32 flags 0x0011 window 63
// checksum 0xca30 [good] len 0.
const FIN = hex(`
  9685a5aad71a e6db1d099456 0800
  4500 0034 45fd 4000 3f06 66a0 c6120101 c6120201
  ab70 1389 ddcaaff0 4db16dd9 8011 003f ca30 0000
  0101 080a0998bf39c45087c3`);

const tcpLength = (frame: Buffer) => frame.readUInt16BE(ETH + 2) - 20;
const pseudo = (frame: Buffer) => ipv4PseudoHeaderSum(frame, ETH, 6, tcpLength(frame));
const bound = (frame: Buffer): TcpView => {
  const v = new TcpView();
  expect(v.bind(frame, TCP_OFF, frame.length, tcpLength(frame))).toBeNull();
  return v;
};

describe('TcpView on real kernel segments', () => {
  it('reads the SYN as tshark does, options through the iterator', () => {
    const v = bound(SYN);
    expect(v.srcPort).toBe(43888);
    expect(v.dstPort).toBe(5001);
    expect(v.seq).toBe(3718648047);
    expect(v.ack).toBe(0);
    expect(v.dataOffset).toBe(10);
    expect(v.headerLength).toBe(40);
    expect(v.flags).toBe(TcpFlags.SYN);
    expect(v.window).toBe(64240);
    expect(v.checksum).toBe(0x48e7);
    expect(v.urgent).toBe(0);
    expect(v.payloadLength).toBe(0);
    expect(v.complete).toBe(true);
    expect(v.checksumOk(pseudo(SYN))).toBe(true);
    expect(v.checkOptions()).toBeNull();
    expect(SYN.subarray(v.optionsOffset, v.optionsOffset + v.optionsLength).toString('hex')).toBe(
      '020405b40402080a0998bdd6000000000103030a',
    );

    const seen: Array<[number, number, number]> = [];
    for (let k = v.firstOption(); k !== TCP_OPTION_END; k = v.nextOption()) {
      seen.push([k, v.optOffset - TCP_OFF, v.optLength]);
      if (k === TcpOptionKind.MSS) expect(v.optMss).toBe(1460);
      if (k === TcpOptionKind.WINDOW_SCALE) expect(v.optWindowShift).toBe(10);
      if (k === TcpOptionKind.TIMESTAMPS) expect([v.optTsval, v.optTsecr]).toEqual([161005014, 0]);
    }
    expect(seen).toEqual([
      [2, 20, 4],
      [4, 24, 2],
      [8, 26, 10],
      [1, 36, 1],
      [3, 37, 3],
    ]);
    expect(v.toRepr().options).toEqual([
      { type: 'mss', mss: 1460 },
      { type: 'sackPermitted' },
      { type: 'timestamps', tsval: 161005014, tsecr: 0 },
      { type: 'nop' },
      { type: 'windowScale', shift: 10 },
    ]);
  });

  it('reads a data segment and its payload', () => {
    const v = bound(DATA);
    expect([v.seq, v.ack, v.flags, v.window, v.checksum]).toEqual([
      3718655288,
      1303473625,
      TcpFlags.PSH | TcpFlags.ACK,
      63,
      0x9a7b,
    ]);
    expect(v.headerLength).toBe(32);
    expect(v.payloadOffset).toBe(TCP_OFF + 32);
    expect(v.payloadLength).toBe(760);
    expect(DATA.subarray(v.payloadOffset, v.payloadOffset + 16).toString()).toBe('pktveil!pktveil!');
    expect(v.checksumOk(pseudo(DATA))).toBe(true);
    expect(v.findOption(TcpOptionKind.TIMESTAMPS)).toBe(true);
    expect([v.optTsval, v.optTsecr]).toEqual([161005014, 3293611617]);
    expect(v.findOption(TcpOptionKind.SACK)).toBe(false);
  });

  it('reads the SACK blocks of a duplicate ACK', () => {
    const v = bound(SACK);
    expect([v.srcPort, v.dstPort, v.seq, v.ack, v.flags, v.window]).toEqual([
      5001,
      43888,
      1303473625,
      3719928048,
      TcpFlags.ACK,
      108,
    ]);
    expect(v.headerLength).toBe(44);
    expect(v.checksumOk(pseudo(SACK))).toBe(true);
    expect(v.findOption(TcpOptionKind.SACK)).toBe(true);
    expect(v.optSackBlocks).toBe(1);
    expect([v.optSackLeft(0), v.optSackRight(0)]).toEqual([3719936048, 3719937496]);
    expect(v.toRepr().options).toEqual([
      { type: 'nop' },
      { type: 'nop' },
      { type: 'timestamps', tsval: 3293611809, tsecr: 161005203 },
      { type: 'nop' },
      { type: 'nop' },
      { type: 'sack', blocks: [{ left: 3719936048, right: 3719937496 }] },
    ]);
  });

  it('reads the FIN', () => {
    const v = bound(FIN);
    expect(v.flags).toBe(0x011);
    expect(v.flags & TcpFlags.FIN).toBe(TcpFlags.FIN);
    expect(v.seq).toBe(3721048048);
    expect(v.checksumOk(pseudo(FIN))).toBe(true);
  });
});

describe('TcpView errors', () => {
  it('gives the exact error for every truncation of a header with options', () => {
    const v = new TcpView();
    for (let cut = 0; cut < 40; cut++) {
      const need = cut < TCP_HEADER_LENGTH ? 20 : 40;
      expect(v.bind(SYN, TCP_OFF, TCP_OFF + cut, 40)).toEqual({
        layer: 'tcp',
        kind: 'truncated',
        offset: TCP_OFF,
        detail: `tcp header needs ${need} bytes, ${cut} available`,
      });
    }
    expect(v.bind(SYN, TCP_OFF, TCP_OFF + 40, 40)).toBeNull();
  });

  it('accepts a whole header with a payload cut short, but cannot judge its checksum', () => {
    const v = new TcpView();
    expect(v.bind(DATA, TCP_OFF, TCP_OFF + 100, tcpLength(DATA))).toBeNull();
    expect(v.complete).toBe(false);
    expect(v.captured).toBe(100);
    expect(v.payloadLength).toBe(760);
    expect(v.checksumOk(pseudo(DATA))).toBeNull();
    const copy = Buffer.from(DATA);
    v.bind(copy, TCP_OFF, TCP_OFF + 100, tcpLength(copy));
    expect(v.fillChecksum(0)).toBe(false);
    expect(copy).toEqual(DATA);
  });

  it('reports a data offset below 5 or beyond the IP length', () => {
    const v = new TcpView();
    for (let d = 0; d < 5; d++) {
      const m = Buffer.from(FIN);
      m[TCP_OFF + 12] = (d << 4) | (m[TCP_OFF + 12]! & 0xf);
      expect(v.bind(m, TCP_OFF)).toEqual({
        layer: 'tcp',
        kind: 'malformed',
        offset: TCP_OFF,
        detail: `data offset ${d} is below the minimum of 5`,
      });
    }
    expect(v.bind(SYN, TCP_OFF, SYN.length, 36)?.detail).toBe(
      'data offset 10 (40 bytes) exceeds the 36 bytes the IP layer carries',
    );
    expect(v.bind(SYN, TCP_OFF, SYN.length, 12)?.detail).toBe(
      'the IP layer carries 12 bytes, less than the 20-byte header',
    );
  });

  it('ignores capture bytes past the IP length (Ethernet padding)', () => {
    const padded = Buffer.concat([FIN, Buffer.alloc(6)]);
    const v = new TcpView();
    expect(v.bind(padded, TCP_OFF, padded.length, 32)).toBeNull();
    expect(v.captured).toBe(32);
    expect(v.payloadLength).toBe(0);
    expect(v.checksumOk(pseudo(FIN))).toBe(true);
  });

  it('judges checksums: a flipped payload bit is bad, fillChecksum repairs it', () => {
    const bad = Buffer.from(DATA);
    bad[bad.length - 1]! ^= 0x10;
    const v = bound(bad);
    expect(v.checksumOk(pseudo(bad))).toBe(false);
    bad[bad.length - 1]! ^= 0x10;
    v.checksum = 0x1234;
    expect(v.checksumOk(pseudo(bad))).toBe(false);
    expect(v.fillChecksum(pseudo(bad))).toBe(true);
    expect(bad).toEqual(DATA);
  });
});

/** A SYN-sized TCP header (no IP) whose 20 option bytes are `options` padded with NOPs. */
function withOptions(options: string): Buffer {
  const opt = hex(options);
  const buf = Buffer.alloc(40, 0x01);
  SYN.copy(buf, 0, TCP_OFF, TCP_OFF + 20);
  opt.copy(buf, 20);
  return buf;
}

describe('TcpView.checkOptions', () => {
  const cases: Array<[string, string, number, string]> = [
    [
      'a length below 2',
      '0101 0801',
      22,
      'option 2 (timestamps, kind 8) at offset 22 has length 1, below the minimum of 2',
    ],
    [
      'a zero length',
      '020405b4 1e00',
      24,
      'option 1 (kind 30) at offset 24 has length 0, below the minimum of 2',
    ],
    [
      'an option running past the header',
      `${'01'.repeat(19)}08`,
      39,
      'option 19 (timestamps, kind 8) at offset 39 has no length byte before the header ends at 40',
    ],
    [
      'a length past the header end',
      '01010101 01010101 01010101 0101 080a',
      34,
      'option 14 (timestamps, kind 8) at offset 34 with length 10 runs past the header end at offset 40',
    ],
    [
      'an MSS of the wrong length',
      '020305',
      20,
      'option 0 (MSS, kind 2) at offset 20 has length 3, expected 4',
    ],
    [
      'a SACK of the wrong length',
      '01 050c',
      21,
      'option 1 (SACK, kind 5) at offset 21 has length 12, expected 10, 18, 26 or 34',
    ],
    [
      'a window scale of the wrong length',
      '0304',
      20,
      'option 0 (window scale, kind 3) at offset 20 has length 4, expected 3',
    ],
  ];
  for (const [name, options, offset, detail] of cases) {
    it(`names the option and offset for ${name}, and the header stays usable`, () => {
      const buf = withOptions(options);
      const v = new TcpView();
      expect(v.bind(buf, 0)).toBeNull();
      expect(v.checkOptions()).toEqual({ layer: 'tcp', kind: 'malformed', offset, detail });
      expect(v.srcPort).toBe(43888);
      // The iterator stops at the bad option instead of reading past it.
      let k = v.firstOption();
      while (k >= 0) k = v.nextOption();
      expect(k).toBe(TCP_OPTION_MALFORMED);
      expect(v.optOffset).toBe(offset);
      expect(v.nextOption()).toBe(TCP_OPTION_END);
      const last = v.toRepr().options.at(-1);
      expect(last).toEqual({ type: 'invalid', bytes: buf.subarray(offset, 40) });
    });
  }

  it('reports TCP_OPTION_MALFORMED at the bad option', () => {
    const v = new TcpView();
    v.bind(withOptions('020405b4 0801'), 0);
    expect(v.firstOption()).toBe(TcpOptionKind.MSS);
    expect(v.nextOption()).toBe(TCP_OPTION_MALFORMED);
    expect(v.optOffset).toBe(24);
    expect(v.nextOption()).toBe(TCP_OPTION_END);
  });

  it('stops at EOL and ignores what follows it', () => {
    const v = new TcpView();
    v.bind(withOptions('020405b4 00 ff00ff'), 0);
    expect(v.checkOptions()).toBeNull();
    expect(v.toRepr().options).toEqual([{ type: 'mss', mss: 1460 }, { type: 'eol' }]);
  });

  it('keeps unknown kinds as raw bytes', () => {
    const v = new TcpView();
    v.bind(withOptions('1e06 0a0b0c0d 2202 fd04abcd'), 0);
    expect(v.checkOptions()).toBeNull();
    expect(v.toRepr().options.slice(0, 3)).toEqual([
      { type: 'unknown', kind: 30, data: hex('0a0b0c0d') },
      { type: 'unknown', kind: 34, data: Buffer.alloc(0) },
      { type: 'unknown', kind: 253, data: hex('abcd') },
    ]);
  });
});

describe('TcpView setters', () => {
  it('change one field and leave their neighbours alone', () => {
    const buf = Buffer.from(SYN);
    const v = bound(buf);
    v.flags = TcpFlags.NS | TcpFlags.ACK;
    expect(v.flags).toBe(0x110);
    expect(v.dataOffset).toBe(10);
    v.dataOffset = 5;
    expect(v.flags).toBe(0x110);
    v.dataOffset = 10;
    v.flags = TcpFlags.SYN;
    expect(buf).toEqual(SYN);
    v.seq = 0xffffffff;
    v.ack = 0x80000000;
    expect([v.seq, v.ack]).toEqual([0xffffffff, 0x80000000]);
  });
});

const synOptions: TcpOption[] = [
  { type: 'mss', mss: 1460 },
  { type: 'sackPermitted' },
  { type: 'timestamps', tsval: 161005014, tsecr: 0 },
  { type: 'nop' },
  { type: 'windowScale', shift: 10 },
];

describe('TcpRepr', () => {
  it('encodes into junk exactly the captured SYN, checksum computed', () => {
    const buf = junk(SYN.length);
    SYN.copy(buf, 0, 0, TCP_OFF);
    const r = new TcpRepr({
      srcPort: 43888,
      dstPort: 5001,
      seq: 3718648047,
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
      urgent: 0,
      options: synOptions,
      payloadLength: 0,
    });
    expect(r.encodedLength).toBe(40);
    expect(r.encodeInto(buf, TCP_OFF, pseudo(buf))).toBe(40);
    expect(buf).toEqual(SYN);
  });

  it('encodes into junk the captured data segment and its SACK reply', () => {
    for (const frame of [DATA, SACK]) {
      const buf = junk(frame.length);
      frame.copy(buf, 0, 0, TCP_OFF);
      const repr = bound(frame).toRepr();
      frame.copy(buf, TCP_OFF + repr.encodedLength, TCP_OFF + repr.encodedLength);
      repr.checksum = undefined;
      expect(repr.encodeInto(buf, TCP_OFF, pseudo(buf))).toBe(frame.readUInt8(TCP_OFF + 12) >> 2);
      expect(buf).toEqual(frame);
    }
  });

  it('pads options with zero (EOL) bytes to a 4-byte multiple', () => {
    const r = new TcpRepr({
      srcPort: 1,
      dstPort: 2,
      seq: 3,
      ack: 4,
      flags: TcpFlags.SYN,
      window: 5,
      urgent: 0,
      options: [
        { type: 'mss', mss: 1400 },
        { type: 'windowScale', shift: 7 },
      ],
      payloadLength: 0,
      checksum: 0,
    });
    const buf = junk(28);
    expect(r.encodeInto(buf, 0)).toBe(28);
    expect(buf.subarray(20).toString('hex')).toBe('0204057803030700');
    const v = new TcpView();
    expect(v.bind(buf, 0)).toBeNull();
    expect(v.dataOffset).toBe(7);
    expect(v.toRepr().options.at(-1)).toEqual({ type: 'eol' });
  });

  it('keeps a decoded header at its own length (extra padding after EOL)', () => {
    const buf = withOptions('020405b4 00');
    buf.fill(0, 25);
    const v = new TcpView();
    v.bind(buf, 0);
    const out = junk(40);
    expect(v.toRepr().encodeInto(out, 0)).toBe(40);
    expect(out).toEqual(buf);
  });

  it('refuses what cannot be encoded, saying what to change', () => {
    const base = { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0, payloadLength: 0 };
    const block = { left: 1, right: 2 };
    const buf = Buffer.alloc(60);
    expect(() => new TcpRepr(base).encodeInto(buf, 0)).toThrow(/pseudo-header sum/);
    expect(() =>
      new TcpRepr({
        ...base,
        checksum: 0,
        options: [{ type: 'sack', blocks: [block, block, block, block, block] }],
      }).encodeInto(buf, 0),
    ).toThrow(/room for 40/);
    expect(() =>
      new TcpRepr({ ...base, checksum: 0, options: [{ type: 'sack', blocks: [] }] }).encodeInto(buf, 0),
    ).toThrow(/1 to 4 blocks/);
    expect(() => new TcpRepr({ ...base, checksum: 0, dataOffset: 4 }).encodeInto(buf, 0)).toThrow(
      /dataOffset/,
    );
    expect(() => new TcpRepr({ ...base, checksum: 0, flags: 0x200 }).encodeInto(buf, 0)).toThrow(/9-bit/);
  });

  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const u16 = fc.integer({ min: 0, max: 0xffff });
  const optionArb: fc.Arbitrary<TcpOption> = fc.oneof(
    fc.constant<TcpOption>({ type: 'nop' }),
    u16.map((mss): TcpOption => ({ type: 'mss', mss })),
    fc.integer({ min: 0, max: 255 }).map((shift): TcpOption => ({ type: 'windowScale', shift })),
    fc.constant<TcpOption>({ type: 'sackPermitted' }),
    fc
      .array(fc.record({ left: u32, right: u32 }), { minLength: 1, maxLength: 4 })
      .map((blocks): TcpOption => ({ type: 'sack', blocks })),
    fc.record({ tsval: u32, tsecr: u32 }).map((ts): TcpOption => ({ type: 'timestamps', ...ts })),
    fc
      .tuple(
        fc.integer({ min: 0, max: 255 }).filter((k) => ![0, 1, 2, 3, 4, 5, 8].includes(k)),
        fc.uint8Array({ maxLength: 12 }),
      )
      .map(([kind, data]): TcpOption => ({ type: 'unknown', kind, data: Buffer.from(data) })),
  );
  const fieldsArb = fc.record({
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: fc.integer({ min: 0, max: 0x1ff }),
    window: u16,
    urgent: u16,
    options: fc.array(optionArb, { maxLength: 8 }),
    payloadLength: fc.integer({ min: 0, max: 64 }),
    checksum: u16,
  });

  it('round-trips any header through encode and decode', () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        const repr = new TcpRepr(fields);
        let length: number;
        try {
          length = repr.encodedLength;
        } catch {
          return; // more than 40 bytes of options: refused, as tested above
        }
        const buf = junk(length + fields.payloadLength);
        expect(repr.encodeInto(buf, 0)).toBe(length);
        const v = new TcpView();
        expect(v.bind(buf, 0)).toBeNull();
        expect(v.checkOptions()).toBeNull();
        // Padding decodes as one EOL after the options (zero bytes after EOL are not options).
        const padded = repr.optionsLength % 4 !== 0;
        const options = padded ? [...fields.options, { type: 'eol' }] : fields.options;
        expect({ ...v.toRepr() }).toEqual({ ...fields, options, dataOffset: length / 4 });
      }),
    );
  });

  it('computes checksums that verify', () => {
    fc.assert(
      fc.property(fieldsArb, fc.integer({ min: 0, max: 0x7fffffff }), (fields, pseudoSum) => {
        const { checksum: _, ...noChecksum } = fields;
        const repr = new TcpRepr(noChecksum);
        let length: number;
        try {
          length = repr.encodedLength;
        } catch {
          return;
        }
        const buf = junk(length + fields.payloadLength);
        repr.encodeInto(buf, 0, pseudoSum);
        const v = new TcpView();
        v.bind(buf, 0);
        expect(v.checksumOk(pseudoSum)).toBe(true);
      }),
    );
  });

  it('never throws on random or mutated bytes', () => {
    const v = new TcpView();
    const frames = [SYN, DATA.subarray(0, 120), SACK, FIN];
    const mutated = fc
      .tuple(
        fc.integer({ min: 0, max: frames.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      )
      .map(([f, edits]) => {
        const m = Buffer.from(frames[f]!);
        for (const [i, b] of edits) m[TCP_OFF + (i % (m.length - TCP_OFF))] = b;
        return m;
      });
    const random = fc
      .uint8Array({ maxLength: 100 })
      .map((a) => Buffer.concat([Buffer.alloc(TCP_OFF), Buffer.from(a)]));
    fc.assert(
      fc.property(fc.oneof(random, mutated), fc.integer({ min: 0, max: 2000 }), (buf, wire) => {
        for (const wireLength of [buf.length - TCP_OFF, wire]) {
          if (v.bind(buf, TCP_OFF, buf.length, wireLength) !== null) continue;
          v.checkOptions();
          v.toRepr();
          v.checksumOk(0);
          for (let k = v.firstOption(); k >= 0; k = v.nextOption()) {
            expect(v.optOffset + v.optLength).toBeLessThanOrEqual(TCP_OFF + v.headerLength);
            if (k === TcpOptionKind.SACK) for (let i = 0; i < v.optSackBlocks; i++) v.optSackRight(i);
          }
        }
      }),
    );
  });
});

describe('TCP checksum zero', () => {
  it('accepts 0xffff where the checksum computes to 0x0000 (both are zero in one’s complement)', () => {
    // Linux's software checksum path sends a computed 0 as 0xffff (CSUM_MANGLED_0); receivers accept
    // it, so pktveil does too (tshark flags it "0xffff instead of 0x0000" as bad).
    const seg = Buffer.alloc(22);
    const repr = { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TcpFlags.ACK, window: 0, urgent: 0 };
    new TcpRepr({ ...repr, payloadLength: 2, checksum: 0 }).encodeInto(seg, 0);
    const v = new TcpView();
    expect(v.bind(seg, 0)).toBeNull();
    // Choose the 2 payload bytes so that the one's-complement sum of the segment is 0xffff.
    let sum = 0;
    for (let i = 0; i < 22; i += 2) sum += seg.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    seg.writeUInt16BE(0xffff - sum, 20);
    expect(v.checksumOk(0)).toBe(true); // field 0x0000: the computed value
    v.checksum = 0xffff;
    expect(v.checksumOk(0)).toBe(true);
    v.checksum = 0x0001;
    expect(v.checksumOk(0)).toBe(false);
  });
});
