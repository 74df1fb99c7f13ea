/**
 * Encapsulation and what decapsulation makes of it: the tunnel-mode outer header (RFC 4301 §5.1.2.1,
 * RFC 6040), transport mode, padding (RFC 4303 §2.4) read back by decrypting with the SA's keys, sizes,
 * TFC padding and dummy packets (§2.6, §2.7), NAT-T (RFC 3948), the ECN decapsulation table (RFC 6040
 * §4.2), inner IPv6, telescopes peeled one node at a time, and encoding into junk at odd offsets.
 */
import { describe, expect, it } from 'vitest';
import { checksumVerifies, internetChecksum } from '../../src/codec/checksum.js';
import { ESP_HEADER_LENGTH } from '../../src/codec/esp.js';
import { IPV4_HEADER_LENGTH, Ipv4View, parseIpv4 } from '../../src/codec/ipv4.js';
import { type DecapDrop, decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { encapsulate, encapsulateAggfrag, encapsulateDummy } from '../../src/esp/encapsulate.js';
import { EspDecapStage } from '../../src/esp/esp-stages.js';
import { NATT_KEEPALIVE_LENGTH, writeNatKeepalive } from '../../src/esp/natt-keepalive.js';
import { type DfPolicy, type EspMode, type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import { TelescopeEncapsulator } from '../../src/esp/telescope.js';
import { junk } from '../helpers/bytes.js';
import {
  espOffset,
  ipv6Packet,
  keysFor,
  MODES,
  mustSeal,
  open,
  rawPacket,
  runOnce,
  SUITE_NAMES,
  saConfig,
  sadOf,
  saPair,
  seal,
  TUNNEL,
  u32,
  udpPacket,
} from './engine-fixtures.js';

/** The fields of the IPv4 header at pkt[0] that the tests compare. */
function ipv4Fields(pkt: Buffer) {
  const v = new Ipv4View();
  expect(v.bind(pkt, 0)).toBeNull();
  return {
    version: v.version,
    ihl: v.ihl,
    dscp: v.dscp,
    ecn: v.ecn,
    totalLength: v.totalLength,
    id: v.id,
    flags: v.flags,
    fragOffset: v.fragOffset,
    ttl: v.ttl,
    protocol: v.protocol,
    checksumOk: v.checksumOk(),
    src: v.src,
    dst: v.dst,
  };
}

/**
 * The ESP payload of `pkt` opened with `rx`'s keys, step by step as RFC 4303 §3.4 says (without the
 * engine's decapsulate): ICV checked, then decrypted. Non-ESN SAs only.
 */
function plaintextOf(rx: SecurityAssociation, pkt: Buffer): Buffer {
  const s = rx.suite;
  const espOff = espOffset(pkt);
  const ivOff = espOff + 8;
  const dataOff = ivOff + s.ivLength;
  const icvOff = pkt.length - s.icvLength;
  const data = Buffer.from(pkt.subarray(dataOff, icvOff));
  const icv = pkt.subarray(icvOff);
  const keys = rx.keys;
  if (keys.aead) {
    const nonce = Buffer.concat([keys.salt, pkt.subarray(ivOff, dataOff)]);
    expect(keys.aead.open(nonce, pkt.subarray(espOff, ivOff), data, icv)).toBe(true);
  } else {
    if (keys.mac) expect(keys.mac.verify(pkt.subarray(espOff, icvOff), new Uint8Array(0), icv)).toBe(true);
    if (keys.cbc) keys.cbc.decrypt(pkt.subarray(ivOff, dataOff), data);
  }
  return data;
}

/** payload ‖ 1, 2, …, p ‖ p ‖ nextHeader with the least p that ends on the block size (RFC 4303 §2.4). */
function paddedPlaintext(payload: Uint8Array, blockSize: number, nextHeader: number): Buffer {
  const p = (blockSize - ((payload.length + 2) % blockSize)) % blockSize;
  return Buffer.concat([
    payload,
    Buffer.from(Array.from({ length: p }, (_, i) => i + 1)),
    Buffer.from([p, nextHeader]),
  ]);
}

function withOuterEcn(pkt: Buffer, ecn: number): Buffer {
  const copy = Buffer.from(pkt);
  copy[1] = (copy[1]! & 0xfc) | ecn;
  copy.writeUInt16BE(0, 10);
  copy.writeUInt16BE(internetChecksum(copy, 0, 20), 10);
  return copy;
}

describe('tunnel mode: the outer IPv4 header', () => {
  it('is version 4, IHL 5, protocol 50, the SA’s endpoints and TTL, total length and checksum right', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    const inner = udpPacket({ ttl: 3 });
    const pkt = mustSeal(tx, inner);
    expect(ipv4Fields(pkt)).toEqual({
      version: 4,
      ihl: 5,
      dscp: 0,
      ecn: 0,
      totalLength: pkt.length,
      id: 0,
      flags: 0b010,
      fragOffset: 0,
      ttl: 64,
      protocol: 50,
      checksumOk: true,
      src: parseIpv4(TUNNEL.src),
      dst: parseIpv4(TUNNEL.dst),
    });
    const ttl17 = new SecurityAssociation(
      saConfig('aes-gcm-16', 'tunnel', { tunnel: { ...TUNNEL, ttl: 17 } }),
    );
    expect(ipv4Fields(mustSeal(ttl17, inner)).ttl).toBe(17);
    // The inner packet is carried as it was: its TTL is not the tunnel's business.
    expect(open(sadOf(new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'))), pkt)).toEqual(inner);
  });

  it('copies DSCP and ECN, all four ECN codepoints included (RFC 6040 §4.1 normal mode)', () => {
    for (const dscp of [0, 10, 46, 63]) {
      for (const ecn of [0, 1, 2, 3]) {
        const { tx, rx } = saPair(saConfig('chacha20-poly1305', 'tunnel'));
        const inner = udpPacket({ tos: (dscp << 2) | ecn });
        const pkt = mustSeal(tx, inner);
        expect({ dscp, ecn, got: ipv4Fields(pkt) }).toMatchObject({
          dscp,
          ecn,
          got: { dscp, ecn, checksumOk: true },
        });
        expect(open(sadOf(rx), pkt)).toEqual(inner);
      }
    }
  });

  it('sets DF by the SA’s policy: copied from the inner header, always set, or always clear', () => {
    const cases: [DfPolicy | undefined, number, number][] = [
      [undefined, 0b010, 0b010],
      [undefined, 0b000, 0b000],
      ['copy', 0b010, 0b010],
      ['copy', 0b000, 0b000],
      ['set', 0b000, 0b010],
      ['set', 0b010, 0b010],
      ['clear', 0b010, 0b000],
      ['clear', 0b000, 0b000],
      // An inner fragment is wrapped whole; the outer header is no fragment, only DF may be copied.
      ['copy', 0b011, 0b010],
      ['copy', 0b001, 0b000],
    ];
    for (const [df, innerFlags, outerFlags] of cases) {
      const tunnel = { ...TUNNEL, ...(df ? { df } : {}) };
      const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel', { tunnel }));
      const inner = udpPacket({ flags: innerFlags });
      const fragment = udpPacket({ flags: innerFlags, fragOffset: 185 });
      for (const pkt of [inner, fragment]) {
        const out = mustSeal(tx, pkt);
        expect({ df, innerFlags, got: ipv4Fields(out) }).toMatchObject({
          df,
          innerFlags,
          got: { flags: outerFlags, fragOffset: 0, checksumOk: true },
        });
        expect(open(sadOf(rx), out)).toEqual(pkt);
      }
    }
  });

  it('numbers outer headers 0, 1, 2, … per SA, wrapping after 65535', () => {
    const tx = new SecurityAssociation(saConfig('null-hmac-sha256-128', 'tunnel'));
    const ids = Array.from({ length: 3 }, () => ipv4Fields(mustSeal(tx, udpPacket())).id);
    expect(ids).toEqual([0, 1, 2]);
    tx.ipId = 0xfffe;
    const wrapped = Array.from({ length: 3 }, () => ipv4Fields(mustSeal(tx, udpPacket())).id);
    expect(wrapped).toEqual([0xfffe, 0xffff, 0]);
  });
});

describe('transport mode', () => {
  // Router Alert (RFC 2113) then NOP, NOP, NOP, End of Options: 8 bytes, IHL 7.
  const OPTIONS = Buffer.from('9404000001010100', 'hex');

  it.each(SUITE_NAMES)(
    '%s: keeps the IPv4 header with its options, fixing protocol, length and checksum',
    (suite) => {
      const config = saConfig(suite, 'transport', {
        iv: SUITES[suite].ivLength === 16 ? Buffer.alloc(16, 1) : undefined,
      });
      const { tx, rx } = saPair(config);
      const inner = udpPacket({ options: OPTIONS, tos: 0xb9, ttl: 9, id: 0x4242 });
      expect(inner[0]).toBe(0x47);
      const pkt = mustSeal(tx, inner);
      const want = Buffer.from(inner.subarray(0, 28));
      want[9] = 50;
      want.writeUInt16BE(pkt.length, 2);
      want.writeUInt16BE(0, 10);
      want.writeUInt16BE(internetChecksum(want, 0, 28), 10);
      expect(pkt.subarray(0, 28)).toEqual(want);
      expect(ipv4Fields(pkt).checksumOk).toBe(true);
      // The ESP payload is the UDP datagram, with UDP as Next Header.
      expect(plaintextOf(rx, pkt)).toEqual(paddedPlaintext(inner.subarray(28), SUITES[suite].blockSize, 17));
      // And decapsulation rebuilds the original byte for byte.
      expect(open(sadOf(rx), pkt)).toEqual(inner);
    },
  );

  it('refuses fragments without spending a sequence number, but not DF alone', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'transport'));
    expect(seal(tx, udpPacket({ flags: 0b001 }))).toBe('fragment');
    expect(seal(tx, udpPacket({ flags: 0b000, fragOffset: 1 }))).toBe('fragment');
    expect(seal(tx, udpPacket({ flags: 0b010, fragOffset: 0x1fff }))).toBe('fragment');
    expect(tx.nextSeq).toBe(1n);
    expect(u32(mustSeal(tx, udpPacket({ flags: 0b010 })), 24)).toBe(1);
  });

  it('refuses IPv6 and anything that is not IP, and IPv4 headers that contradict themselves', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'transport'));
    expect(seal(tx, ipv6Packet())).toBe('not-ip');
    expect(seal(tx, Buffer.from([0x55, 0, 0, 20]))).toBe('not-ip');
    expect(seal(tx, Buffer.alloc(0))).toBe('not-ip');
    const badIhl = udpPacket();
    badIhl[0] = 0x44;
    expect(seal(tx, badIhl)).toBe('malformed-inner');
    const tooLong = udpPacket();
    tooLong.writeUInt16BE(tooLong.length + 1, 2);
    expect(seal(tx, tooLong)).toBe('malformed-inner');
    expect(seal(tx, udpPacket().subarray(0, 19))).toBe('malformed-inner');
    expect(tx.nextSeq).toBe(1n);
  });
});

