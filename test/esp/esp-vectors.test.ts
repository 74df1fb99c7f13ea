/**
 * Whole-packet known-answer tests of the ESP engine: the published packets are produced byte for byte by
 * `encapsulate` and opened by `decapsulate`, on every crypto backend that offers the suite. The crypto
 * primitives alone are tested in crypto-backends.test.ts; these catch framing bugs (AAD order with ESN,
 * padding, IV placement, headers).
 */
import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../src/codec/checksum.js';
import type { BackendName } from '../../src/esp/crypto/backend.js';
import { availableBackends } from '../../src/esp/crypto/select.js';
import { type DecapInfo, decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { encapsulate } from '../../src/esp/encapsulate.js';
import { type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import { junk } from '../helpers/bytes.js';
import { readVectors } from '../helpers/vectors.js';

interface McGrewVector {
  id: string;
  algorithm: string;
  key: string;
  salt: string;
  iv: string;
  spi: string;
  seq: string;
  esn: boolean;
  plaintext: string;
  packet_out: string;
  icv_len: number;
  trailer: { pad_length: number; next_header: number };
}
interface ChachaVector {
  id: string;
  keymat_key_then_salt?: string;
  iv: string;
  spi: string;
  seq: string;
  esn: boolean;
  plaintext_breakdown?: { inner_ipv4_packet: string };
  esp_packet_derived?: string;
}
interface CbcVector {
  id: string;
  key: string;
  spi: string;
  seq: string;
  iv: string;
  payload: string;
  next_header: number;
  esp_packet: string;
  packet_in?: string;
  packet_out?: string;
  outer_ipv4_header?: string;
}

const mcgrew = readVectors<{ vectors: McGrewVector[] }>('gcm-esp-mcgrew.json').vectors;
const rfc7634 = readVectors<{ vectors: ChachaVector[] }>('chacha20poly1305-esp-rfc7634.json').vectors;
const rfc3602 = readVectors<{ vectors: CbcVector[] }>('aes-cbc-esp-rfc3602.json').vectors;

/** Backends that can key `suite` (null when `keySuite` refuses, e.g. sodium for AES-GCM). */
function backendsFor(config: Omit<SaConfig, 'backend'>): BackendName[] {
  return availableBackends()
    .map((b) => b.name)
    .filter((name) => {
      try {
        new SecurityAssociation({ ...config, backend: name });
        return true;
      } catch {
        return false;
      }
    });
}

/** A minimal IPv4 header for transport-mode vectors whose original header was not published. */
function ipv4Header(protocol: number, payloadLength: number): Buffer {
  const h = Buffer.from('45000000000000004000000cc6336405c0000205', 'hex');
  h.writeUInt16BE(20 + payloadLength, 2);
  h[9] = protocol;
  h.writeUInt16BE(0, 10);
  h.writeUInt16BE(internetChecksum(h, 0, 20), 10);
  return h;
}

/** Splits a 64-bit sequence number given as 8 or 4 bytes of hex. */
function seqOf(hexSeq: string): bigint {
  return BigInt(`0x${hexSeq}`);
}

/**
 * A receiver that has seen everything up to seq − 1, so the SeqHi of `seq` is inferred as the sender had it
 * (a fresh window infers SeqHi = 0; RFC 4303 Appendix A).
 */
function primedReceiver(config: SaConfig, seq: bigint): SecurityAssociation {
  const sa = new SecurityAssociation(config);
  if (seq > 1n) sa.replay!.update(Number((seq - 1n) >> 32n), Number((seq - 1n) & 0xffffffffn));
  return sa;
}

function decapOne(
  sa: SecurityAssociation,
  packet: Buffer,
): { n: number | string; out: Buffer; info: DecapInfo } {
  const out = junk(packet.length + 64);
  const info = newDecapInfo();
  const n = decapsulate(new SecurityAssociationDatabase([sa]), packet, 0, packet.length, out, 3, info);
  return { n, out: out.subarray(3, 3 + (typeof n === 'number' ? n : 0)), info };
}

/** Lowercase hex of bytes. */
function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function gcmSuite(icvLength: number): SuiteName {
  return `aes-gcm-${icvLength}` as SuiteName;
}

describe('draft-mcgrew-gcm-test-01 AES-GCM ESP packets (RFC 4106), transport mode', () => {
  // mcgrew-15 is AES-GMAC (RFC 4543, integrity only): not a suite pktveil offers.
  const cases = mcgrew.filter((v) => v.algorithm === 'AES-GCM-ESP');
  it('covers the 16 AES-GCM packets, 11 of them with ESN', () => {
    expect(cases).toHaveLength(16);
    expect(cases.filter((v) => v.esn)).toHaveLength(11);
  });

  for (const v of cases) {
    const seq = seqOf(v.seq);
    const plaintext = Buffer.from(v.plaintext, 'hex');
    const payload = plaintext.subarray(0, plaintext.length - 2 - v.trailer.pad_length);
    const config: SaConfig = {
      spi: Number.parseInt(v.spi, 16),
      mode: 'transport',
      suite: gcmSuite(v.icv_len),
      encKey: Buffer.from(v.key + v.salt, 'hex'),
      esn: v.esn,
      seq,
      iv: Buffer.from(v.iv, 'hex'),
      replayWindow: 64,
    };
    for (const backend of backendsFor(config)) {
      it(`${v.id} (${v.key.length * 4}-bit key${v.esn ? ', ESN' : ''}) on ${backend}`, () => {
        const inner = Buffer.concat([ipv4Header(v.trailer.next_header, payload.length), payload]);
        const tx = new SecurityAssociation({ ...config, backend });
        const out = junk(inner.length + 128);
        const n = encapsulate(tx, inner, 0, inner.length, out, 5);
        expect(typeof n).toBe('number');
        const packet = out.subarray(5, 5 + (n as number));
        expect(hex(packet.subarray(20))).toBe(v.packet_out);
        expect(packet.readUInt16BE(2)).toBe(packet.length);
        expect(packet[9]).toBe(50);

        const rx = primedReceiver({ ...config, backend }, seq);
        const got = decapOne(rx, Buffer.from(packet));
        expect(got.n).toBe(inner.length);
        expect(hex(got.out)).toBe(hex(inner));
        expect(got.info.seqHi).toBe(Number(seq >> 32n));
      });
    }
  }
});

describe('RFC 7634 Appendix A: ChaCha20-Poly1305 ESP, tunnel mode', () => {
  const v = rfc7634.find((x) => x.id === 'rfc7634-appA-esp')!;
  const inner = Buffer.from(v.plaintext_breakdown!.inner_ipv4_packet, 'hex');
  const config: SaConfig = {
    spi: Number.parseInt(v.spi, 16),
    mode: 'tunnel',
    suite: 'chacha20-poly1305',
    encKey: Buffer.from(v.keymat_key_then_salt!, 'hex'),
    seq: seqOf(v.seq),
    iv: Buffer.from(v.iv, 'hex'),
    tunnel: { src: '198.18.0.1', dst: '198.18.0.2' },
  };
  it('is offered by sodium, node and noble here', () => {
    expect(backendsFor(config).sort()).toEqual(['noble', 'node', 'sodium']);
  });
  for (const backend of backendsFor(config)) {
    it(`encapsulates to the RFC's ESP packet and back on ${backend}`, () => {
      const tx = new SecurityAssociation({ ...config, backend });
      const out = junk(512);
      const n = encapsulate(tx, inner, 0, inner.length, out, 0) as number;
      expect(hex(out.subarray(20, n))).toBe(v.esp_packet_derived);
      const got = decapOne(new SecurityAssociation({ ...config, backend }), Buffer.from(out.subarray(0, n)));
      expect(hex(got.out)).toBe(hex(inner));
    });
  }
});

describe('RFC 3602 §4 cases 5-8: AES-CBC ESP without integrity', () => {
  const cases = rfc3602.filter((v) => v.esp_packet !== undefined);
  it('has the four whole-packet cases', () =>
    expect(cases.map((v) => v.id)).toEqual([
      'rfc3602-case5',
      'rfc3602-case6',
      'rfc3602-case7',
      'rfc3602-case8',
    ]));

  for (const v of cases) {
    const tunnel = v.next_header === 4;
    const config: SaConfig = {
      spi: Number.parseInt(v.spi, 16),
      mode: tunnel ? 'tunnel' : 'transport',
      suite: 'aes-cbc',
      encKey: Buffer.from(v.key, 'hex'),
      seq: seqOf(v.seq),
      iv: Buffer.from(v.iv, 'hex'),
      tunnel: tunnel ? { src: '192.168.123.3', dst: '192.168.123.200' } : null,
    };
    const payload = Buffer.from(v.payload, 'hex');
    // Cases 6 and 8 come without their IP headers: wrap them in one so the engine sees an IP packet.
    const inner = v.packet_in
      ? Buffer.from(v.packet_in, 'hex')
      : tunnel
        ? payload
        : Buffer.concat([ipv4Header(v.next_header, payload.length), payload]);
    for (const backend of backendsFor(config)) {
      it(`${v.id} on ${backend}`, () => {
        const tx = new SecurityAssociation({ ...config, backend });
        if (v.outer_ipv4_header) tx.ipId = Buffer.from(v.outer_ipv4_header, 'hex').readUInt16BE(4);
        const out = junk(512);
        const n = encapsulate(tx, inner, 0, inner.length, out, 0) as number;
        const ihl = tunnel ? 20 : (inner[0]! & 15) * 4;
        expect(hex(out.subarray(ihl, n))).toBe(v.esp_packet);
        if (v.packet_out) expect(hex(out.subarray(0, n))).toBe(v.packet_out);
        const got = decapOne(
          new SecurityAssociation({ ...config, backend }),
          Buffer.from(out.subarray(0, n)),
        );
        expect(hex(got.out)).toBe(hex(inner));
      });
    }
  }
});

describe('suite table', () => {
  it('frames every suite the SA file contract names', () => {
    for (const name of [
      'aes-gcm-16',
      'aes-gcm-12',
      'aes-gcm-8',
      'chacha20-poly1305',
      'aes-cbc-hmac-sha1-96',
      'aes-cbc-hmac-sha256-128',
      'null-hmac-sha256-128',
      'null',
    ])
      expect(SUITES[name as SuiteName]?.name).toBe(name);
  });
});
