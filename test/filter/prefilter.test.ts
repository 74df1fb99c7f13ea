/**
 * The kernel prefilter: its shape and fallbacks, its cost model against libpcap's compiler (`tcpdump -d`,
 * within BPF_MAXINSNS for every link layer a capture may have), and what it keeps when libpcap applies it
 * to a capture of this host's and other hosts' replies: exactly this host's in exact mode, a superset in
 * every fallback, never less.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseIpv4 } from '../../src/codec/ipv4.js';
import {
  BPF_MAX_INSTRUCTIONS,
  buildPrefilter,
  PREFILTER_INSTRUCTION_BUDGET,
  type SidHalves,
} from '../../src/filter/prefilter.js';
import type { ConversationTuple } from '../../src/filter/tuple-matcher.js';
import { readCapture, writeCapture } from '../../src/io/capture-file.js';
import { LinkType } from '../../src/packet.js';
import {
  anonPacket,
  fragment,
  framesOf,
  TCP,
  tcpPacket,
  UDP,
  udpPacket,
} from '../anonymity-layer/ipv4-packets.js';
import { describeSystem } from '../helpers/system.js';

const run = promisify(execFile);
const BROADCAST = parseIpv4('198.18.5.255');

/** mulberry32: the same pseudo-random numbers in every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomSids(n: number, seed: number): SidHalves[] {
  const r = seeded(seed);
  return Array.from({ length: n }, () => ({ hi: r(), lo: (r() | 1) >>> 0 }));
}

/** `n` tuples over `remotes` remote hosts, TCP and UDP. */
function randomTuples(n: number, remotes: number, seed: number): ConversationTuple[] {
  const r = seeded(seed);
  const hosts = Array.from({ length: remotes }, () => r());
  return Array.from({ length: n }, (_, i) => ({
    remoteAddress: hosts[i % remotes]!,
    remotePort: r() & 0xffff,
    localPort: 32768 + (r() % 28232),
    protocol: r() & 1 ? TCP : UDP,
  }));
}

