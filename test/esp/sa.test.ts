/**
 * The security association: configuration errors and their messages, outbound sequence numbers (start,
 * exhaustion with and without ESN, cycling without anti-replay), lifetimes, and the IVs it hands out.
 */
import { describe, expect, it } from 'vitest';
import { decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { encapsulateDummy } from '../../src/esp/encapsulate.js';
import { type SaConfig, type SaEvent, SecurityAssociation } from '../../src/esp/sa.js';
import { SUITES, type SuiteName } from '../../src/esp/suites.js';
import {
  espOffset,
  keysFor,
  mustSeal,
  open,
  SUITE_NAMES,
  saConfig,
  sadOf,
  saPair,
  seal,
  u32,
  udpPacket,
} from './engine-fixtures.js';

const TWO_32 = 0x1_0000_0000;
const SPI_TEXT = 'SA 0x0000a5f8';

/** Events an SA raises, as plain values with the packet count at the time. */
function recordEvents(sa: SecurityAssociation): { type: string; limit?: string; packets: number }[] {
  const events: { type: string; limit?: string; packets: number }[] = [];
  sa.onEvent = (e: SaEvent) => {
    expect(e.sa).toBe(sa);
    events.push({ type: e.type, ...('limit' in e ? { limit: e.limit } : {}), packets: sa.packets });
  };
  return events;
}

function seqOf(pkt: Buffer): number {
  return u32(pkt, espOffset(pkt) + 4);
}

function ivOf(pkt: Buffer, suite: SuiteName): string {
  const off = espOffset(pkt) + 8;
  return pkt.subarray(off, off + SUITES[suite].ivLength).toString('hex');
}

describe('SecurityAssociation configuration errors', () => {
  const base = saConfig('aes-gcm-16', 'tunnel');
  const make = (overrides: Partial<SaConfig>) => () => new SecurityAssociation({ ...base, ...overrides });

  it('refuses SPI 0 and anything that is not a 32-bit integer', () => {
    for (const spi of [0, -1, 1.5, TWO_32, Number.NaN])
      expect(make({ spi })).toThrow(`SA spi ${spi}: give an integer 1..0xffffffff (0 is reserved)`);
    expect(new SecurityAssociation({ ...base, spi: 1 }).spi).toBe(1);
    expect(new SecurityAssociation({ ...base, spi: 0xffffffff }).spi).toBe(0xffffffff);
  });

  it('refuses an unknown suite, listing the known ones', () => {
    expect(make({ suite: 'aes-ccm-16' as SuiteName })).toThrow(
      `${SPI_TEXT}: unknown suite "aes-ccm-16"; use one of ${SUITE_NAMES.join(', ')}`,
    );
  });

  // The messages name the suite, the length given and every length allowed.
  const encKeyRules: Record<SuiteName, { allowed: number[]; message: (n: number) => string }> = {
    'aes-gcm-16': gcm('aes-gcm-16'),
    'aes-gcm-12': gcm('aes-gcm-12'),
    'aes-gcm-8': gcm('aes-gcm-8'),
    'chacha20-poly1305': {
      allowed: [36],
      message: (n) =>
        `chacha20-poly1305: encryption keying material is ${n} bytes; allowed: 36 (a key of 32 bytes followed by the 4-byte salt)`,
    },
    'aes-cbc-hmac-sha1-96': cbc('aes-cbc-hmac-sha1-96'),
    'aes-cbc-hmac-sha256-128': cbc('aes-cbc-hmac-sha256-128'),
    'aes-cbc': cbc('aes-cbc'),
    'null-hmac-sha256-128': none('null-hmac-sha256-128'),
    null: none('null'),
  };
  function gcm(name: SuiteName) {
    return {
      allowed: [20, 28, 36],
      message: (n: number) =>
        `${name}: encryption keying material is ${n} bytes; allowed: 20, 28 or 36 (a key of 16, 24 or 32 bytes followed by the 4-byte salt)`,
    };
  }
  function cbc(name: SuiteName) {
    return {
      allowed: [16, 24, 32],
      message: (n: number) => `${name}: encryption key is ${n} bytes; allowed: 16, 24 or 32`,
    };
  }
  function none(name: SuiteName) {
    return {
      allowed: [0],
      message: (n: number) =>
        `${name}: encryption key is ${n} bytes; allowed: 0 (this suite does not encrypt)`,
    };
  }

  it.each(SUITE_NAMES)(
    '%s: every encryption key length from 0 to 40 is accepted or refused by name',
    (suite) => {
      const rule = encKeyRules[suite];
      for (let n = 0; n <= 40; n++) {
        const config = { ...saConfig(suite, 'tunnel'), encKey: new Uint8Array(n).fill(7) };
        if (rule.allowed.includes(n)) expect(new SecurityAssociation(config).suite.name).toBe(suite);
        else expect(() => new SecurityAssociation(config)).toThrow(rule.message(n));
      }
    },
  );

  it.each(SUITE_NAMES)(
    '%s: an integrity key where there must be one, and none where there must not',
    (suite) => {
      const s = SUITES[suite];
      const config = saConfig(suite, 'tunnel');
      if (s.hmac) {
        const recommended = s.hmac === 'sha1' ? '20 (RFC 2404)' : '32 (RFC 4868)';
        expect(() => new SecurityAssociation({ ...config, authKey: new Uint8Array(0) })).toThrow(
          `${suite}: integrity key is 0 bytes; allowed: any length above 0 (recommended: ${recommended})`,
        );
        expect(() => new SecurityAssociation({ ...config, authKey: undefined })).toThrow(
          `${suite}: integrity key is 0 bytes`,
        );
        // Any length above 0 works, shorter and longer than the block alike.
        for (const n of [1, 20, 32, 64, 100])
          expect(new SecurityAssociation({ ...config, authKey: new Uint8Array(n) }).suite.name).toBe(suite);
      } else {
        const why =
          s.kind === 'aead' ? 'an AEAD suite authenticates with its encryption key' : 'no integrity';
        expect(() => new SecurityAssociation({ ...config, authKey: new Uint8Array(20) })).toThrow(
          `${suite}: integrity key is 20 bytes; allowed: 0 (${why})`,
        );
      }
    },
  );

  it('refuses an IV whose length is not the suite’s, and takes an empty one as none', () => {
    expect(make({ iv: new Uint8Array(4) })).toThrow(`${SPI_TEXT}: iv has 4 bytes; aes-gcm-16 uses 8`);
    expect(make({ iv: new Uint8Array(16) })).toThrow(`${SPI_TEXT}: iv has 16 bytes; aes-gcm-16 uses 8`);
    expect(
      () => new SecurityAssociation(saConfig('aes-cbc-hmac-sha1-96', 'tunnel', { iv: new Uint8Array(8) })),
    ).toThrow(`${SPI_TEXT}: iv has 8 bytes; aes-cbc-hmac-sha1-96 uses 16`);
    expect(() => new SecurityAssociation(saConfig('null', 'tunnel', { iv: new Uint8Array(8) }))).toThrow(
      `${SPI_TEXT}: iv has 8 bytes; null uses 0`,
    );
    expect(make({ iv: new Uint8Array(0) })().spi).toBe(0xa5f8);
  });

  it('refuses TFC padding outside tunnel mode and out of range', () => {
    for (const mode of ['transport', 'iptfs'] as const)
      expect(
        () =>
          new SecurityAssociation(
            saConfig('aes-gcm-16', mode, { tfcPadTo: 100, tunnel: { src: '198.18.0.1', dst: '198.18.0.2' } }),
          ),
      ).toThrow(`${SPI_TEXT}: tfcPadTo needs tunnel mode (the receiver strips it by the inner IP length)`);
    for (const tfcPadTo of [-1, 1.5, 65001])
      expect(make({ tfcPadTo })).toThrow(`${SPI_TEXT}: tfcPadTo ${tfcPadTo} must be 0..65000`);
    expect(make({ tfcPadTo: 65000 })().tfcPadTo).toBe(65000);
  });

  it('refuses ESN without a replay window (the high half is inferred from it)', () => {
    expect(make({ esn: true, replayWindow: 0 })).toThrow(
      `${SPI_TEXT}: esn needs anti-replay (replayWindow > 0) to infer the high half`,
    );
    expect(make({ esn: false, replayWindow: 0 })().replay).toBeNull();
  });

  it('refuses replay windows the window cannot hold', () => {
    for (const replayWindow of [1, 31, 65537, 64.5])
      expect(make({ replayWindow })).toThrow(
        `replay window size must be an integer from 32 to 65536 bits, got ${replayWindow}`,
      );
    expect(make({ replayWindow: 32 })().replay!.size).toBe(32);
  });

  it('refuses NAT-T ports outside 1..65535', () => {
    for (const [srcPort, dstPort, bad] of [
      [0, 4500, 0],
      [4500, 65536, 65536],
      [4500.5, 4500, 4500.5],
      [4500, -1, -1],
    ] as const)
      expect(make({ natt: { srcPort, dstPort } })).toThrow(`${SPI_TEXT}: natt port ${bad} must be 1..65535`);
    expect(make({ natt: { srcPort: 1, dstPort: 65535 } })().natt).toEqual({ srcPort: 1, dstPort: 65535 });
  });

  it('refuses tunnel and iptfs modes without endpoints, bad endpoints and bad TTLs', () => {
    expect(make({ tunnel: null })).toThrow(`${SPI_TEXT}: tunnel mode needs "tunnel": {"src","dst"}`);
    expect(make({ mode: 'iptfs', tunnel: undefined })).toThrow(
      `${SPI_TEXT}: iptfs mode needs "tunnel": {"src","dst"}`,
    );
    expect(make({ tunnel: { src: '198.18.0', dst: '198.18.0.2' } })).toThrow(
      'not an IPv4 address in dotted-quad form: "198.18.0"',
    );
    for (const ttl of [0, 256, 1.5])
      expect(make({ tunnel: { src: '198.18.0.1', dst: '198.18.0.2', ttl } })).toThrow(
        `${SPI_TEXT}: tunnel ttl ${ttl} must be 1..255`,
      );
  });

  it('refuses sequence numbers out of range, pointing to ESN above 2^32 − 1', () => {
    expect(make({ seq: 0 })).toThrow(`${SPI_TEXT}: seq 0 out of range 1..4294967295 (enable esn for more)`);
    expect(make({ seq: TWO_32 })).toThrow(
      `${SPI_TEXT}: seq 4294967296 out of range 1..4294967295 (enable esn for more)`,
    );
    expect(make({ seq: 1n << 64n, esn: true })).toThrow(
      `${SPI_TEXT}: seq 18446744073709551616 out of range 1..18446744073709551615`,
    );
    expect(make({ seq: TWO_32, esn: true })().nextSeq).toBe(BigInt(TWO_32));
  });

  it('refuses a mode it does not know instead of treating it as another', () => {
    // SaConfig's type forbids it, but SAs are also built from JavaScript and parsed JSON.
    expect(make({ mode: 'tunel' as SaConfig['mode'] })).toThrow(/mode/);
  });
});

describe('outbound sequence numbers', () => {
  it('start at 1 and count up by one', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    expect(tx.nextSeq).toBe(1n);
    const seqs = Array.from({ length: 5 }, () => seqOf(mustSeal(tx, udpPacket())));
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    expect(tx.nextSeq).toBe(6n);
  });

  it('without ESN: 2^32 − 1 is the last packet sent, then the SA refuses and says so once', () => {
    const config = saConfig('aes-gcm-16', 'tunnel', { seq: TWO_32 - 1 });
    const tx = new SecurityAssociation(config);
    const events = recordEvents(tx);
    const last = mustSeal(tx, udpPacket());
    expect(seqOf(last)).toBe(0xffffffff);
    expect(events).toEqual([{ type: 'sequence-exhausted', packets: 0 }]);
    expect(tx.expired).toBe(true);
    for (let i = 0; i < 3; i++) expect(seal(tx, udpPacket())).toBe('sa-expired');
    expect(events).toHaveLength(1);
    // The last packet itself is good.
    expect(open(sadOf(new SecurityAssociation(config)), last)).toEqual(udpPacket());
  });

  it('with ESN: 2^64 − 1 is the last packet sent, then the SA refuses and says so once', () => {
    const config = saConfig('aes-cbc-hmac-sha256-128', 'tunnel', { esn: true, seq: (1n << 64n) - 1n });
    const tx = new SecurityAssociation(config);
    const events = recordEvents(tx);
    expect(seqOf(mustSeal(tx, udpPacket()))).toBe(0xffffffff);
    expect(events.map((e) => e.type)).toEqual(['sequence-exhausted']);
    expect(seal(tx, udpPacket())).toBe('sa-expired');
    expect(seal(tx, udpPacket())).toBe('sa-expired');
    expect(events).toHaveLength(1);
  });

  it('with ESN: crossing 2^32 is not exhaustion', () => {
    const tx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { esn: true, seq: TWO_32 - 1 }));
    const events = recordEvents(tx);
    expect([seqOf(mustSeal(tx, udpPacket())), seqOf(mustSeal(tx, udpPacket()))]).toEqual([0xffffffff, 0]);
    expect(tx.nextSeq).toBe(BigInt(TWO_32) + 1n);
    expect(events).toEqual([]);
  });

  it('cycle past 2^32 − 1 to 1 (never 0) when anti-replay is off and ESN is not used, IVs still unique', () => {
    const config = saConfig('aes-gcm-16', 'tunnel', { replayWindow: 0, seq: TWO_32 - 2 });
    const tx = new SecurityAssociation(config);
    const events = recordEvents(tx);
    const pkts = Array.from({ length: 4 }, () => mustSeal(tx, udpPacket()));
    expect(pkts.map(seqOf)).toEqual([0xfffffffe, 0xffffffff, 1, 2]);
    // The AEAD IV counter does not follow the wrap: a repeated nonce would break GCM.
    expect(pkts.map((p) => ivOf(p, 'aes-gcm-16'))).toEqual([
      '00000000fffffffe',
      '00000000ffffffff',
      '0000000100000000',
      '0000000100000001',
    ]);
    expect(events).toEqual([]);
    const rx = new SecurityAssociation(config);
    for (const p of pkts) expect(open(sadOf(rx), p)).toEqual(udpPacket());
  });
});