describe.each(SUITE_NAMES.flatMap((suite) => MODES.map((mode) => ({ suite, mode }))))(
  'padding: $suite $mode',
  ({ suite, mode }) => {
    it('is 1, 2, 3, … up to the block size, with pad length and Next Header after it', () => {
      const s = SUITES[suite];
      const { tx, rx } = saPair(saConfig(suite, mode));
      const seen = new Set<number>();
      for (let payload = 0; payload <= 2 * s.blockSize + 1; payload++) {
        const inner = udpPacket({ payload: Buffer.alloc(payload, 0x61) });
        const pkt = mustSeal(tx, inner);
        const carried = mode === 'tunnel' ? inner : inner.subarray(20);
        const plaintext = plaintextOf(rx, pkt);
        expect({ payload, plaintext }).toEqual({
          payload,
          plaintext: paddedPlaintext(carried, s.blockSize, mode === 'tunnel' ? 4 : 17),
        });
        expect(pkt.length).toBe(20 + 8 + s.ivLength + plaintext.length + s.icvLength);
        seen.add(plaintext[plaintext.length - 2]!);
        expect(open(sadOf(rx), pkt)).toEqual(inner);
      }
      // Every pad length from 0 to blockSize − 1 occurred.
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: s.blockSize }, (_, i) => i));
    });
  },
);