describe('buildPrefilter', () => {
  it('writes one parenthesized clause per SID and per tuple, grouped by protocol and remote', () => {
    const p = buildPrefilter({
      sids: [{ hi: 0x00112233, lo: 0x44556677 }],
      tuples: [
        { remoteAddress: parseIpv4('203.0.113.53'), remotePort: 53, localPort: 40000, protocol: UDP },
        { remoteAddress: parseIpv4('203.0.113.53'), remotePort: 53, localPort: 40001, protocol: UDP },
      ],
      broadcastAddress: BROADCAST,
    });
    expect(p.expression).toBe(
      'ip dst host 198.18.5.255 and ((ip proto 253 and (ip[0] != 0x45 or ip[6:2] & 0x1fff != 0 or ' +
        '(ip[20:4] = 0x00112233 and ip[24:4] = 0x44556677))) or ' +
        '(ip proto 17 and ((ip src host 203.0.113.53 and (ip[0] != 0x45 or ip[6:2] & 0x1fff != 0 or ' +
        'ip[20:4] = 0x00359c40 or ip[20:4] = 0x00359c41)))))',
    );
    expect(p).toMatchObject({
      exact: true,
      sessionsCovered: 3,
      fallback: 'none',
      sidMatch: 'exact',
      tupleMatch: 'exact',
    });
  });

  it('matches nothing without sessions, and uses the configured anonymity protocol', () => {
    expect(buildPrefilter({})).toMatchObject({ expression: 'len = 0', exact: true, sessionsCovered: 0 });
    expect(buildPrefilter({ sids: [{ hi: 1, lo: 2 }], anonProtocol: 254 }).expression).toMatch(
      /^\(ip proto 254 and/,
    );
  });

  it('counts a SID or tuple given twice once', () => {
    const sid = { hi: 5, lo: 6 };
    const t = { remoteAddress: 1, remotePort: 2, localPort: 3, protocol: TCP };
    expect(buildPrefilter({ sids: [sid, { ...sid }], tuples: [t, { ...t }] }).sessionsCovered).toBe(2);
  });

  it('falls back to SID prefixes past the budget, as long as fits, then to the protocol', () => {
    const within = buildPrefilter({ sids: randomSids(590, 1) });
    expect(within).toMatchObject({ exact: true, fallback: 'none', sessionsCovered: 590 });
    const whole = buildPrefilter({ sids: randomSids(1000, 2) });
    expect(whole).toMatchObject({
      exact: false,
      fallback: 'prefix',
      sidMatch: 'prefix',
      sidPrefixBits: 32,
      sessionsCovered: 0,
    });
    const many = buildPrefilter({ sids: randomSids(100_000, 3) });
    expect(many.sidMatch).toBe('prefix');
    expect(many.sidPrefixBits).toBeGreaterThan(8);
    expect(many.sidPrefixBits).toBeLessThan(16);
    const tiny = buildPrefilter({ sids: randomSids(100, 4), maxInstructions: 64 });
    expect(tiny).toMatchObject({ fallback: 'prefix', sidMatch: 'prefix' });
    expect(tiny.sidPrefixBits).toBeLessThanOrEqual(4);
  });

  it('falls back for tuples to remote hosts, then remote networks, then the protocol', () => {
    expect(buildPrefilter({ tuples: randomTuples(250, 250, 5) }).tupleMatch).toBe('exact');
    expect(buildPrefilter({ tuples: randomTuples(1000, 1000, 6) })).toMatchObject({
      tupleMatch: 'remote',
      fallback: 'prefix',
    });
    const nets = buildPrefilter({ tuples: randomTuples(3000, 3000, 7) });
    expect(nets).toMatchObject({ tupleMatch: 'remote-prefix', fallback: 'prefix' });
    expect(nets.remotePrefixBits).toBeGreaterThan(8);
    expect(nets.expression).toMatch(/ip\[12:4\] & 0x[0-9a-f]{8} = 0x[0-9a-f]{8}/);
  });

  it('prefers the combination that gives the most sessions a clause, then the narrowest', () => {
    // 500 SIDs alone fit exactly, 100 tuples over 100 remotes alone too, both together do not: the tuples
    // go to remote hosts (cheap) and the SIDs stay exact, rather than the other way round.
    const p = buildPrefilter({ sids: randomSids(500, 8), tuples: randomTuples(100, 100, 9) });
    expect(p).toMatchObject({ sidMatch: 'exact', tupleMatch: 'remote', sessionsCovered: 500, exact: false });
  });

  it('stays within its budget for any mix of SIDs and tuples', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 64, max: BPF_MAX_INSTRUCTIONS }),
        fc.nat(),
        (nSids, nTuples, remotes, budget, seed) => {
          const p = buildPrefilter({
            sids: randomSids(nSids, seed),
            tuples: randomTuples(nTuples, remotes, seed + 1),
            maxInstructions: budget,
          });
          expect(p.estimatedInstructions).toBeLessThanOrEqual(budget);
          expect(p.exact).toBe(p.fallback === 'none');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses settings that cannot work, saying what to change', () => {
    expect(() => buildPrefilter({ sids: [{ hi: 0, lo: 0 }] })).toThrow(/not both 0/);
    expect(() => buildPrefilter({ sids: [{ hi: 1, lo: 1 }], maxInstructions: 5000 })).toThrow(/BPF_MAXINSNS/);
    expect(() => buildPrefilter({ sids: [{ hi: 1, lo: 1 }], anonProtocol: 300 })).toThrow(/anonProtocol 300/);
    expect(() =>
      buildPrefilter({ tuples: [{ remoteAddress: 1, remotePort: 70000, localPort: 1, protocol: 6 }] }),
    ).toThrow(/remotePort 70000/);
  });
});

/** Instructions libpcap compiles `expression` to for link type `link` (tcpdump -y name). */
async function compiledLength(expression: string, link: string): Promise<number> {
  const { stdout } = await run('tcpdump', ['-d', '-y', link, expression], { maxBuffer: 1 << 26 });
  return stdout.trim().split('\n').length;
}

