import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { deriveAnonKeys, keysFor } from '../../src/anonymity-layer/keys.js';
import { AnonReceiver } from '../../src/anonymity-layer/receiver.js';
import type { AnonSession } from '../../src/anonymity-layer/session.js';
import { sidHi, sidLo } from '../../src/anonymity-layer/sid.js';
import { Ipv4Flags, Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { junk } from '../helpers/bytes.js';
import { send } from './endpoints.js';

const keys = deriveAnonKeys(Buffer.from('receiver tests: the shared secret'));
const BROADCAST = parseIpv4('198.18.0.255');

/** The anonymity-layer packet behind an IPv4 header from the subnet's broadcast address. */
function ipv4(anon: Buffer, o: { protocol?: number; options?: Buffer; flags?: number; frag?: number } = {}) {
  const repr = new Ipv4Repr({
    id: 0x1234,
    ttl: 64,
    protocol: o.protocol ?? 253,
    src: BROADCAST,
    dst: BROADCAST,
    options: o.options,
    flags: o.flags ?? Ipv4Flags.DF,
    fragOffset: o.frag ?? 0,
    payloadLength: anon.length,
  });
  const buf = junk(repr.encodedLength + anon.length);
  repr.encodeInto(buf, 0);
  anon.copy(buf, repr.encodedLength);
  return buf;
}

/** A host with a responder that has had first contact, and the initiator that made it. */
function established(host = new AnonReceiver()): { host: AnonReceiver; i: AnonSession; r: AnonSession } {
  const other = new AnonReceiver();
  const i = other.initiator({ keys: keysFor(keys, 'initiator'), firstSid: keys.rendezvousSid });
  const r = host.responder({ keys: keysFor(keys, 'responder'), firstSid: keys.rendezvousSid });
  return { host, i, r };
}

const transport = (host: AnonReceiver): string => {
  const d = host.delivered;
  return d.buffer.toString('latin1', d.transportOffset, d.transportOffset + d.transportLength);
};

describe('AnonReceiver', () => {
  it('hands back protocol and transport bytes of an IPv4 packet from the broadcast address', () => {
    const { host, i, r } = established();
    const pkt = ipv4(send(i, 'udp header and data', 0n, 17));
    const before = Buffer.from(pkt);
    expect(host.receive(pkt, 0, pkt.length, 0n)).toBe(19);
    expect(pkt).toEqual(before); // the borrowed packet is not modified
    expect([host.delivered.session, host.delivered.protocol, transport(host)]).toEqual([
      r,
      17,
      'udp header and data',
    ]);
    expect(host.stats()).toEqual({ packetsIn: 1, packetsOut: 1, dropped: {}, sessions: 1 });
  });

  it('reads past IPv4 options, at an offset, and ignores bytes after the total length (link padding)', () => {
    const { host, i } = established();
    const pkt = ipv4(send(i, 'tcp', 0n, 6), { options: Buffer.from([1, 1, 1, 0]) });
    const framed = Buffer.concat([junk(14), pkt, junk(6)]);
    expect(host.receive(framed, 14, pkt.length + 6, 0n)).toBe(3);
    expect([host.delivered.protocol, transport(host)]).toEqual([6, 'tcp']);
  });

  it('gives a typed drop for every truncation of the packet', () => {
    const { host, i } = established();
    const pkt = ipv4(send(i, 'data'));
    const reasons = new Set<string>();
    for (let cut = 0; cut < pkt.length; cut++) {
      const r = host.receive(Buffer.from(pkt.subarray(0, cut)), 0, cut, 0n);
      expect(r, `cut ${cut}`).toBe('truncated');
      reasons.add(String(r));
    }
    // The IP layer consistent with a short anonymity packet: SID unknown first, else too short.
    for (let anonLen = 0; anonLen < 41; anonLen++) {
      const short = ipv4(send(i, 'data').subarray(0, anonLen));
      expect(host.receive(short, 0, short.length, 0n), `anon ${anonLen}`).toBe('truncated');
      const stranger = ipv4(Buffer.alloc(anonLen, 0x33));
      expect(host.receive(stranger, 0, stranger.length, 0n)).toBe(anonLen < 8 ? 'truncated' : 'unknown-sid');
    }
    expect(host.stats().dropped).toEqual({ truncated: pkt.length + 41 + 8, 'unknown-sid': 33 });
  });

  it('drops what is not for it by reason: not IPv4, another protocol, fragments, malformed headers', () => {
    const { host, i } = established();
    const good = send(i, 'x');
    const v6 = ipv4(good);
    v6[0] = 0x60;
    const udp = ipv4(good, { protocol: 17 });
    const mf = ipv4(good, { flags: Ipv4Flags.MF });
    const later = ipv4(good, { frag: 3, flags: 0 });
    const ihl4 = ipv4(good);
    ihl4[0] = 0x44;
    const shortTotal = ipv4(good);
    shortTotal.writeUInt16BE(19, 2);
    for (const p of [v6, udp, mf, later, ihl4, shortTotal]) host.receive(p, 0, p.length, 0n);
    expect(host.stats().dropped).toEqual({ 'not-ipv4': 1, 'not-anon': 1, fragment: 2, malformed: 2 });
    // The genuine packet is still new to the session: nothing above reached it.
    expect(host.receive(ipv4(good), 0, good.length + 20, 0n)).toBe(1);
  });

  it('takes its protocol number from configuration', () => {
    const { host, i } = established(new AnonReceiver({ protocol: 254 }));
    const anon = send(i, 'x');
    expect(host.receive(ipv4(anon), 0, anon.length + 20, 0n)).toBe('not-anon');
    expect(host.receive(ipv4(anon, { protocol: 254 }), 0, anon.length + 20, 0n)).toBe(1);
    expect(() => new AnonReceiver({ protocol: 256 })).toThrow(
      'anonymity-layer receiver: protocol 256 must be an IP protocol number 0..255',
    );
  });

  it('drops an unknown SID before any crypto', () => {
    const { host, r } = established();
    const open = vi.spyOn(r.opener, 'open');
    const check = vi.spyOn(r.opener, 'check');
    const stranger = new AnonReceiver().initiator({
      keys: keysFor(deriveAnonKeys(Buffer.alloc(16, 1)), 'initiator'),
    });
    const pkt = ipv4(send(stranger, 'knock'));
    expect(host.receive(pkt, 0, pkt.length, 0n)).toBe('unknown-sid');
    expect([open.mock.calls.length, check.mock.calls.length]).toEqual([0, 0]);
  });

  it('counts replays, too-old packets and forgeries on a known SID by reason', () => {
    const { host, i } = established();
    const pkts = Array.from({ length: 70 }, (_, k) => ipv4(send(i, `p${k}`)));
    const rx = (k: number) => host.receive(pkts[k]!, 0, pkts[k]!.length, 0n);
    rx(0);
    rx(0);
    rx(69);
    rx(1); // sequence 2, left of the 64-packet window that now ends at 70
    const forged = Buffer.from(pkts[30]!);
    forged[forged.length - 1]! ^= 1;
    host.receive(forged, 0, forged.length, 0n);
    expect(host.stats()).toMatchObject({
      packetsIn: 5,
      packetsOut: 2,
      dropped: { replayed: 1, 'too-old': 1, tag: 1 },
    });
    expect(rx(30)).toBe(3); // 'p30': the forgery did not use up the genuine packet's number
  });

  it('routes packets of 1000 sessions on one host to their own sessions', () => {
    const host = new AnonReceiver({ expectedSessions: 1000 });
    const initiators: AnonSession[] = [];
    const responders: AnonSession[] = [];
    for (let n = 0; n < 1000; n++) {
      const k = deriveAnonKeys(Buffer.alloc(32, n & 0xff), { context: `session ${n}` });
      initiators.push(
        new AnonReceiver().initiator({ keys: keysFor(k, 'initiator'), firstSid: k.rendezvousSid }),
      );
      responders.push(host.responder({ keys: keysFor(k, 'responder'), firstSid: k.rendezvousSid }));
    }
    let wrong = 0;
    for (let n = 999; n >= 0; n--) {
      const pkt = ipv4(send(initiators[n]!, `to ${n}`));
      if (host.receive(pkt, 0, pkt.length, 0n) !== `to ${n}`.length) wrong++;
      else if (host.delivered.session !== responders[n] || transport(host) !== `to ${n}`) wrong++;
    }
    expect(wrong).toBe(0);
    expect(host.sessions).toBe(1000);
    expect(host.table.size).toBe(2000); // each accepts A and the announced B
    const someB = initiators[5]!.nextSid;
    expect(host.table.lookup(sidHi(someB), sidLo(someB))).toBe(responders[5]!.index);
  });

  it('never throws on random or mutated bytes, and accepts only what was sealed', () => {
    const { host, i } = established();
    const genuine = Array.from({ length: 8 }, (_, k) => ipv4(send(i, `genuine ${k}`)));
    const reasons = new Set([
      'not-ipv4',
      'not-anon',
      'malformed',
      'fragment',
      'truncated',
      'unknown-sid',
      'replayed',
      'too-old',
      'tag',
    ]);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
          fc
            .record({
              which: fc.integer({ min: 0, max: 7 }),
              edits: fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), {
                maxLength: 4,
              }),
              cut: fc.integer({ min: 0, max: 70 }),
            })
            .map(({ which, edits, cut }) => {
              const b = Buffer.from(genuine[which]!);
              for (const { at, v } of edits) b[at % b.length] = v;
              return b.subarray(0, Math.max(0, b.length - cut));
            }),
        ),
        (bytes) => {
          const r = host.receive(bytes, 0, bytes.length, 0n);
          if (typeof r === 'number') expect(transport(host)).toMatch(/^genuine \d$/);
          else expect(reasons).toContain(r);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
