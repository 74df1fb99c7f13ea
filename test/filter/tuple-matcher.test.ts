/**
 * The basic-mode tuple matcher: replies are matched to conversations from their bytes, the table agrees
 * with a plain Map model through any sequence of claims, uses and releases (growth and backward-shift
 * deletion included), and two hosts on one tuple never both get a reply: a claim is refused with a typed
 * error and an event, reported double use makes the tuple deliver to nobody, counted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import {
  type ConversationTuple,
  OTHER_HOST,
  TUPLE_AMBIGUOUS,
  TUPLE_NO_MATCH,
  TUPLE_UNREADABLE,
  type TupleConflict,
  TupleConflictError,
  TupleMatcher,
} from '../../src/filter/tuple-matcher.js';
import {
  anonPacket,
  ethernet,
  fragment,
  icmpPacket,
  TCP,
  tcpPacket,
  UDP,
  udpPacket,
} from '../anonymity-layer/ipv4-packets.js';
import { hex } from '../helpers/bytes.js';

const BROADCAST = parseIpv4('198.18.5.255');
const DNS = parseIpv4('203.0.113.53');
const WEB = parseIpv4('198.51.100.80');

const dnsQuery = (localPort: number): ConversationTuple => ({
  remoteAddress: DNS,
  remotePort: 53,
  localPort,
  protocol: UDP,
});

/** A reply from the tuple's remote end to the subnet's broadcast address, as the host receives it. */
function replyTo(t: ConversationTuple, payload = hex('0102')): Buffer {
  const ip = { src: t.remoteAddress, dst: BROADCAST };
  const ports = { srcPort: t.remotePort, dstPort: t.localPort, payload };
  return t.protocol === TCP ? tcpPacket(ip, ports) : udpPacket(ip, ports);
}

describe('TupleMatcher lookups', () => {
  it('matches a reply read from its bytes (IPv4 source, source and destination ports, protocol)', () => {
    const m = new TupleMatcher();
    const web: ConversationTuple = { remoteAddress: WEB, remotePort: 443, localPort: 40001, protocol: TCP };
    m.register(dnsQuery(40000), 3);
    m.register(web, 4);
    expect(m.lookupPacket(replyTo(dnsQuery(40000)), 0)).toBe(3);
    expect(m.lookupPacket(ethernet(replyTo(web)), 14)).toBe(4);
    // Same ports, other protocol; same remote, other port; the ports swapped: none is ours.
    expect(m.lookupPacket(replyTo({ ...web, protocol: UDP }), 0)).toBe(TUPLE_NO_MATCH);
    expect(m.lookupPacket(replyTo({ ...web, remotePort: 80 }), 0)).toBe(TUPLE_NO_MATCH);
    expect(m.lookup(WEB, 40001, 443, TCP)).toBe(TUPLE_NO_MATCH);
    expect(m.lookup(WEB, 443, 40001, TCP)).toBe(4);
    expect(m.stats()).toMatchObject({ matched: 3, unmatched: 3, unreadable: 0 });
  });

  it('reads high ports (above 32767) and addresses (above 2^31) as unsigned', () => {
    const m = new TupleMatcher();
    const t = {
      remoteAddress: parseIpv4('255.255.255.254'),
      remotePort: 65535,
      localPort: 60999,
      protocol: UDP,
    };
    m.register(t, 0);
    expect(m.lookupPacket(replyTo(t), 0)).toBe(0);
    expect(m.ownerOf(t)).toBe(0);
  });

  it('says which packets show no tuple: other fragments, ICMP, the anonymity layer, IPv6, cut short', () => {
    const m = new TupleMatcher();
    const t = dnsQuery(40000);
    m.register(t, 1);
    const [first, second] = fragment(replyTo(t, Buffer.alloc(100)), [16]);
    expect(m.lookupPacket(first!, 0)).toBe(1); // the first fragment carries the ports
    expect(m.lookupPacket(second!, 0)).toBe(TUPLE_UNREADABLE);
    expect(
      m.lookupPacket(icmpPacket({ src: DNS, dst: BROADCAST }, { type: 0, code: 0, body: hex('00') }), 0),
    ).toBe(TUPLE_UNREADABLE);
    expect(m.lookupPacket(anonPacket({ src: DNS, dst: BROADCAST }, 1, 2), 0)).toBe(TUPLE_UNREADABLE);
    expect(m.lookupPacket(hex('6000000000081140'), 0)).toBe(TUPLE_UNREADABLE);
    expect(m.lookupPacket(replyTo(t).subarray(0, 23), 0)).toBe(TUPLE_UNREADABLE);
    expect(m.lookupPacket(replyTo(t), 0, 24)).toBe(1); // the ports are all it needs
    expect(m.stats()).toMatchObject({ matched: 2, unreadable: 5 });
  });

  it('refuses tuples and owners that cannot be, naming the field', () => {
    const m = new TupleMatcher();
    expect(() => m.register({ ...dnsQuery(1), protocol: 1 }, 0)).toThrow(/protocol 1 carries no ports/);
    expect(() => m.register(dnsQuery(70000), 0)).toThrow(/localPort 70000/);
    expect(() => m.register({ ...dnsQuery(1), remoteAddress: -1 }, 0)).toThrow(/remoteAddress -1/);
    expect(() => m.register(dnsQuery(1), -5)).toThrow(/owner -5/);
    expect(() => new TupleMatcher({ expectedEntries: 0 })).toThrow(/expectedEntries 0/);
  });
});

