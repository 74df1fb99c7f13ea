import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AGGFRAG_BASIC_HEADER_LENGTH,
  AGGFRAG_CC_HEADER_LENGTH,
  AGGFRAG_DELAY_MAX,
  AGGFRAG_PROTOCOL,
  AGGFRAG_RTT_MAX,
  type AggfragCongestionControl,
  AggfragRepr,
  AggfragSubType,
  AggfragView,
} from '../../src/codec/aggfrag.js';
import { hex, junk } from '../helpers/bytes.js';
import { readVectors } from '../helpers/vectors.js';

interface IptfsVectors {
  constants: {
    aggfrag_ip_protocol_number: { value: number };
    aggfrag_subtypes: Record<string, string>;
  };
  header_layouts: Record<
    'basic' | 'congestion_control',
    { octets: number; fields: Array<[string, number, string]> }
  >;
  examples: Array<{
    id: string;
    esp_payload_size_each: number;
    aggfrag_header_octets: number;
    datablock_octets_per_packet: number;
    inner_packet_lengths: number[];
    block_offsets: number[];
    derived_aggfrag_headers_hex: string[];
  }>;
}

// The shared known-answer file (one source of truth, not copied into the project).
const vectors = readVectors<IptfsVectors>('iptfs-rfc9347-encodings.json');

/** Packs fields MSB-first by the bit widths of a layout from the vectors file, independently of the codec. */
function packLayout(layout: IptfsVectors['header_layouts']['basic'], values: Record<string, number>): Buffer {
  let word = 0n;
  let bits = 0;
  for (const [name, width] of layout.fields) {
    const v = BigInt(values[name] ?? 0);
    expect(v < 1n << BigInt(width)).toBe(true);
    word = (word << BigInt(width)) | v;
    bits += width;
  }
  expect(bits).toBe(layout.octets * 8);
  return Buffer.from(word.toString(16).padStart(layout.octets * 2, '0'), 'hex');
}