describeSystem('prefilter compiled and applied by libpcap', ['tcpdump'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'pktveil-prefilter-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // As root tcpdump switches to an unprivileged user before writing; keep root to write into `dir`.
  const asRoot = process.getuid?.() === 0 ? ['-Z', 'root'] : [];

  const cases: [string, () => ReturnType<typeof buildPrefilter>][] = [
    ['1 SID', () => buildPrefilter({ sids: randomSids(1, 10), broadcastAddress: BROADCAST })],
    ['100 SIDs', () => buildPrefilter({ sids: randomSids(100, 11), broadcastAddress: BROADCAST })],
    [
      'the budget in SIDs (590)',
      () => buildPrefilter({ sids: randomSids(590, 12), broadcastAddress: BROADCAST }),
    ],
    ['100k SIDs', () => buildPrefilter({ sids: randomSids(100_000, 13), broadcastAddress: BROADCAST })],
    ['1 tuple', () => buildPrefilter({ tuples: randomTuples(1, 1, 14), broadcastAddress: BROADCAST })],
    ['100 tuples', () => buildPrefilter({ tuples: randomTuples(100, 100, 15), broadcastAddress: BROADCAST })],
    ['the budget in tuples (250 remotes)', () => buildPrefilter({ tuples: randomTuples(250, 250, 16) })],
    [
      '100k tuples',
      () => buildPrefilter({ tuples: randomTuples(100_000, 1000, 17), broadcastAddress: BROADCAST }),
    ],
    ['3000 tuples (remote networks)', () => buildPrefilter({ tuples: randomTuples(3000, 3000, 18) })],
    [
      '300 SIDs and 100 tuples',
      () =>
        buildPrefilter({
          sids: randomSids(300, 19),
          tuples: randomTuples(100, 50, 20),
          broadcastAddress: BROADCAST,
        }),
    ],
    [
      '50k SIDs and 50k tuples',
      () => buildPrefilter({ sids: randomSids(50_000, 21), tuples: randomTuples(50_000, 5000, 22) }),
    ],
  ];

  it.each(cases)('compiles %s within the estimate and BPF_MAXINSNS, on every link layer', async (_, make) => {
    const p = make();
    expect(p.estimatedInstructions).toBeLessThanOrEqual(PREFILTER_INSTRUCTION_BUDGET);
    for (const link of ['EN10MB', 'LINUX_SLL', 'LINUX_SLL2', 'RAW']) {
      const n = await compiledLength(p.expression, link);
      expect(n, link).toBeLessThanOrEqual(p.estimatedInstructions);
      expect(n, link).toBeLessThanOrEqual(BPF_MAX_INSTRUCTIONS);
    }
  });

  /**
   * A capture of replies broadcast into the subnet: this host's (its SIDs current and next, its tuples,
   * including a fragmented reply and one with IP options) among other hosts' (other SIDs, one sharing this
   * host's high half, other local ports, the same ports over the other protocol, other remote ports) and
   * traffic to another address. Returns the frames and which are this host's.
   */
  function mixedCapture() {
    const own = randomSids(40, 30);
    const others = randomSids(200, 31);
    others.push({ hi: own[0]!.hi, lo: own[0]!.lo ^ 0x80 }); // same high half: only exact mode tells them apart
    const ownTuples = randomTuples(30, 30, 32);
    const remote = (i: number) => ({ src: ownTuples[i % 30]!.remoteAddress, dst: BROADCAST, id: 0x100 + i });
    const packets: { data: Buffer; own: boolean }[] = [];
    for (const [i, s] of own.entries()) packets.push({ data: anonPacket(remote(i), s.hi, s.lo), own: true });
    for (const [i, s] of others.entries())
      packets.push({ data: anonPacket(remote(i), s.hi, s.lo), own: false });
    const reply = (t: ConversationTuple, changes: Partial<ConversationTuple> = {}) => {
      const u = { ...t, ...changes };
      const ip = { src: u.remoteAddress, dst: BROADCAST };
      const ports = { srcPort: u.remotePort, dstPort: u.localPort, payload: Buffer.from('reply') };
      return u.protocol === TCP ? tcpPacket(ip, ports) : udpPacket(ip, ports);
    };
    for (const t of ownTuples) {
      packets.push({ data: reply(t), own: true });
      packets.push({ data: reply(t, { localPort: t.localPort ^ 1 }), own: false });
      packets.push({ data: reply(t, { remotePort: t.remotePort ^ 0x100 }), own: false });
      packets.push({ data: reply(t, { protocol: t.protocol === TCP ? UDP : TCP }), own: false });
    }
    // Replies this host must not lose although their session is not at the fixed offsets.
    const udpTuple = ownTuples.find((t) => t.protocol === UDP)!;
    const big = udpPacket(
      { src: udpTuple.remoteAddress, dst: BROADCAST, id: 0x7777, flags: 0 },
      { srcPort: udpTuple.remotePort, dstPort: udpTuple.localPort, payload: Buffer.alloc(600, 7) },
    );
    for (const f of fragment(big, [8 * 40])) packets.push({ data: f, own: true });
    const withOptions = anonPacket(
      { ...remote(0), options: Buffer.from([1, 1, 1, 0]) },
      own[1]!.hi,
      own[1]!.lo,
    );
    packets.push({ data: withOptions, own: true });
    // This host's SID, sent to another address: the prefilter narrows to the broadcast address.
    packets.push({
      data: anonPacket({ src: remote(0).src, dst: parseIpv4('198.18.5.9') }, own[2]!.hi, own[2]!.lo),
      own: false,
    });
    // Order: mix them, deterministically.
    const r = seeded(33);
    const shuffled = packets
      .map((p) => ({ p, k: r() }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.p);
    return { own, ownTuples, packets: shuffled };
  }

  async function applyWithTcpdump(expression: string, frames: ReturnType<typeof framesOf>, name: string) {
    const input = join(dir, `${name}-in.pcap`);
    const output = join(dir, `${name}-out.pcap`);
    await writeCapture(input, frames, { format: 'pcap', link: LinkType.ETHERNET });
    await run('tcpdump', [...asRoot, '-r', input, '-w', output, expression], { maxBuffer: 1 << 26 });
    const kept = new Set<bigint>();
    for await (const p of readCapture(output)) kept.add(p.ts);
    return kept;
  }

  it('keeps exactly this host’s replies in exact mode', async () => {
    const { own, ownTuples, packets } = mixedCapture();
    const p = buildPrefilter({ sids: own, tuples: ownTuples, broadcastAddress: BROADCAST });
    expect(p).toMatchObject({ exact: true, fallback: 'none' });
    const frames = framesOf(packets.map((x) => x.data));
    const kept = await applyWithTcpdump(p.expression, frames, 'exact');
    const expected = new Set(frames.filter((_, i) => packets[i]!.own).map((f) => f.ts));
    expect(expected.size).toBeGreaterThan(70);
    expect([...kept].sort()).toEqual([...expected].sort());
  });

  it('keeps a superset in every fallback, never dropping one of this host’s replies', async () => {
    const { own, ownTuples, packets } = mixedCapture();
    const frames = framesOf(packets.map((x) => x.data));
    const mine = frames.filter((_, i) => packets[i]!.own).map((f) => f.ts);
    const otherDestination = frames.find((f) => f.data.readUInt32BE(30) !== BROADCAST)!.ts;
    // Budgets that make each fallback of each part show up (from the cost model for this capture).
    const budgets: [number, string, string][] = [
      [400, 'exact', 'remote'],
      [300, 'exact', 'remote-prefix'],
      [240, 'exact', 'protocol'],
      [150, 'prefix', 'remote'],
      [80, 'prefix', 'protocol'],
      [64, 'protocol', 'remote-prefix'],
    ];
    for (const [budget, sidMatch, tupleMatch] of budgets) {
      const p = buildPrefilter({
        sids: own,
        tuples: ownTuples,
        broadcastAddress: BROADCAST,
        maxInstructions: budget,
      });
      expect([p.sidMatch, p.tupleMatch], `budget ${budget}`).toEqual([sidMatch, tupleMatch]);
      expect(p.exact).toBe(false);
      const kept = await applyWithTcpdump(p.expression, frames, `fallback-${budget}`);
      for (const ts of mine) expect(kept.has(ts), `budget ${budget}: own packet ${ts}`).toBe(true);
      expect(kept.has(otherDestination), `budget ${budget}`).toBe(false);
      expect(kept.size, `budget ${budget}`).toBeGreaterThan(mine.length); // broader than exact
    }
  });
});