describe('TupleMatcher against a Map model', () => {
  it('agrees after any sequence of registrations, reports and releases, growing from one slot', () => {
    // A small key space so operations collide with each other and with probe sequences.
    const tuple = fc.record({
      remoteAddress: fc.constantFrom(DNS, WEB, 0, 0xffffffff),
      remotePort: fc.constantFrom(53, 443, 65535),
      localPort: fc.integer({ min: 40000, max: 40007 }),
      protocol: fc.constantFrom(TCP, UDP),
    });
    const op = fc.record({
      kind: fc.constantFrom('register', 'report', 'unregister'),
      tuple,
      owner: fc.integer({ min: 0, max: 3 }),
    });
    const key = (t: ConversationTuple) => `${t.remoteAddress}/${t.remotePort}/${t.localPort}/${t.protocol}`;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.tuple(fc.nat(), fc.nat()), (ops, seed) => {
        const m = new TupleMatcher({ expectedEntries: 1, seed });
        const model = new Map<string, { t: ConversationTuple; claimants: number[] }>();
        for (const { kind, tuple: t, owner } of ops) {
          const k = key(t);
          const entry = model.get(k);
          if (kind === 'register') {
            const refused =
              entry !== undefined && !(entry.claimants.length === 1 && entry.claimants[0] === owner);
            if (refused) expect(() => m.register(t, owner)).toThrow(TupleConflictError);
            else m.register(t, owner);
            if (!entry) model.set(k, { t, claimants: [owner] });
          } else if (kind === 'report') {
            if (!entry) model.set(k, { t, claimants: [owner] });
            else if (!entry.claimants.includes(owner)) entry.claimants.push(owner);
            expect(m.reportUse(t, owner)).toBe(model.get(k)!.claimants.length === 1 ? 'owned' : 'contested');
          } else {
            const had = entry?.claimants.includes(owner) ?? false;
            expect(m.unregister(t, owner)).toBe(had);
            if (had) {
              entry!.claimants = entry!.claimants.filter((o) => o !== owner);
              if (entry!.claimants.length === 0) model.delete(k);
            }
          }
        }
        expect(m.size).toBe(model.size);
        for (const { t, claimants } of model.values()) {
          const expected = claimants.length === 1 ? claimants[0] : TUPLE_AMBIGUOUS;
          expect(m.lookup(t.remoteAddress, t.remotePort, t.localPort, t.protocol)).toBe(expected);
        }
        expect(m.stats().contested).toBe([...model.values()].filter((e) => e.claimants.length > 1).length);
        // Probing stays short even after deletions (no tombstones).
        expect(m.maxProbeDistance()).toBeLessThan(m.capacity);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps every tuple reachable through deletions in a crowded table (backward shift)', () => {
    // Eight slots, up to four tuples out of sixteen: probe sequences overlap all the time.
    const keys = Array.from({ length: 16 }, (_, i) => dnsQuery(40000 + i));
    fc.assert(
      fc.property(
        fc.array(fc.record({ add: fc.boolean(), k: fc.integer({ min: 0, max: 15 }) }), { maxLength: 60 }),
        fc.tuple(fc.nat(), fc.nat()),
        (ops, seed) => {
          const m = new TupleMatcher({ expectedEntries: 4, seed });
          const present = new Set<number>();
          for (const { add, k } of ops) {
            if (add && present.size < 4) {
              m.register(keys[k]!, k);
              present.add(k);
            } else if (!add) {
              expect(m.unregister(keys[k]!, k)).toBe(present.delete(k));
            }
            expect(m.capacity).toBe(8);
            for (let i = 0; i < 16; i++)
              expect(m.ownerOf(keys[i]!)).toBe(present.has(i) ? i : TUPLE_NO_MATCH);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('holds 100 000 tuples and finds each, with short probe sequences', () => {
    const m = new TupleMatcher({ seed: [1, 2] });
    for (let i = 0; i < 100_000; i++)
      m.register(
        {
          remoteAddress: (0xcb007100 + (i >>> 10)) >>> 0,
          remotePort: 443,
          localPort: 32768 + (i & 1023),
          protocol: TCP,
        },
        i,
      );
    expect(m.size).toBe(100_000);
    for (let i = 0; i < 100_000; i += 997)
      expect(m.lookup((0xcb007100 + (i >>> 10)) >>> 0, 443, 32768 + (i & 1023), TCP)).toBe(i);
    expect(m.maxProbeDistance()).toBeLessThan(64);
  });
});

describe('two hosts on one tuple', () => {
  it('refuses the second registration with a typed error and an event, and finds the agent another port', () => {
    const coordinator = new TupleMatcher();
    const events: TupleConflict[] = [];
    coordinator.on('tuple-conflict', (c) => events.push(c));
    coordinator.register(dnsQuery(40000), 1); // host 1
    coordinator.register(dnsQuery(40000), 1); // again: its own, a no-op
    let error: unknown;
    try {
      coordinator.register(dnsQuery(40000), 2); // host 2 picked the same local port
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TupleConflictError);
    expect((error as TupleConflictError).conflict).toEqual({
      tuple: dnsQuery(40000),
      owner: 1,
      claimant: 2,
      kind: 'refused',
    });
    expect((error as Error).message).toBe(
      'udp 203.0.113.53:53 ↔ local port 40000 is already used by owner 1: owner 2 must pick another local port',
    );
    expect(events).toEqual([{ tuple: dnsQuery(40000), owner: 1, claimant: 2, kind: 'refused' }]);
    expect(coordinator.ownerOf(dnsQuery(40000))).toBe(1); // unchanged
    const port = coordinator.freeLocalPort(DNS, 53, UDP, 40000, 40010, 40000);
    expect(port).toBe(40001);
    coordinator.register(dnsQuery(port), 2);
    expect(coordinator.stats()).toMatchObject({ refused: 1, contested: 0 });
    // A full range has no free port.
    for (let p = 40002; p <= 40010; p++) coordinator.register(dnsQuery(p), 3);
    expect(coordinator.freeLocalPort(DNS, 53, UDP, 40000, 40010)).toBe(-1);
  });

  it('delivers replies on a tuple two hosts were seen using to neither of them, and counts them', () => {
    // Host A registered with the coordinator; host B used the same tuple without asking. The router sees
    // B's packets (by its MAC) and reports the use; the coordinator tells both hosts.
    const coordinator = new TupleMatcher();
    const hostA = new TupleMatcher();
    const hostB = new TupleMatcher();
    const t = dnsQuery(40000);
    hostA.register(t, 7);
    coordinator.register(t, 0xa);
    hostB.register(t, 9);
    const conflicts: TupleConflict[] = [];
    coordinator.on('tuple-conflict', (c) => {
      conflicts.push(c);
      hostA.reportUse(c.tuple, OTHER_HOST);
      hostB.reportUse(c.tuple, OTHER_HOST);
    });
    expect(coordinator.reportUse(t, 0xa)).toBe('owned');
    expect(coordinator.reportUse(t, 0xb)).toBe('contested');
    expect(conflicts).toEqual([{ tuple: t, owner: 0xa, claimant: 0xb, kind: 'contested' }]);

    const deliveries = { a: 0, b: 0 };
    for (let i = 0; i < 5; i++) {
      const reply = replyTo(t);
      if (hostA.lookupPacket(reply, 0) >= 0) deliveries.a++;
      if (hostB.lookupPacket(reply, 0) >= 0) deliveries.b++;
      expect(coordinator.lookupPacket(reply, 0)).toBe(TUPLE_AMBIGUOUS);
    }
    expect(deliveries).toEqual({ a: 0, b: 0 });
    expect(hostA.stats()).toMatchObject({ ambiguous: 5, matched: 0, contested: 1 });
    expect(coordinator.stats()).toMatchObject({ ambiguous: 5, contested: 1 });
    // Nobody may claim a contested tuple.
    expect(() => coordinator.register(t, 0xc)).toThrow(/already used by owner 10/);

    // B moves to another port and releases: A owns the tuple again.
    const resolved: unknown[] = [];
    coordinator.on('tuple-resolved', (r) => resolved.push(r));
    expect(coordinator.unregister(t, 0xb)).toBe(true);
    expect(resolved).toEqual([{ tuple: t, owner: 0xa }]);
    expect(coordinator.lookupPacket(replyTo(t), 0)).toBe(0xa);
    expect(coordinator.unregister(t, 0xb)).toBe(false);
  });

  it('never delivers one reply to two hosts, whatever ports the hosts pick', () => {
    // Hosts pick local ports from a tiny range, so they often collide; each registers with the coordinator
    // and moves to a free port when refused, then keeps its own table. Every reply reaches at most one host,
    // and exactly the one whose conversation it answers.
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ host: fc.integer({ min: 0, max: 4 }), port: fc.integer({ min: 50000, max: 50005 }) }),
          {
            maxLength: 30,
          },
        ),
        (picks) => {
          const coordinator = new TupleMatcher();
          const hosts = Array.from({ length: 5 }, () => new TupleMatcher());
          const owners = new Map<number, number>(); // local port → host
          for (const { host, port } of picks) {
            let chosen = port;
            try {
              coordinator.register(dnsQuery(chosen), host);
            } catch (e) {
              expect(e).toBeInstanceOf(TupleConflictError);
              chosen = coordinator.freeLocalPort(DNS, 53, UDP, 50000, 50005, port);
              if (chosen < 0) continue; // the range is full: the agent gives up on this conversation
              coordinator.register(dnsQuery(chosen), host);
            }
            hosts[host]!.register(dnsQuery(chosen), host);
            owners.set(chosen, host);
          }
          for (let port = 50000; port <= 50005; port++) {
            const reply = replyTo(dnsQuery(port));
            const receivers = hosts
              .map((h, i) => (h.lookupPacket(reply, 0) >= 0 ? i : -1))
              .filter((i) => i >= 0);
            expect(receivers).toEqual(owners.has(port) ? [owners.get(port)] : []);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