describe('lengths', () => {
  it.each(MODES)('ignores bytes after the IP total length (Ethernet padding), %s mode', (mode) => {
    for (const suite of ['aes-gcm-16', 'null', 'null-hmac-sha256-128'] as SuiteName[]) {
      const config = saConfig(suite, mode);
      const inner = udpPacket({ payload: Buffer.from('x') });
      const padded = Buffer.concat([inner, Buffer.alloc(17, 0xee)]);
      // Twin SAs produce the same bytes for the same packet (counter IVs), so the two results must match.
      const plain = mustSeal(new SecurityAssociation(config), inner);
      expect(mustSeal(new SecurityAssociation(config), padded)).toEqual(plain);
      expect(open(sadOf(new SecurityAssociation(config)), plain)).toEqual(inner);
    }
  });

  describe.each(SUITE_NAMES.flatMap((suite) => MODES.map((mode) => ({ suite, mode }))))(
    '$suite $mode',
    ({ suite, mode }) => {
      it('refuses a result above 65535 bytes as too-big, without spending a sequence number', () => {
        const s = SUITES[suite];
        const headerRoom = mode === 'tunnel' ? 0 : 20;
        const total = (innerLength: number) =>
          20 +
          8 +
          s.ivLength +
          Math.ceil((innerLength - headerRoom + 2) / s.blockSize) * s.blockSize +
          s.icvLength;
        let largest = 65535;
        while (total(largest) > 65535) largest--;
        const make = (length: number) => udpPacket({ payload: Buffer.alloc(length - 28, 0x33) });
        const tx = new SecurityAssociation(saConfig(suite, mode));
        expect(seal(tx, make(largest + 1))).toBe('too-big');
        expect([tx.nextSeq, tx.ipId, tx.packets]).toEqual([1n, 0, 0]);
        const pkt = mustSeal(tx, make(largest));
        expect(pkt.length).toBe(total(largest));
        expect(pkt.length).toBeLessThanOrEqual(65535);
        expect(pkt.length).toBeGreaterThan(65535 - s.blockSize);
        expect(pkt.readUInt16BE(2)).toBe(pkt.length);
      });

      it('refuses an output buffer one byte too short as too-big, and fills one exactly long enough', () => {
        const config = saConfig(suite, mode, {
          iv: SUITES[suite].ivLength === 16 ? Buffer.alloc(16, 9) : undefined,
        });
        const inner = udpPacket();
        const want = mustSeal(new SecurityAssociation(config), inner);
        const tx = new SecurityAssociation(config);
        const short = junk(want.length - 1);
        expect(encapsulate(tx, inner, 0, inner.length, short, 0)).toBe('too-big');
        expect(short).toEqual(junk(want.length - 1));
        expect(tx.nextSeq).toBe(1n);
        const exact = junk(want.length);
        expect(encapsulate(tx, inner, 0, inner.length, exact, 0)).toBe(want.length);
        expect(exact).toEqual(want);
      });
    },
  );
});