describe('lifetimes', () => {
  it('raise soft then hard once each in packets, and the hard limit stops sending', () => {
    const tx = new SecurityAssociation(
      saConfig('aes-gcm-16', 'tunnel', { lifetime: { packets: { soft: 3, hard: 5 } } }),
    );
    const events = recordEvents(tx);
    const results = Array.from({ length: 8 }, () => seal(tx, udpPacket()));
    expect(results.map((r) => (typeof r === 'string' ? r : 'sent'))).toEqual([
      'sent',
      'sent',
      'sent',
      'sent',
      'sent',
      'sa-expired',
      'sa-expired',
      'sa-expired',
    ]);
    expect(events).toEqual([
      { type: 'soft-lifetime', limit: 'packets', packets: 3 },
      { type: 'hard-lifetime', limit: 'packets', packets: 5 },
    ]);
    expect(encapsulateDummy(tx, 10, Buffer.alloc(200), 0)).toBe('sa-expired');
  });

  it('raise soft then hard once each in bytes (of the packets protected), and the hard limit stops sending', () => {
    const inner = udpPacket(); // 59 bytes
    const tx = new SecurityAssociation(
      saConfig('aes-gcm-16', 'tunnel', { lifetime: { bytes: { soft: 150, hard: 300 } } }),
    );
    const events = recordEvents(tx);
    const results = Array.from({ length: 8 }, () => seal(tx, inner));
    // 59 · 3 = 177 ≥ 150; 59 · 6 = 354 ≥ 300: the packet that reaches a limit still goes.
    expect(results.map((r) => (typeof r === 'string' ? r : 'sent'))).toEqual([
      'sent',
      'sent',
      'sent',
      'sent',
      'sent',
      'sent',
      'sa-expired',
      'sa-expired',
    ]);
    expect(events).toEqual([
      { type: 'soft-lifetime', limit: 'bytes', packets: 3 },
      { type: 'hard-lifetime', limit: 'bytes', packets: 6 },
    ]);
    expect(tx.bytes).toBe(6 * inner.length);
  });

  it('count the same bytes at both ends for a packet with TFC padding', () => {
    // Byte lifetimes are configured alike on both ends; if they counted different bytes, the receiver
    // would expire (and drop traffic) while the sender still thinks the SA is young.
    const config = saConfig('aes-gcm-16', 'tunnel', { tfcPadTo: 300 });
    const { tx, rx } = saPair(config);
    const inner = udpPacket();
    expect(open(sadOf(rx), mustSeal(tx, inner))).toEqual(inner);
    expect(rx.bytes).toBe(tx.bytes);
  });

  it('count both limits independently, one event each', () => {
    const tx = new SecurityAssociation(
      saConfig('null-hmac-sha256-128', 'tunnel', {
        lifetime: { packets: { soft: 2, hard: 10 }, bytes: { soft: 200, hard: 230 } },
      }),
    );
    const events = recordEvents(tx);
    for (let i = 0; i < 6; i++) seal(tx, udpPacket());
    expect(events).toEqual([
      { type: 'soft-lifetime', limit: 'packets', packets: 2 },
      { type: 'soft-lifetime', limit: 'bytes', packets: 4 },
      { type: 'hard-lifetime', limit: 'bytes', packets: 4 },
    ]);
  });

  it('stop the receiving side too: packets past the hard limit are dropped as sa-expired', () => {
    const config = saConfig('aes-cbc-hmac-sha1-96', 'tunnel');
    const tx = new SecurityAssociation(config);
    const rx = new SecurityAssociation({ ...config, lifetime: { packets: { soft: 2, hard: 4 } } });
    const events = recordEvents(rx);
    const verdicts = Array.from({ length: 6 }, () => {
      const got = open(sadOf(rx), mustSeal(tx, udpPacket()));
      return typeof got === 'string' ? got : 'accepted';
    });
    expect(verdicts).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'sa-expired', 'sa-expired']);
    expect(events).toEqual([
      { type: 'soft-lifetime', limit: 'packets', packets: 2 },
      { type: 'hard-lifetime', limit: 'packets', packets: 4 },
    ]);
  });

  it('an SA stopped by a hard limit neither sends nor accepts', () => {
    const config = saConfig('aes-gcm-16', 'tunnel');
    const genuine = mustSeal(new SecurityAssociation(config), udpPacket());
    const sa = new SecurityAssociation({ ...config, seq: 100, lifetime: { bytes: { hard: 1 } } });
    mustSeal(sa, udpPacket());
    expect(sa.expired).toBe(true);
    expect(seal(sa, udpPacket())).toBe('sa-expired');
    const out = Buffer.alloc(200);
    expect(decapsulate(sadOf(sa), genuine, 0, genuine.length, out, 0, newDecapInfo())).toBe('sa-expired');
  });
});

