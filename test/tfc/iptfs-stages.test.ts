/**
 * IptfsEncapStage and IptfsDecapStage: outer packets of exactly the configured size for every suite (or a
 * configuration error naming sizes that work), the three send modes on virtual time, real-time pacing by
 * ticks, link headers kept, and the decapsulator's drops.
 */
import { describe, expect, it } from 'vitest';
import { decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { EspDecapStage, EspEncapStage } from '../../src/esp/esp-stages.js';
import { SecurityAssociation } from '../../src/esp/sa.js';
import { SUITES } from '../../src/esp/suites.js';
import type { Packet } from '../../src/packet.js';
import type { Stage } from '../../src/stages/stage.js';
import { aggfragPayloadSize, IptfsDecapStage, IptfsEncapStage } from '../../src/tfc/iptfs-stages.js';
import { ipv6Packet, runOnce, SUITE_NAMES, saConfig, sadOf, udpPacket } from '../esp/engine-fixtures.js';

const T0 = 1_700_000_000_000_000_000n;
const MS = 1_000_000n;

function iptfsPair(suite: (typeof SUITE_NAMES)[number] = 'chacha20-poly1305', natt = false) {
  const config = saConfig(suite, 'iptfs', natt ? { natt: { srcPort: 4500, dstPort: 4500 } } : {});
  return { tx: new SecurityAssociation(config), rx: new SecurityAssociation(config) };
}

function raw(data: Buffer, ts: bigint): Packet {
  return { data, ts, link: 228 };
}

/** Runs packets through a stage in virtual time the way runStage does (tick, then process), then flushes. */
function drive(stage: Stage, input: readonly Packet[]): Packet[] {
  const out: Packet[] = [];
  const emit = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
  for (const p of input) {
    stage.tick?.(p.ts, emit);
    stage.process(p, emit);
  }
  stage.flush?.(emit);
  return out;
}

describe('outer packet size', () => {
  it.each(SUITE_NAMES.flatMap((suite) => [false, true].map((natt) => ({ suite, natt }))))(
    '$suite (NAT-T $natt): every size the suite can reach comes out exact; the others name their neighbours',
    ({ suite, natt }) => {
      const { tx } = iptfsPair(suite, natt);
      const bs = SUITES[suite].blockSize;
      let reached = 0;
      for (let size = 80; size <= 1500; size++) {
        let payloadSize: number;
        try {
          payloadSize = aggfragPayloadSize(tx, size);
        } catch (err) {
          expect((err as Error).message).toMatch(/cannot be reached exactly|does not fit/);
          continue;
        }
        reached++;
        const stage = new IptfsEncapStage(
          new SecurityAssociation(
            saConfig(suite, 'iptfs', natt ? { natt: { srcPort: 4500, dstPort: 4500 } } : {}),
          ),
          {
            packetSize: size,
            mode: { kind: 'on-demand' },
          },
        );
        const [outer] = drive(stage, [raw(udpPacket(), T0)]);
        expect(outer!.data.length).toBe(size);
        expect(outer!.data.readUInt16BE(2)).toBe(size);
        expect(stage.payloadSize).toBe(payloadSize);
      }
      // One size in every block-size run works.
      expect(reached).toBeGreaterThanOrEqual(Math.floor(1420 / bs) - 1);
    },
  );

  it('names the nearest reachable sizes when the block alignment rules a size out', () => {
    const { tx } = iptfsPair('aes-cbc-hmac-sha256-128');
    // 20 outer + 8 ESP + 16 IV + 16 ICV = 60 around a ciphertext of whole 16-byte blocks.
    expect(() => aggfragPayloadSize(tx, 1000)).toThrow(
      'IP-TFS packet size 1000 cannot be reached exactly with aes-cbc-hmac-sha256-128 (its ciphertext is a multiple of 16 bytes): use 988 or 1004',
    );
    expect(aggfragPayloadSize(tx, 1004)).toBe(1004 - 60 - 2);
    expect(() => aggfragPayloadSize(tx, 64)).toThrow('does not fit');
  });

  it('needs an iptfs-mode SA and a positive rate', () => {
    const tunnel = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel'));
    expect(() => new IptfsEncapStage(tunnel, { packetSize: 1000, mode: { kind: 'on-demand' } })).toThrow(
      'SA 0x0000a5f8 is in tunnel mode; IP-TFS needs iptfs',
    );
    const { tx } = iptfsPair();
    expect(
      () => new IptfsEncapStage(tx, { packetSize: 1000, mode: { kind: 'fixed-rate', bitsPerSecond: 0 } }),
    ).toThrow('IP-TFS fixed-rate needs a positive rate in bits/s, got 0');
  });
});

describe('send modes in virtual time', () => {
  // 1000-byte packets at 8 Mbit/s: one every millisecond.
  const rate = { bitsPerSecond: 8_000_000 } as const;

  it('fixed-rate: one packet per slot from the first timestamp, never more, all-pad when idle', () => {
    const { tx, rx } = iptfsPair();
    const stage = new IptfsEncapStage(tx, { packetSize: 1000, mode: { kind: 'fixed-rate', ...rate } });
    // Ten 1400-byte packets at once need ~14 ms of tunnel; a lone packet 50 ms later.
    const burst = Array.from({ length: 10 }, (_, i) =>
      raw(udpPacket({ payload: Buffer.alloc(1372, i), id: i }), T0),
    );
    const out = drive(stage, [...burst, raw(udpPacket({ id: 99 }), T0 + 50n * MS)]);
    expect(out.map((p) => p.ts)).toEqual(out.map((_, k) => T0 + BigInt(k) * MS));
    expect(out.at(-1)!.ts).toBe(T0 + 50n * MS);
    const s = stage.stats();
    expect(s).toMatchObject({
      outerPackets: 51,
      innerPackets: 11,
      slots: 51,
      achievedRateHz: 1000,
      targetRateHz: 1000,
    });
    expect(s.allPadPackets as number).toBeGreaterThan(30);

    const decap = new IptfsDecapStage([rx]);
    const inner = drive(decap, out);
    expect(inner.map((p) => p.data)).toEqual([...burst.map((p) => p.data), udpPacket({ id: 99 })]);
  });

  it('min-rate: the same floor, and an extra packet as soon as a whole payload is queued', () => {
    const { tx } = iptfsPair();
    const stage = new IptfsEncapStage(tx, { packetSize: 1000, mode: { kind: 'min-rate', ...rate } });
    const burst = Array.from({ length: 10 }, (_, i) =>
      raw(udpPacket({ payload: Buffer.alloc(1372, i) }), T0 + 5n * MS),
    );
    const out = drive(stage, [raw(udpPacket(), T0), ...burst]);
    const atBurst = out.filter((p) => p.ts === T0 + 5n * MS);
    // ~14 kB arrive at 5 ms: all but the last partial payload leave at once, not one per millisecond.
    expect(atBurst.length).toBeGreaterThanOrEqual(13);
    for (const p of out) expect(p.data.length).toBe(1000);
    expect(stage.stats().innerPackets).toBe(11);
  });

  it('on-demand: no padding-only packets; a partial payload waits max delay, then leaves padded', () => {
    const { tx, rx } = iptfsPair();
    const stage = new IptfsEncapStage(tx, {
      packetSize: 1000,
      mode: { kind: 'on-demand' },
      maxDelayNs: 2n * MS,
    });
    const out: Packet[] = [];
    const emit = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
    stage.tick(T0, emit);
    stage.process(raw(udpPacket({ id: 1 }), T0), emit);
    stage.tick(T0 + MS, emit);
    expect(out).toHaveLength(0);
    stage.process(raw(udpPacket({ id: 2 }), T0 + MS), emit);
    stage.tick(T0 + 2n * MS - 1n, emit);
    expect(out).toHaveLength(0);
    stage.tick(T0 + 2n * MS, emit);
    // Both small packets in one outer packet, sent when the first had waited 2 ms.
    expect(out.map((p) => p.ts)).toEqual([T0 + 2n * MS]);
    stage.tick(T0 + 100n * MS, emit);
    expect(out).toHaveLength(1);
    expect(stage.stats()).toMatchObject({ allPadPackets: 0, innerPackets: 2 });
    const inner = drive(new IptfsDecapStage([rx]), out);
    expect(inner.map((p) => p.data)).toEqual([udpPacket({ id: 1 }), udpPacket({ id: 2 })]);
  });

  it('fixed-rate with max delay drops what waited too long in an overloaded tunnel', () => {
    const { tx } = iptfsPair();
    const stage = new IptfsEncapStage(tx, {
      packetSize: 1000,
      mode: { kind: 'fixed-rate', ...rate },
      maxDelayNs: 3n * MS,
    });
    const burst = Array.from({ length: 10 }, () => raw(udpPacket({ payload: Buffer.alloc(1372) }), T0));
    drive(stage, burst);
    const s = stage.stats();
    expect(s.dropped['too-late']).toBeGreaterThan(0);
    expect((s.innerPackets as number) + s.dropped['too-late']!).toBe(10);
  });
});

describe('real time', () => {
  it('sends the slots due at each tick, starting with the first tick, at the tick’s time', () => {
    const { tx } = iptfsPair();
    const stage = new IptfsEncapStage(tx, {
      packetSize: 1000,
      mode: { kind: 'fixed-rate', bitsPerSecond: 8_000_000 },
      time: 'real',
    });
    const out: Packet[] = [];
    const emit = (p: Packet) => out.push({ ...p, data: Buffer.from(p.data) });
    stage.tick(T0, emit);
    expect(out.map((p) => p.ts)).toEqual([T0]);
    stage.process(raw(udpPacket(), T0 + MS / 2n), emit);
    expect(out).toHaveLength(1); // a packet waits for its slot
    stage.tick(T0 + 3n * MS + 10n, emit);
    expect(out.map((p) => p.ts)).toEqual([T0, T0 + 3n * MS + 10n, T0 + 3n * MS + 10n, T0 + 3n * MS + 10n]);
    expect(stage.stats()).toMatchObject({ slots: 4, missedSlots: 0, innerPackets: 1 });
  });
});

describe('link headers', () => {
  it('outer packets keep the latest input’s Ethernet header (IPv4 type); inner packets come back behind the outer one’s', () => {
    const { tx, rx } = iptfsPair();
    const eth = (ip: Buffer, type: number) =>
      Buffer.concat([
        Buffer.from('020000000002020000000001', 'hex'),
        Buffer.from([type >> 8, type & 0xff]),
        ip,
      ]);
    const v6 = ipv6Packet(100);
    const input: Packet[] = [
      { data: eth(udpPacket(), 0x0800), ts: T0, link: 1 },
      { data: eth(v6, 0x86dd), ts: T0 + 1n, link: 1 },
    ];
    const stage = new IptfsEncapStage(tx, { packetSize: 500, mode: { kind: 'on-demand' } });
    const out = drive(stage, input);
    for (const p of out) {
      expect(p.link).toBe(1);
      expect(p.data.readUInt16BE(12)).toBe(0x0800);
      expect(p.data.subarray(0, 12)).toEqual(input[0]!.data.subarray(0, 12));
      expect(p.data.length).toBe(14 + 500);
    }
    const inner = drive(new IptfsDecapStage([rx]), out);
    expect(inner.map((p) => [p.link, p.data.readUInt16BE(12), p.data.subarray(14)])).toEqual([
      [1, 0x0800, udpPacket()],
      [1, 0x86dd, v6],
    ]);
  });

  it('behind a VLAN-tagged header, packets split over payloads and payloads reordered come back whole', () => {
    // Inner packets are emitted where they lie (payload, reassembly buffer, reorder slot) with the link
    // header written over the bytes in front of them: nothing of one packet may leak into another.
    const { tx, rx } = iptfsPair();
    const header = Buffer.from('0200000000020200000000018100002a0800', 'hex'); // Ethernet + 802.1Q
    const sizes = [40, 700, 1300, 90, 1400, 33, 600, 1200, 64, 999];
    const inner = sizes.map((n, i) => udpPacket({ payload: Buffer.alloc(n, i + 1), id: i }));
    const outer = drive(
      new IptfsEncapStage(tx, { packetSize: 600, mode: { kind: 'on-demand' } }),
      inner.map((p, i) => ({ data: Buffer.concat([header, p]), ts: T0 + BigInt(i), link: 1 })),
    );
    expect(outer.length).toBeGreaterThan(8);
    // Swap neighbours: every second payload waits in the reorder window for the one before it.
    const reordered = outer.map((_, i) => outer[i % 2 === 0 ? Math.min(i + 1, outer.length - 1) : i - 1]!);
    const back = drive(new IptfsDecapStage([rx]), reordered);
    expect(back.map((p) => p.data.subarray(0, header.length))).toEqual(inner.map(() => header));
    expect(back.map((p) => p.data.subarray(header.length))).toEqual(inner);
  });

  it('raw IPv6 inner packets out of a LINKTYPE_IPV4 stream come back as LINKTYPE_IPV6', () => {
    const { tx, rx } = iptfsPair();
    const out = drive(new IptfsEncapStage(tx, { packetSize: 500, mode: { kind: 'on-demand' } }), [
      raw(ipv6Packet(20), T0),
    ]);
    const [inner] = drive(new IptfsDecapStage([rx]), out);
    expect([inner!.link, inner!.data]).toEqual([229, ipv6Packet(20)]);
  });
});

describe('IptfsDecapStage drops', () => {
  it('counts ESP failures by the decapsulation’s reasons, ESP of other modes as not-iptfs, and passes non-ESP', () => {
    const { tx, rx } = iptfsPair();
    const [outer] = drive(new IptfsEncapStage(tx, { packetSize: 500, mode: { kind: 'on-demand' } }), [
      raw(udpPacket(), T0),
    ]);
    const tunnelTx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { spi: 7 }));
    const tunnelRx = new SecurityAssociation(saConfig('aes-gcm-16', 'tunnel', { spi: 7 }));
    const tunnelPkt = drive(new EspEncapStage([tunnelTx]), [raw(udpPacket(), T0)])[0]!;
    const stage = new IptfsDecapStage(sadOf(rx, tunnelRx));
    const forged = Buffer.from(outer!.data);
    forged[100]! ^= 1;
    expect(runOnce(stage, raw(forged, T0)).dropped).toEqual(['icv']);
    expect(runOnce(stage, raw(outer!.data, T0)).emitted).toHaveLength(1);
    expect(runOnce(stage, raw(outer!.data, T0)).dropped).toEqual(['replayed']);
    expect(runOnce(stage, tunnelPkt).dropped).toEqual(['not-iptfs']);
    expect(runOnce(stage, raw(udpPacket(), T0)).emitted).toHaveLength(1);
    expect(stage.stats()).toMatchObject({ passedThrough: 1, outerPackets: 1, innerPackets: 1 });
  });

  it('EspDecapStage refuses AGGFRAG payloads (they are not packets) as iptfs-payload', () => {
    const { tx, rx } = iptfsPair();
    const [outer] = drive(new IptfsEncapStage(tx, { packetSize: 500, mode: { kind: 'on-demand' } }), [
      raw(udpPacket(), T0),
    ]);
    expect(runOnce(new EspDecapStage([rx]), outer!).dropped).toEqual(['iptfs-payload']);
    // decapsulate itself hands the payload over: Next Header 144.
    const info = newDecapInfo();
    const rx2 = new SecurityAssociation(saConfig('chacha20-poly1305', 'iptfs'));
    expect(
      typeof decapsulate(sadOf(rx2), outer!.data, 0, outer!.data.length, Buffer.alloc(600), 0, info),
    ).toBe('number');
    expect(info.nextHeader).toBe(144);
  });
});