describe('TFC padding (RFC 4303 §2.7)', () => {
  it.each(['aes-gcm-16', 'aes-cbc-hmac-sha256-128', 'null'] as SuiteName[])(
    '%s: pads the payload with zeros to tfcPadTo, and decapsulation strips them by the inner length',
    (suite) => {
      const s = SUITES[suite];
      const { tx, rx } = saPair(saConfig(suite, 'tunnel', { tfcPadTo: 300 }));
      const small = udpPacket();
      const pkt = mustSeal(tx, small);
      const tfc = Buffer.concat([small, Buffer.alloc(300 - small.length)]);
      expect(plaintextOf(rx, pkt)).toEqual(paddedPlaintext(tfc, s.blockSize, 4));
      expect(open(sadOf(rx), pkt)).toEqual(small);
      // Larger than the target: no TFC padding, just ordinary padding.
      const large = udpPacket({ payload: Buffer.alloc(400, 0x77) });
      const pkt2 = mustSeal(tx, large);
      expect(plaintextOf(rx, pkt2)).toEqual(paddedPlaintext(large, s.blockSize, 4));
      expect(open(sadOf(rx), pkt2)).toEqual(large);
      // Every packet at or below the target leaves the same size on the wire.
      const sizes = [28, 100, 299, 300].map(
        (n) => mustSeal(tx, udpPacket({ payload: Buffer.alloc(n - 28) })).length,
      );
      expect(new Set(sizes).size).toBe(1);
    },
  );

  it('strips TFC padding after an inner IPv6 packet by its payload length', () => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel', { tfcPadTo: 256 }));
    const inner = ipv6Packet(20);
    expect(open(sadOf(rx), mustSeal(tx, inner))).toEqual(inner);
  });
});

describe('dummy packets (Next Header 59, RFC 4303 §2.6)', () => {
  it('carry random bytes from the tunnel endpoints, and are dropped as dummy once authenticated', () => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
    const out = junk(300);
    const n = encapsulateDummy(tx, 100, out, 3);
    expect(typeof n).toBe('number');
    const dummy = Buffer.from(out.subarray(3, 3 + (n as number)));
    expect(out.subarray(0, 3)).toEqual(junk(3));
    expect(out.subarray(3 + (n as number))).toEqual(junk(300 - 3 - (n as number)));
    expect(ipv4Fields(dummy)).toMatchObject({
      protocol: 50,
      checksumOk: true,
      totalLength: n,
      src: parseIpv4(TUNNEL.src),
    });
    const plaintext = plaintextOf(rx, dummy);
    expect(plaintext.length).toBe(104);
    expect(plaintext.subarray(100)).toEqual(Buffer.from([1, 2, 2, 59]));
    // Random, not junk or zeros.
    expect(plaintext.subarray(0, 100)).not.toEqual(Buffer.alloc(100));
    expect(plaintext.subarray(0, 100)).not.toEqual(junk(100));

    // Authenticated before it is called a dummy: a changed one is a forgery.
    const forged = Buffer.from(dummy);
    forged[40]! ^= 1;
    expect(open(sadOf(rx), forged)).toBe('icv');
    const info = newDecapInfo();
    expect(open(sadOf(rx), dummy, info)).toBe('dummy');
    expect([info.sa, info.nextHeader, info.seqLo]).toEqual([rx, 59, 1]);
  });

  it('advance the replay window like any authenticated packet', () => {
    const config = saConfig('aes-cbc-hmac-sha1-96', 'tunnel');
    const rx = new SecurityAssociation(config);
    const tx = new SecurityAssociation(config);
    const genuine = [mustSeal(tx, udpPacket()), mustSeal(tx, udpPacket())];
    const ahead = new SecurityAssociation({ ...config, seq: 500 });
    const out = Buffer.alloc(300);
    const n = encapsulateDummy(ahead, 20, out, 0) as number;
    const dummy = Buffer.from(out.subarray(0, n));
    expect(open(sadOf(rx), dummy)).toBe('dummy');
    expect([rx.replay!.topHi, rx.replay!.topLo]).toEqual([0, 500]);
    expect(open(sadOf(rx), dummy)).toBe('replayed');
    expect(open(sadOf(rx), genuine[0]!)).toBe('too-old');
    expect(open(sadOf(rx), genuine[1]!)).toBe('too-old');
  });

  it('are counted as dropped.dummy by the decapsulation stage, and go through NAT-T too', () => {
    const { tx, rx } = saPair(
      saConfig('null-hmac-sha256-128', 'tunnel', { natt: { srcPort: 4500, dstPort: 4500 } }),
    );
    const stage = new EspDecapStage([rx]);
    const out = Buffer.alloc(300);
    for (let i = 0; i < 3; i++) {
      const n = encapsulateDummy(tx, 10 * i, out, 0) as number;
      expect(out[9]).toBe(17);
      expect(runOnce(stage, rawPacket(out.subarray(0, n)))).toEqual({ emitted: [], dropped: ['dummy'] });
    }
    expect(stage.stats()).toMatchObject({ packetsIn: 3, packetsOut: 0, dropped: { dummy: 3 } });
  });

  it('need the tunnel endpoints: a transport-mode SA throws, saying so', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'transport'));
    expect(() => encapsulateDummy(tx, 10, Buffer.alloc(200), 0)).toThrow(
      'dummy packets need the SA\'s "tunnel" endpoints for their IP header',
    );
  });
});