describe('IVs', () => {
  describe.each(['aes-gcm-16', 'aes-gcm-8', 'chacha20-poly1305'] as SuiteName[])(
    '%s (a per-SA counter)',
    (suite) => {
      const ivs = (config: SaConfig, n: number) => {
        const tx = new SecurityAssociation(config);
        const rx = new SecurityAssociation(config);
        // With ESN the receiver must already be in the sender's epoch (as if the SA had run that long).
        if (config.esn) rx.replay!.update(Number(BigInt(config.seq ?? 1) >> 32n), 0);
        return Array.from({ length: n }, () => {
          const pkt = mustSeal(tx, udpPacket());
          // The IV in the packet is the one the nonce used: the receiver opens it.
          expect(open(sadOf(rx), pkt)).toEqual(udpPacket());
          return ivOf(pkt, suite);
        });
      };

      it('starts at the sequence number and adds one per packet', () => {
        expect(ivs(saConfig(suite, 'tunnel'), 3)).toEqual([
          '0000000000000001',
          '0000000000000002',
          '0000000000000003',
        ]);
        expect(ivs(saConfig(suite, 'tunnel', { seq: 1000 }), 2)).toEqual([
          '00000000000003e8',
          '00000000000003e9',
        ]);
        expect(ivs(saConfig(suite, 'tunnel', { esn: true, seq: BigInt(TWO_32) + 5n }), 2)).toEqual([
          '0000000100000005',
          '0000000100000006',
        ]);
      });

      it('starts at the configured IV and adds one per packet, carrying across bytes', () => {
        const iv = (hex: string) => Buffer.from(hex, 'hex');
        expect(ivs(saConfig(suite, 'tunnel', { iv: iv('facedbaddecaf888') }), 3)).toEqual([
          'facedbaddecaf888',
          'facedbaddecaf889',
          'facedbaddecaf88a',
        ]);
        expect(ivs(saConfig(suite, 'tunnel', { iv: iv('00000000fffffffe') }), 3)).toEqual([
          '00000000fffffffe',
          '00000000ffffffff',
          '0000000100000000',
        ]);
      });

      it('is distinct for every packet of a run', () => {
        const tx = new SecurityAssociation(
          saConfig(suite, 'tunnel', { iv: Buffer.from('00000000000000fa', 'hex') }),
        );
        const seen = new Set<string>();
        for (let i = 0; i < 2000; i++) seen.add(ivOf(mustSeal(tx, udpPacket()), suite));
        expect(seen.size).toBe(2000);
      });
    },
  );

  describe.each(['aes-cbc-hmac-sha1-96', 'aes-cbc-hmac-sha256-128', 'aes-cbc'] as SuiteName[])(
    '%s',
    (suite) => {
      it('uses the configured IV first, then random ones, none repeated in 10000 packets', () => {
        const first = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
        const config = saConfig(suite, 'tunnel', { iv: first });
        const tx = new SecurityAssociation(config);
        const rx = new SecurityAssociation(config);
        const inner = udpPacket();
        const ivs: string[] = [];
        for (let i = 0; i < 10_000; i++) {
          const pkt = mustSeal(tx, inner);
          ivs.push(ivOf(pkt, suite));
          if (i < 3) expect(open(sadOf(rx), pkt)).toEqual(inner);
        }
        expect(ivs[0]).toBe(first.toString('hex'));
        expect(new Set(ivs).size).toBe(10_000);
      });

      it('uses random IVs from the first packet without a configured one', () => {
        const a = new SecurityAssociation(saConfig(suite, 'tunnel'));
        const b = new SecurityAssociation(saConfig(suite, 'tunnel'));
        const ivs = [a, b, a, b].map((sa) => ivOf(mustSeal(sa, udpPacket()), suite));
        expect(new Set(ivs).size).toBe(4);
        expect(ivs).not.toContain('0'.repeat(32));
      });
    },
  );

  it('keys are copied: wiping the caller’s buffers after construction changes nothing', () => {
    const keys = keysFor('aes-gcm-16');
    const config = saConfig('aes-gcm-16', 'tunnel', { encKey: Uint8Array.from(keys.encKey) });
    const tx = new SecurityAssociation(config);
    config.encKey.fill(0);
    const pkt = mustSeal(tx, udpPacket());
    expect(open(sadOf(new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'))), pkt)).toEqual(udpPacket());
  });
});