describe('AggfragView against the RFC 9347 layouts in the vectors file', () => {
  it('agrees on the protocol number, sub-types and header sizes', () => {
    expect(vectors.constants.aggfrag_ip_protocol_number.value).toBe(AGGFRAG_PROTOCOL);
    const subTypes = Object.keys(vectors.constants.aggfrag_subtypes).filter((k) => /^\d+$/.test(k));
    expect(subTypes.map(Number)).toEqual([AggfragSubType.BASIC, AggfragSubType.CONGESTION_CONTROL]);
    expect(vectors.header_layouts.basic.octets).toBe(AGGFRAG_BASIC_HEADER_LENGTH);
    expect(vectors.header_layouts.congestion_control.octets).toBe(AGGFRAG_CC_HEADER_LENGTH);
  });

  it('reads every congestion-control field where the layout puts it', () => {
    const values = {
      subtype: 1,
      reserved: 0,
      P: 1,
      E: 0,
      block_offset: 0x1234,
      loss_event_rate: 0x89abcdef,
      rtt_usec: 0x2aaaaa,
      echo_delay_usec: 0x155555,
      transmit_delay_usec: 0x1a5a5a,
      tval: 0xdeadbeef,
      techo: 0x01020304,
    };
    const bytes = packLayout(vectors.header_layouts.congestion_control, values);
    const v = new AggfragView();
    expect(v.bind(bytes, 0)).toBeNull();
    expect(v.subType).toBe(1);
    expect(v.isCongestionControl).toBe(true);
    expect([v.probe, v.ecn]).toEqual([true, false]);
    expect(v.blockOffset).toBe(0x1234);
    expect(v.lossEventRate).toBe(0x89abcdef);
    expect(v.rtt).toBe(0x2aaaaa);
    expect(v.echoDelay).toBe(0x155555);
    expect(v.transmitDelay).toBe(0x1a5a5a);
    expect(v.tval).toBe(0xdeadbeef);
    expect(v.techo).toBe(0x01020304);
    expect(v.headerLength).toBe(24);
    expect(v.payloadOffset).toBe(24);
    expect(v.payloadLength).toBe(0);

    const swapped = packLayout(vectors.header_layouts.congestion_control, { ...values, P: 0, E: 1 });
    v.bind(swapped, 0);
    expect([v.probe, v.ecn]).toEqual([false, true]);
  });

  it('reads the delays at their extremes without bleeding into each other', () => {
    const layout = vectors.header_layouts.congestion_control;
    const v = new AggfragView();
    const cases = [
      [AGGFRAG_RTT_MAX, 0, 0],
      [0, AGGFRAG_DELAY_MAX, 0],
      [0, 0, AGGFRAG_DELAY_MAX],
      [AGGFRAG_RTT_MAX, AGGFRAG_DELAY_MAX, AGGFRAG_DELAY_MAX],
      [1, 1, 1],
    ];
    for (const [rtt, echo, xmit] of cases) {
      const bytes = packLayout(layout, {
        subtype: 1,
        rtt_usec: rtt!,
        echo_delay_usec: echo!,
        transmit_delay_usec: xmit!,
      });
      v.bind(bytes, 0);
      expect([v.rtt, v.echoDelay, v.transmitDelay]).toEqual([rtt, echo, xmit]);
      expect([v.lossEventRate, v.tval]).toEqual([0, 0]);
    }
  });

  it('reads a basic header where the layout puts it', () => {
    const bytes = Buffer.concat([
      packLayout(vectors.header_layouts.basic, { subtype: 0, reserved: 0xff, block_offset: 0xfedc }),
      hex('45000014'),
    ]);
    const v = new AggfragView();
    expect(v.bind(bytes, 0)).toBeNull();
    expect([v.subType, v.blockOffset, v.headerLength, v.payloadOffset, v.payloadLength]).toEqual([
      0, 0xfedc, 4, 4, 4,
    ]);
    // The reserved octet is ignored on receipt: no P/E, and no congestion-control fields on sub-type 0.
    expect([v.probe, v.ecn, v.rtt, v.echoDelay, v.transmitDelay, v.lossEventRate, v.tval, v.techo]).toEqual([
      false,
      false,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
    expect({ ...v.toRepr() }).toEqual({ blockOffset: 0xfedc, payloadLength: 4 });
  });
});

describe('RFC 9347 Appendix A: the example flow', () => {
  const example = vectors.examples.find((e) => e.id === 'rfc9347-appA-flow')!;
  // Appendix A: inner packets of 750, 750, 60, 240 and 3000 octets, each outer ESP payload 1404 octets of
  // which 4 are the AGGFRAG header; BlockOffsets 0, 100, 2000, 600; padding after the last packet.
  const INNER = [750, 750, 60, 240, 3000];
  const BLOCK_OFFSETS = [0, 100, 2000, 600];
  const DATA_PER_PAYLOAD = 1400;

  /** The four payloads, built octet by octet from the text (not with AggfragRepr). */
  function buildPayloads(): Buffer[] {
    const stream: number[] = [];
    INNER.forEach((length, index) => {
      // Each inner packet starts like an IPv4 header: version/IHL 0x45, TOS, Total Length (big-endian).
      stream.push(0x45, 0x00, length >> 8, length & 0xff);
      for (let i = 4; i < length; i++) stream.push(0x10 + index);
    });
    while (stream.length % DATA_PER_PAYLOAD !== 0) stream.push(0x00); // pad block: type nibble 0
    return BLOCK_OFFSETS.map((blockOffset, n) =>
      Buffer.from([
        0x00, // Sub-Type 0
        0x00, // Reserved
        blockOffset >> 8,
        blockOffset & 0xff,
        ...stream.slice(n * DATA_PER_PAYLOAD, (n + 1) * DATA_PER_PAYLOAD),
      ]),
    );
  }

  it('matches the structure recorded in the vectors file', () => {
    expect(example.inner_packet_lengths).toEqual(INNER);
    expect(example.block_offsets).toEqual(BLOCK_OFFSETS);
    expect(example.datablock_octets_per_packet).toBe(DATA_PER_PAYLOAD);
    const payloads = buildPayloads();
    expect(payloads.map((p) => p.length)).toEqual(Array(4).fill(example.esp_payload_size_each));
    expect(payloads.map((p) => p.subarray(0, example.aggfrag_header_octets).toString('hex'))).toEqual(
      example.derived_aggfrag_headers_hex,
    );
  });

  it('decodes each header and lets a receiver find every data block from BlockOffset alone', () => {
    const v = new AggfragView();
    const blocks: Array<number | 'pad'> = [];
    let carry = 0; // octets of the current data block still expected in later payloads
    for (const [n, payload] of buildPayloads().entries()) {
      expect(v.bind(payload, 0)).toBeNull();
      expect(v.subType).toBe(AggfragSubType.BASIC);
      expect(v.blockOffset).toBe(BLOCK_OFFSETS[n]);
      expect(v.headerLength).toBe(4);
      expect(v.payloadLength).toBe(DATA_PER_PAYLOAD);
      expect(v.blockOffset).toBe(carry);
      let pos = v.blockOffset;
      while (pos < v.payloadLength) {
        const at = v.payloadOffset + pos;
        if (payload[at]! >> 4 === 0) {
          blocks.push('pad');
          pos = v.payloadLength;
          break;
        }
        expect(payload[at]! >> 4).toBe(4);
        const length = payload.readUInt16BE(at + 2);
        blocks.push(length);
        pos += length;
      }
      carry = pos - v.payloadLength;
    }
    expect(blocks).toEqual([...INNER, 'pad']);
    expect(carry).toBe(0);
  });
});

describe('AggfragView errors', () => {
  const BASIC = hex('00000064 45000014');
  const CC = hex('0103 0258 00000010 00001000 00000001 0000aaaa 0000bbbb 45000014');

  it('gives the exact error for every truncation of either header', () => {
    const v = new AggfragView();
    for (const [bytes, size] of [
      [BASIC, 4],
      [CC, 24],
    ] as const) {
      for (let cut = 0; cut < size; cut++) {
        expect(v.bind(bytes, 0, cut, bytes.length)).toEqual({
          layer: 'aggfrag',
          kind: 'truncated',
          offset: 0,
          detail: `aggfrag header needs ${cut === 0 ? 4 : size} bytes, ${cut} available`,
        });
      }
      expect(v.bind(bytes, 0, size, bytes.length)).toBeNull();
      expect(v.complete).toBe(false);
    }
  });

  it('reports a header longer than the enclosing payload', () => {
    expect(new AggfragView().bind(CC, 0, CC.length, 20)).toEqual({
      layer: 'aggfrag',
      kind: 'malformed',
      offset: 0,
      detail: 'sub-type 1 header needs 24 bytes, the enclosing layer carries 20',
    });
  });

  it('refuses every undefined sub-type as unsupported', () => {
    const v = new AggfragView();
    for (let subType = 2; subType < 256; subType++) {
      const bytes = Buffer.from(CC);
      bytes[0] = subType;
      expect(v.bind(bytes, 0)).toEqual({
        layer: 'aggfrag',
        kind: 'unsupported',
        offset: 0,
        detail: `sub-type ${subType} is not defined (RFC 9347 defines 0 and 1)`,
      });
    }
  });
});

describe('AggfragView setters', () => {
  it('write one field and leave the shared delay word consistent', () => {
    const buf = Buffer.alloc(24);
    buf[0] = 1;
    const v = new AggfragView();
    v.bind(buf, 0);
    v.setDelays(5, 6, 7);
    v.tval = 0xffffffff;
    v.lossEventRate = 9;
    v.blockOffset = 0xffff;
    v.flags = 0x03;
    expect([v.rtt, v.echoDelay, v.transmitDelay, v.tval, v.techo, v.lossEventRate, v.blockOffset]).toEqual([
      5, 6, 7, 0xffffffff, 0, 9, 0xffff,
    ]);
    expect([v.probe, v.ecn]).toEqual([true, true]);
    v.setDelays(AGGFRAG_RTT_MAX + 1, 2 ** 31, 0);
    expect([v.rtt, v.echoDelay, v.transmitDelay]).toEqual([AGGFRAG_RTT_MAX, AGGFRAG_DELAY_MAX, 0]);
  });

  it('do not write congestion-control fields into a basic header', () => {
    const buf = hex('00000000 45000014 aaaaaaaa bbbbbbbb cccccccc dddddddd');
    const copy = Buffer.from(buf);
    const v = new AggfragView();
    v.bind(buf, 0);
    v.tval = 1;
    v.techo = 1;
    v.lossEventRate = 1;
    v.setDelays(1, 1, 1);
    expect(buf).toEqual(copy);
  });
});

describe('AggfragRepr', () => {
  const ccArb: fc.Arbitrary<AggfragCongestionControl> = fc.record({
    probe: fc.boolean(),
    ecn: fc.boolean(),
    lossEventRate: fc.integer({ min: 0, max: 0xffffffff }),
    rtt: fc.integer({ min: 0, max: AGGFRAG_RTT_MAX }),
    echoDelay: fc.integer({ min: 0, max: AGGFRAG_DELAY_MAX }),
    transmitDelay: fc.integer({ min: 0, max: AGGFRAG_DELAY_MAX }),
    tval: fc.integer({ min: 0, max: 0xffffffff }),
    techo: fc.integer({ min: 0, max: 0xffffffff }),
  });

  it('encodes into junk the same bytes the layout packer builds', () => {
    fc.assert(
      fc.property(ccArb, fc.integer({ min: 0, max: 0xffff }), (cc, blockOffset) => {
        const buf = junk(24);
        const r = new AggfragRepr({ blockOffset, payloadLength: 0, cc });
        expect(r.subType).toBe(1);
        expect(r.encodeInto(buf, 0)).toBe(24);
        const expected = packLayout(vectors.header_layouts.congestion_control, {
          subtype: 1,
          P: cc.probe ? 1 : 0,
          E: cc.ecn ? 1 : 0,
          block_offset: blockOffset,
          loss_event_rate: cc.lossEventRate,
          rtt_usec: cc.rtt,
          echo_delay_usec: cc.echoDelay,
          transmit_delay_usec: cc.transmitDelay,
          tval: cc.tval,
          techo: cc.techo,
        });
        expect(buf).toEqual(expected);
      }),
    );
    const basic = junk(4);
    expect(new AggfragRepr({ blockOffset: 100, payloadLength: 1400 }).encodeInto(basic, 0)).toBe(4);
    expect(basic.toString('hex')).toBe('00000064');
  });

  it('round-trips both sub-types through encode and decode', () => {
    fc.assert(
      fc.property(
        fc.option(ccArb, { nil: undefined }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 1500 }),
        (cc, blockOffset, payloadLength) => {
          const r = new AggfragRepr(cc ? { blockOffset, payloadLength, cc } : { blockOffset, payloadLength });
          const buf = junk(r.encodedLength);
          r.encodeInto(buf, 0);
          const v = new AggfragView();
          expect(v.bind(buf, 0, buf.length, r.encodedLength + payloadLength)).toBeNull();
          expect({ ...v.toRepr() }).toEqual({ ...r });
        },
      ),
    );
  });

  it('saturates delays as RFC 9347 §6.1.2 requires and refuses negative ones', () => {
    const cc = {
      probe: false,
      ecn: false,
      lossEventRate: 0,
      rtt: 0,
      echoDelay: 0,
      transmitDelay: 0,
      tval: 0,
      techo: 0,
    };
    const buf = Buffer.alloc(24);
    new AggfragRepr({
      blockOffset: 0,
      payloadLength: 0,
      cc: { ...cc, rtt: 10_000_000, echoDelay: 0x200000 },
    }).encodeInto(buf, 0);
    const v = new AggfragView();
    v.bind(buf, 0);
    expect([v.rtt, v.echoDelay, v.transmitDelay]).toEqual([AGGFRAG_RTT_MAX, AGGFRAG_DELAY_MAX, 0]);
    expect(() =>
      new AggfragRepr({ blockOffset: 0, payloadLength: 0, cc: { ...cc, transmitDelay: -1 } }).encodeInto(
        buf,
        0,
      ),
    ).toThrow(/transmitDelay must be a non-negative integer/);
  });

  it('never throws on random bytes', () => {
    const v = new AggfragView();
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 0, max: 60 }),
        fc.boolean(),
        (a, wire, known) => {
          const buf = Buffer.from(a);
          // Half the time force a defined sub-type so the getters run, not only the unsupported path.
          if (buf.length > 0 && known) buf[0]! &= 1;
          if (v.bind(buf, 0, buf.length, wire) === null) {
            const r = v.toRepr();
            expect(v.payloadOffset + v.payloadLength).toBe(wire);
            expect(Number.isNaN(v.rtt + v.echoDelay + v.transmitDelay + (r.cc?.tval ?? 0))).toBe(false);
          }
        },
      ),
    );
  });
});