describe('IP-TFS payloads (RFC 9347, Next Header 144)', () => {
  it('go behind the SA’s outer header and come back out of decapsulate as the same AGGFRAG bytes', () => {
    const { tx, rx } = saPair(saConfig('chacha20-poly1305', 'iptfs', { tunnel: { ...TUNNEL, df: 'set' } }));
    const payload = Buffer.from('0000000045000014', 'hex');
    const out = junk(200);
    const n = encapsulateAggfrag(tx, payload, 0, payload.length, out, 5) as number;
    const pkt = Buffer.from(out.subarray(5, 5 + n));
    expect(ipv4Fields(pkt)).toMatchObject({ protocol: 50, checksumOk: true, totalLength: n, flags: 0b010 });
    expect(plaintextOf(rx, pkt).subarray(-1)).toEqual(Buffer.from([144]));
    const info = newDecapInfo();
    expect(open(sadOf(rx), pkt, info)).toEqual(payload);
    expect([info.nextHeader, info.seqLo]).toEqual([144, 1]);
  });

  it('need an iptfs-mode SA: a tunnel-mode one throws, saying so', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    expect(() => encapsulateAggfrag(tx, Buffer.alloc(8), 0, 8, Buffer.alloc(200), 0)).toThrow(
      'SA 0x0000a5f8 is in tunnel mode; AGGFRAG payloads need iptfs',
    );
  });
});

describe('NAT-T (RFC 3948)', () => {
  const natt = { srcPort: 40001, dstPort: 4500 };

  it.each(MODES)(
    '%s mode: UDP from and to the SA’s ports, length right, checksum 0, ESP behind it',
    (mode) => {
      const { tx, rx } = saPair(saConfig('aes-gcm-16', mode, { natt }));
      const inner = udpPacket();
      const pkt = mustSeal(tx, inner);
      expect(ipv4Fields(pkt)).toMatchObject({ protocol: 17, totalLength: pkt.length, checksumOk: true });
      expect({
        srcPort: pkt.readUInt16BE(20),
        dstPort: pkt.readUInt16BE(22),
        length: pkt.readUInt16BE(24),
        checksum: pkt.readUInt16BE(26),
        spi: pkt.readUInt32BE(28),
        seq: pkt.readUInt32BE(32),
      }).toEqual({
        srcPort: 40001,
        dstPort: 4500,
        length: pkt.length - 20,
        checksum: 0,
        spi: 0xa5f8,
        seq: 1,
      });
      expect(open(sadOf(rx), pkt)).toEqual(inner);
      // The same SA without NAT-T would make the same ESP packet, 8 bytes shorter.
      const plain = mustSeal(new SecurityAssociation(saConfig('aes-gcm-16', mode)), inner);
      expect(pkt.subarray(28)).toEqual(plain.subarray(20));
    },
  );

  it('drops NAT keepalives as natt-keepalive and IKE (non-ESP marker) as not-esp', () => {
    const rx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { natt }));
    const sad = sadOf(rx);
    const out = junk(NATT_KEEPALIVE_LENGTH + 5);
    expect(writeNatKeepalive(rx, out, 5)).toBe(NATT_KEEPALIVE_LENGTH);
    const keepalive = Buffer.from(out.subarray(5));
    // IPv4 (length 29, ID 0, TTL 64, UDP), checksum, endpoints; UDP 40001 → 4500, length 9, checksum 0; 0xff.
    const want = Buffer.from('4500001d000000004011ffffc6120001c61200029c41119400090000ff', 'hex');
    want.writeUInt16BE(
      internetChecksum(Buffer.concat([want.subarray(0, 10), Buffer.alloc(2), want.subarray(12, 20)]), 0, 20),
      10,
    );
    expect(keepalive).toEqual(want);
    expect(ipv4Fields(keepalive)).toMatchObject({ totalLength: 29, protocol: 17, checksumOk: true, ttl: 64 });
    expect(open(sad, keepalive)).toBe('natt-keepalive');

    // IKE_SA_INIT on port 4500: four zero bytes, then the IKE header (RFC 3948 §2.2).
    const ike = Buffer.from(keepalive.subarray(0, 28));
    const ikeMessage = Buffer.concat([
      Buffer.alloc(4),
      Buffer.from('0011223344556677000000000000000021202208000000000000001c', 'hex'),
    ]);
    const ikePkt = Buffer.concat([ike, ikeMessage]);
    ikePkt.writeUInt16BE(ikePkt.length, 2);
    ikePkt.writeUInt16BE(8 + ikeMessage.length, 24);
    expect(open(sad, ikePkt)).toBe('not-esp');
    const stage = new EspDecapStage([rx]);
    expect(runOnce(stage, rawPacket(ikePkt)).emitted.map((p) => p.data)).toEqual([ikePkt]);
    expect(runOnce(stage, rawPacket(keepalive)).dropped).toEqual(['natt-keepalive']);

    // UDP ESP on a port no SA uses is not ESP for this node.
    const tx = new SecurityAssociation(
      saConfig('aes-gcm-16', 'tunnel', { natt: { srcPort: 4500, dstPort: 4501 } }),
    );
    expect(open(sad, mustSeal(tx, udpPacket()))).toBe('not-esp');
  });
});

describe('ECN on decapsulation (RFC 6040 §4.2, Figure 4)', () => {
  const NOT_ECT = 0;
  const ECT1 = 1;
  const ECT0 = 2;
  const CE = 3;
  // Rows: arriving inner header; columns: arriving outer header Not-ECT, ECT(0), ECT(1), CE.
  const TABLE: [number, (number | 'drop')[]][] = [
    [NOT_ECT, [NOT_ECT, NOT_ECT, NOT_ECT, 'drop']],
    [ECT0, [ECT0, ECT0, ECT1, CE]],
    [ECT1, [ECT1, ECT1, ECT1, CE]],
    [CE, [CE, CE, CE, CE]],
  ];
  const OUTER = [NOT_ECT, ECT0, ECT1, CE];
  const cells = TABLE.flatMap(([inner, row]) =>
    row.map((result, i) => ({ inner, outer: OUTER[i]!, result })),
  );

  it.each(cells)(
    'inner IPv4 $inner, outer $outer → $result, inner checksum still valid',
    ({ inner, outer, result }) => {
      const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
      const innerPkt = udpPacket({ tos: (46 << 2) | inner });
      const pkt = withOuterEcn(mustSeal(tx, innerPkt), outer);
      const got = open(sadOf(rx), pkt);
      if (result === 'drop') {
        expect(got).toBe('ecn-not-ect');
        return;
      }
      const want = Buffer.from(innerPkt);
      want[1] = (46 << 2) | result;
      want.writeUInt16BE(0, 10);
      want.writeUInt16BE(internetChecksum(want, 0, 20), 10);
      expect(got).toEqual(want);
      expect(checksumVerifies(got as Buffer, 0, 20)).toBe(true);
    },
  );

  it.each(cells)('inner IPv6 $inner, outer $outer → $result', ({ inner, outer, result }) => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
    const tc = (46 << 2) | inner;
    const innerPkt = ipv6Packet(16, tc);
    const pkt = withOuterEcn(mustSeal(tx, innerPkt), outer);
    const got = open(sadOf(rx), pkt);
    if (result === 'drop') expect(got).toBe('ecn-not-ect');
    else expect(got).toEqual(ipv6Packet(16, (46 << 2) | result));
  });
});

describe('tunnel mode with an inner IPv6 packet', () => {
  it.each(['aes-gcm-16', 'aes-cbc-hmac-sha1-96', 'null'] as SuiteName[])(
    '%s: Next Header 41, traffic class in the outer TOS, the packet back byte for byte',
    (suite) => {
      const { tx, rx } = saPair(saConfig(suite, 'tunnel'));
      const inner = ipv6Packet(33, 0xb8 | 1);
      const pkt = mustSeal(tx, inner);
      expect(ipv4Fields(pkt)).toMatchObject({
        protocol: 50,
        dscp: 0xb8 >> 2,
        ecn: 1,
        flags: 0,
        checksumOk: true,
      });
      expect(plaintextOf(rx, pkt)).toEqual(paddedPlaintext(inner, SUITES[suite].blockSize, 41));
      expect(open(sadOf(rx), pkt)).toEqual(inner);
    },
  );

  it('sets DF on the outer header only when the policy says set', () => {
    for (const [df, flags] of [
      ['copy', 0],
      ['set', 0b010],
      ['clear', 0],
    ] as const) {
      const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { tunnel: { ...TUNNEL, df } }));
      expect(ipv4Fields(mustSeal(tx, ipv6Packet())).flags).toBe(flags);
    }
  });

  it('refuses an IPv6 packet longer than the bytes given', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    expect(seal(tx, ipv6Packet().subarray(0, 60))).toBe('malformed-inner');
    expect(seal(tx, ipv6Packet().subarray(0, 39))).toBe('malformed-inner');
  });
});

describe('telescopes (IPpriv): three SAs in one call, peeled one node at a time', () => {
  const NODES = { A: '198.18.0.10', B: '198.18.0.20', C: '198.18.0.30' } as const;
  const configs: Record<keyof typeof NODES, SaConfig> = {
    A: saConfig('aes-gcm-16', 'tunnel', {
      spi: 0xa,
      ...keysFor('aes-gcm-16', 1),
      tunnel: { src: '198.18.0.1', dst: NODES.A },
    }),
    B: saConfig('chacha20-poly1305', 'tunnel', {
      spi: 0xb,
      ...keysFor('chacha20-poly1305', 2),
      tunnel: { src: '198.18.0.1', dst: NODES.B },
    }),
    C: saConfig('aes-cbc-hmac-sha256-128', 'tunnel', {
      spi: 0xc,
      ...keysFor('aes-cbc-hmac-sha256-128', 3),
      tunnel: { src: '198.18.0.1', dst: NODES.C },
    }),
  };
  /** Sender's SAs innermost first: the source wraps for C, then B, then A (the first hop). */
  const sender = () =>
    new TelescopeEncapsulator(['C', 'B', 'A'].map((n) => new SecurityAssociation(configs[n as 'A'])));
  const wrap = (t: TelescopeEncapsulator, inner: Buffer) => {
    const n = t.wrap(inner, 0, inner.length);
    if (typeof n === 'string') throw new Error(`telescope refused: ${n}`);
    return Buffer.from(t.result.subarray(t.headroom, t.headroom + n));
  };

  it('each node knows only its own SA, and what it gets out is ESP for the next node', () => {
    const inner = udpPacket();
    const onion = wrap(sender(), inner);
    const node = (name: 'A' | 'B' | 'C') => sadOf(new SecurityAssociation(configs[name]));
    const a = node('A');
    const b = node('B');
    const c = node('C');
    expect(ipv4Fields(onion)).toMatchObject({ protocol: 50, dst: parseIpv4(NODES.A), checksumOk: true });
    expect(u32(onion, 20)).toBe(0xa);
    // B and C cannot open the outer layer: it is not for them.
    expect(open(b, onion)).toBe('unknown-spi');
    expect(open(c, onion)).toBe('unknown-spi');

    const forB = open(a, onion) as Buffer;
    expect(ipv4Fields(forB)).toMatchObject({ protocol: 50, dst: parseIpv4(NODES.B), checksumOk: true });
    expect(u32(forB, 20)).toBe(0xb);
    expect(open(a, forB)).toBe('unknown-spi');

    const forC = open(b, forB) as Buffer;
    expect(ipv4Fields(forC)).toMatchObject({ protocol: 50, dst: parseIpv4(NODES.C), checksumOk: true });
    expect(u32(forC, 20)).toBe(0xc);

    expect(open(c, forC)).toEqual(inner);
    // Each layer adds its own overhead, outermost last.
    expect(onion.length).toBeGreaterThan(forB.length);
    expect(forB.length).toBeGreaterThan(forC.length);
    expect(forC.length).toBeGreaterThan(inner.length);
  });

  it('a decapsulation stage holding all three SAs peels all three at once; holding one, peels one', () => {
    const t = sender();
    const all = new EspDecapStage(['A', 'B', 'C'].map((n) => new SecurityAssociation(configs[n as 'A'])));
    const onlyA = new EspDecapStage([new SecurityAssociation(configs.A)]);
    for (let i = 0; i < 5; i++) {
      const inner = udpPacket({ id: i });
      const onion = wrap(t, inner);
      expect(runOnce(all, rawPacket(onion)).emitted.map((p) => p.data)).toEqual([inner]);
      const peeled = runOnce(onlyA, rawPacket(onion)).emitted;
      expect(peeled).toHaveLength(1);
      expect(u32(peeled[0]!.data, 20)).toBe(0xb);
    }
    expect(all.stats()).toMatchObject({ packetsIn: 5, packetsOut: 5, layersRemoved: 15, dropped: {} });
    expect(onlyA.stats()).toMatchObject({ packetsIn: 5, packetsOut: 5, layersRemoved: 5, dropped: {} });
  });

  it('stops at the layer that refuses, and no SA after it spends a sequence number', () => {
    const sas = ['C', 'B', 'A'].map((n) => new SecurityAssociation(configs[n as 'A']));
    const t = new TelescopeEncapsulator(sas);
    // Fits one layer of CBC-HMAC under 65535 bytes but not two more.
    const big = udpPacket({ payload: Buffer.alloc(65535 - 28 - 100, 1) });
    expect(t.wrap(big, 0, big.length)).toBe('too-big');
    expect(sas.map((sa) => sa.nextSeq)).toEqual([2n, 1n, 1n]);
    expect(() => new TelescopeEncapsulator([])).toThrow('a telescope needs at least one SA');
  });
});

describe.each(SUITE_NAMES.flatMap((suite) => MODES.map((mode) => ({ suite, mode }))))(
  'junk-filled buffers at odd offsets: $suite $mode',
  ({ suite, mode }) => {
    // A fixed first IV makes CBC's first packet as repeatable as the counter suites'.
    const config = (): SaConfig =>
      saConfig(suite, mode as EspMode, {
        iv: SUITES[suite].ivLength === 16 ? Buffer.alloc(16, 0x42) : undefined,
      });

    it('encapsulate writes exactly its packet, from and to odd offsets', () => {
      const inner = udpPacket();
      const want = mustSeal(new SecurityAssociation(config()), inner);
      const src = Buffer.concat([junk(3), inner, junk(5)]);
      const out = junk(want.length + 20);
      const n = encapsulate(new SecurityAssociation(config()), src, 3, inner.length, out, 7);
      expect(n).toBe(want.length);
      expect(out.subarray(7, 7 + want.length)).toEqual(want);
      expect(out.subarray(0, 7)).toEqual(junk(7));
      expect(out.subarray(7 + want.length)).toEqual(junk(13));
      expect(src).toEqual(Buffer.concat([junk(3), inner, junk(5)]));
    });

    it('decapsulate reads from and writes to odd offsets, leaving what is before them alone', () => {
      const inner = udpPacket();
      const pkt = mustSeal(new SecurityAssociation(config()), inner);
      const src = Buffer.concat([junk(5), pkt, junk(3)]);
      const out = junk(pkt.length + 40);
      const n = decapsulate(
        sadOf(new SecurityAssociation(config())),
        src,
        5,
        pkt.length,
        out,
        9,
        newDecapInfo(),
      );
      expect(n).toBe(inner.length);
      expect(out.subarray(9, 9 + inner.length)).toEqual(inner);
      expect(out.subarray(0, 9)).toEqual(junk(9));
      expect(src).toEqual(Buffer.concat([junk(5), pkt, junk(3)]));
    });
  },
);

describe('decapsulate refuses what cannot be its ESP', () => {
  it('outer fragments, bad IHL, other protocols, unknown SPIs, CBC data that is not whole blocks', () => {
    const { tx, rx } = saPair(saConfig('aes-cbc-hmac-sha1-96', 'tunnel'));
    const sad = sadOf(rx);
    const pkt = mustSeal(tx, udpPacket());
    const variant = (edit: (b: Buffer) => void): DecapDrop | Buffer => {
      const b = Buffer.from(pkt);
      edit(b);
      return open(sad, b);
    };
    expect(variant((b) => b.writeUInt16BE(0x2000, 6))).toBe('fragment');
    expect(variant((b) => b.writeUInt16BE(0x0001, 6))).toBe('fragment');
    expect(variant((b) => (b[0] = 0x44))).toBe('malformed');
    expect(variant((b) => b.writeUInt16BE(19, 2))).toBe('malformed');
    expect(variant((b) => (b[9] = 51))).toBe('not-esp');
    expect(variant((b) => (b[0] = 0x65))).toBe('not-esp');
    expect(variant((b) => b.writeUInt32BE(0xa5f9, 20))).toBe('unknown-spi');
    // 12 bytes fewer: the ciphertext is no longer whole 16-byte blocks.
    const short = Buffer.from(pkt.subarray(0, pkt.length - 12));
    short.writeUInt16BE(short.length, 2);
    expect(open(sad, short)).toBe('malformed');
    // None of it moved the window: the packet itself is still accepted.
    expect(open(sad, pkt)).toEqual(udpPacket());
  });

  it('authentic packets whose padding is not 1, 2, 3, … or too long are bad-padding, and leave the window', () => {
    // null-hmac keeps the trailer in clear, so a sender that pads wrongly can be imitated: change the
    // trailer, then compute the ICV again with the SA's own key.
    const { tx, rx } = saPair(saConfig('null-hmac-sha256-128', 'tunnel'));
    const inner = udpPacket(); // 59 bytes: padding 1 2 3, pad length 3, Next Header 4
    const genuine = mustSeal(tx, inner);
    const icvOff = genuine.length - 16;
    const trailer = icvOff - 2;
    expect(genuine.subarray(trailer - 3, icvOff)).toEqual(Buffer.from([1, 2, 3, 3, 4]));
    const resigned = (edit: (b: Buffer) => void) => {
      const b = Buffer.from(genuine);
      edit(b);
      tx.keys.mac!.compute(b.subarray(20, icvOff), new Uint8Array(0), b.subarray(icvOff));
      return b;
    };
    expect(
      open(
        sadOf(rx),
        resigned(() => {}),
      ),
    ).toEqual(inner); // re-signing alone changes nothing
    const cases = [
      resigned((b) => (b[trailer - 2] = 7)), // 1 7 3
      resigned((b) => (b[trailer - 3] = 0)), // 0 2 3
      resigned((b) => (b[trailer] = 2)), // pad length 2: 2 3 ≠ 1 2
      resigned((b) => (b[trailer] = 200)), // longer than the payload
    ];
    // A fresh receiver per case: each packet carries sequence number 1.
    for (const pkt of cases) {
      const receiver = new SecurityAssociation(saConfig('null-hmac-sha256-128', 'tunnel'));
      expect(open(sadOf(receiver), pkt)).toBe('bad-padding');
      expect([receiver.replay!.topLo, receiver.packets]).toEqual([0, 0]);
      expect(open(sadOf(receiver), genuine)).toEqual(inner);
    }
  });

  it('transport mode refuses a tunnelled packet (Next Header 4) and tunnel mode a transport one', () => {
    const inner = udpPacket();
    const tunnelTx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    const transportRx = new SecurityAssociation(saConfig('aes-gcm-16', 'transport'));
    expect(open(sadOf(transportRx), mustSeal(tunnelTx, inner))).toBe('unexpected-next-header');
    const transportTx = new SecurityAssociation(saConfig('aes-gcm-16', 'transport', { spi: 7 }));
    const tunnelRx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { spi: 7 }));
    expect(open(sadOf(tunnelRx), mustSeal(transportTx, inner))).toBe('unexpected-next-header');
  });

  it('an output buffer too small for the plaintext is too-big, not a throw', () => {
    const { tx, rx } = saPair(saConfig('aes-gcm-16', 'tunnel'));
    const pkt = mustSeal(tx, udpPacket());
    const out = Buffer.alloc(10);
    expect(
      decapsulate(new SecurityAssociationDatabase([rx]), pkt, 0, pkt.length, out, 0, newDecapInfo()),
    ).toBe('too-big');
    // Refused before the ICV, so the window did not move and the packet is still good.
    expect(open(sadOf(rx), pkt)).toEqual(udpPacket());
  });

  it('needs room for the ICV behind the plaintext only where an AEAD opens it there', () => {
    const inner = udpPacket();
    for (const [suite, icvRoom] of [
      ['aes-gcm-16', 16],
      ['chacha20-poly1305', 16],
      ['aes-cbc-hmac-sha256-128', 0],
      ['null-hmac-sha256-128', 0],
    ] as const) {
      const { tx, rx } = saPair(saConfig(suite, 'tunnel'));
      const pkt = mustSeal(tx, inner);
      const dataLength =
        pkt.length - IPV4_HEADER_LENGTH - ESP_HEADER_LENGTH - rx.suite.ivLength - rx.suite.icvLength;
      const exact = dataLength + icvRoom;
      const short = Buffer.alloc(exact - 1);
      const sad = new SecurityAssociationDatabase([rx]);
      expect(decapsulate(sad, pkt, 0, pkt.length, short, 0, newDecapInfo()), suite).toBe('too-big');
      const out = Buffer.alloc(exact);
      expect(decapsulate(sad, pkt, 0, pkt.length, out, 0, newDecapInfo()), suite).toBe(inner.length);
      expect(out.subarray(0, inner.length), suite).toEqual(inner);
    }
  });
});
