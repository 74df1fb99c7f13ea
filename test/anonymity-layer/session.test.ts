import { describe, expect, it } from 'vitest';
import { deriveAnonKeys, keysFor } from '../../src/anonymity-layer/keys.js';
import { AnonReceiver } from '../../src/anonymity-layer/receiver.js';
import { AnonSession, type AnonSessionEvent } from '../../src/anonymity-layer/session.js';
import { type RandomSource, type Sid, SidGenerator, sidHi, sidLo } from '../../src/anonymity-layer/sid.js';
import { SessionTable } from '../../src/filter/session-table.js';
import { clearSid, receive, send } from './endpoints.js';

const MS = 1_000_000n;
const keys = deriveAnonKeys(Buffer.from('the session tests shared secret'), { context: 'session.test' });
const A = keys.rendezvousSid;

/** Events recorded as they come, written out as lines (SIDs by the names the test gave them) on demand. */
function eventLog(names: Map<Sid, string>): { log: () => string[]; onEvent: (e: AnonSessionEvent) => void } {
  const events: AnonSessionEvent[] = [];
  const n = (s: Sid | null) => (s === null ? 'null' : (names.get(s) ?? s.toString(16)));
  const line = (e: AnonSessionEvent): string => {
    const who = e.session.role;
    if (e.type === 'rotated' || e.type === 'peer-rotated')
      return `${who} ${e.type} ${n(e.current)}/${n(e.next)}`;
    if (e.type === 'sid-refused') return `${who} sid-refused ${n(e.sid)} ${e.reason}`;
    return `${who} ${e.type}`;
  };
  return { log: () => events.map(line), onEvent: (e) => events.push(e) };
}

/** Two hosts, an initiator on one and a responder on the other, in plain mode on the rendezvous SID. */
function pair(
  options: {
    rotateEveryPackets?: number;
    rotateEveryMs?: number;
    minPacketsPerSid?: number;
    idleTimeoutMs?: number;
  } = {},
) {
  const names = new Map<Sid, string>([[A, 'A']]);
  const { log, onEvent } = eventLog(names);
  const hostI = new AnonReceiver();
  const hostR = new AnonReceiver();
  const common = { rotateEveryPackets: 0, rotateEveryMs: 0, minPacketsPerSid: 1, onEvent, ...options };
  const i = hostI.initiator({ ...common, keys: keysFor(keys, 'initiator'), firstSid: A });
  const r = hostR.responder({ ...common, keys: keysFor(keys, 'responder'), firstSid: A });
  return { hostI, hostR, i, r, names, log };
}

describe('the session exchange, step by step', () => {
  it('goes A/B, A/X, B/C, X/Y, then each side rotates on its own chain', () => {
    const { hostI, hostR, i, r, names, log } = pair({ rotateEveryPackets: 2, minPacketsPerSid: 2 });
    const B = i.nextSid;
    names.set(B, 'B');
    expect([i.state, r.state, i.currentSid]).toEqual(['contacting', 'awaiting-contact', A]);
    // Each host accepts A: the initiator for replies, the responder for first contact.
    expect([i.acceptedSids(), r.acceptedSids()]).toEqual([[A], [A]]);
    expect(hostI.table.lookup(sidHi(A), sidLo(A))).toBe(i.index);
    expect(r.seal(Buffer.alloc(100), 0, 1, 17, 0n)).toBe('not-established');

    // 1. initiator → (A, B), twice: it repeats first contact until a reply arrives.
    const p1 = send(i, 'hello');
    const p1b = send(i, 'hello again');
    expect([clearSid(p1), clearSid(p1b)]).toEqual([A, A]);
    expect(receive(hostR, p1)).toEqual({ session: r, protocol: 17, payload: 'hello' });
    expect(r.state).toBe('established');
    expect(r.acceptedSids()).toEqual([A, B]);
    const X = r.nextSid;
    names.set(X, 'X');

    // 2. responder → (A, X)
    const p2 = send(r, 'reply');
    expect(clearSid(p2)).toBe(A);
    expect(receive(hostI, p2)).toEqual({ session: i, protocol: 17, payload: 'reply' });
    // 3. the initiator moved to B (acknowledged by the reply) and announces C.
    expect([i.state, i.currentSid, i.ownGeneration]).toEqual(['established', B, 1]);
    const C = i.nextSid;
    names.set(C, 'C');
    expect(i.acceptedSids()).toEqual([A, X]);
    // The late first-contact duplicate is still routed (A is kept) and dropped by the window.
    expect(receive(hostR, p1b)).toMatchObject({ payload: 'hello again' });
    expect(receive(hostR, p1b)).toBe('replayed');

    const p3 = send(i, 'on B');
    expect(clearSid(p3)).toBe(B);
    expect(receive(hostR, p3)).toMatchObject({ payload: 'on B' });
    // 4. B arrived, so the initiator has X: the responder moves to X and announces Y.
    expect(r.currentSid).toBe(X);
    const Y = r.nextSid;
    names.set(Y, 'Y');
    expect(r.acceptedSids()).toEqual([A, B, C]);
    const p4 = send(r, 'on X');
    expect(clearSid(p4)).toBe(X);
    expect(receive(hostI, p4)).toMatchObject({ payload: 'on X' });
    expect(i.acceptedSids()).toEqual([A, X, Y]);

    // 5. From here every 2 packets: the initiator sends B once more, then C announcing D.
    expect(clearSid(send(i, 'B again'))).toBe(B);
    const p5 = send(i, 'on C');
    expect(clearSid(p5)).toBe(C);
    names.set(i.nextSid, 'D');
    expect(receive(hostR, p5)).toMatchObject({ payload: 'on C' });
    expect(r.acceptedSids()).toEqual([A, B, C, i.nextSid]);

    expect(log()).toEqual([
      'responder established',
      'initiator established',
      'initiator rotated B/C',
      'responder peer-rotated B/C',
      'responder rotated X/Y',
      'initiator peer-rotated X/Y',
      'initiator rotated C/D',
      'responder peer-rotated C/D',
    ]);
    // The tables hold exactly what the sessions accept.
    expect(hostR.table.size).toBe(4);
    expect(hostI.table.size).toBe(3);
  });

  it('forgets peer SIDs older than keepPreviousSids, in the table too', () => {
    const hostI = new AnonReceiver();
    const hostR = new AnonReceiver();
    const opts = { rotateEveryPackets: 1, minPacketsPerSid: 1, keepPreviousSids: 1 };
    const i = hostI.initiator({ ...opts, keys: keysFor(keys, 'initiator'), firstSid: A });
    const r = hostR.responder({ ...opts, keys: keysFor(keys, 'responder'), firstSid: A });
    receive(hostR, send(i, 'a'));
    receive(hostI, send(r, 'x'));
    const seen: Sid[] = [];
    for (let k = 0; k < 10; k++) {
      const p = send(i, `p${k}`);
      seen.push(clearSid(p));
      expect(receive(hostR, p)).toMatchObject({ payload: `p${k}` });
      // Previous (A before the first rotation), current, announced next: exactly the table's content.
      expect(r.acceptedSids()).toEqual([k === 0 ? A : seen[k - 1], seen[k], i.nextSid]);
      expect(hostR.table.size).toBe(r.acceptedSids().length);
    }
    expect(new Set(seen).size).toBe(10); // a new SID for every packet
    // A packet under a forgotten SID is dropped by the filter.
    const old = send(i, 'x');
    old.writeBigUInt64BE(seen[0]!, 0);
    expect(receive(hostR, old)).toBe('unknown-sid');
  });
});

describe('the SID filter seen from a session', () => {
  it('tells the registry exactly which SIDs to add and remove, one call per change', () => {
    // Any SidRegistry works (a BPF prefilter, a kernel map): here one that records the calls.
    const table = new SessionTable();
    const calls: string[] = [];
    const names = new Map<bigint, string>([[A, 'A']]);
    const n = (hi: number, lo: number) => names.get((BigInt(hi) << 32n) | BigInt(lo)) ?? '?';
    const registry = {
      add: (hi: number, lo: number, index: number) => {
        calls.push(`add ${n(hi, lo)} ${index}`);
        return table.add(hi, lo, index);
      },
      remove: (hi: number, lo: number) => {
        calls.push(`remove ${n(hi, lo)}`);
        return table.remove(hi, lo);
      },
      lookup: (hi: number, lo: number) => table.lookup(hi, lo),
    };
    const peerHost = new AnonReceiver();
    const opts = { rotateEveryPackets: 1, minPacketsPerSid: 1, keepPreviousSids: 1 };
    const i = peerHost.initiator({ ...opts, keys: keysFor(keys, 'initiator'), firstSid: A });
    const r = AnonSession.responder({
      ...opts,
      keys: keysFor(keys, 'responder'),
      firstSid: A,
      registry,
      index: 7,
    });
    const open = (pkt: Buffer) => r.open(pkt, 0, pkt.length, Buffer.alloc(pkt.length), 0, 0n);
    names.set(i.nextSid, 'B');
    expect(open(send(i, 'contact'))).toBe(9 + 7);
    receive(peerHost, send(r, 'reply'));
    names.set(i.nextSid, 'C');
    expect(open(send(i, 'on B'))).toBe(9 + 4);
    const onC = send(i, 'on C'); // the initiator rotates: C, announcing D
    names.set(i.nextSid, 'D');
    expect(open(onC)).toBe(9 + 4);
    expect(calls).toEqual([
      'add A 7', // constructing the responder: first contact arrives on A
      'add B 7', // announced by the first contact
      'add C 7', // announced under B
      'remove A', // C is current now: A is two generations old, past keepPreviousSids = 1
      'add D 7', // announced under C
    ]);
    r.close();
    expect(calls.slice(5).sort()).toEqual(['remove B', 'remove C', 'remove D']);
    expect(table.size).toBe(0);
  });
});

describe('rotation triggers', () => {
  function established(options: Parameters<typeof pair>[0]) {
    const p = pair(options);
    receive(p.hostR, send(p.i, 'contact'));
    receive(p.hostI, send(p.r, 'reply'));
    return p;
  }

  it('rotates by count every N packets', () => {
    const { i } = established({ rotateEveryPackets: 3, minPacketsPerSid: 1 });
    const sids = Array.from({ length: 9 }, () => clearSid(send(i, 'x')));
    expect(sids.map((s) => sids.indexOf(s))).toEqual([0, 0, 0, 3, 3, 3, 6, 6, 6]);
    expect(i.ownGeneration).toBe(3);
  });

  it('rotates by time after T ms, never before minPacketsPerSid packets', () => {
    const { hostI, hostR, i, r } = pair({ rotateEveryMs: 100, minPacketsPerSid: 2 });
    const t0 = 1_700_000_000_000n * MS; // epoch-scale nanoseconds: still exact to well below 1 ms
    const at = (ms: number) => clearSid(send(i, 'x', t0 + BigInt(ms) * MS));
    receive(hostR, send(i, 'contact', t0), t0);
    receive(hostI, send(r, 'reply', t0), t0); // the initiator moves to B at t0
    const s0 = at(0);
    expect(at(50)).toBe(s0);
    expect(at(99)).toBe(s0); // 3 packets, 99 ms
    const s1 = at(100);
    expect(s1).not.toBe(s0);
    expect(at(300)).toBe(s1); // 200 ms under s1, but only its first packet went out: held
    expect(at(301)).not.toBe(s1);
  });

  it('holds a SID for minPacketsPerSid packets even when the count trigger is lower... refused as configuration', () => {
    expect(() => pair({ rotateEveryPackets: 2, minPacketsPerSid: 4 })).toThrow(
      'anonymity-layer initiator: rotateEveryPackets 2 is below minPacketsPerSid 4; raise it (or lower minPacketsPerSid, which is the loss tolerance)',
    );
  });

  it('does not rotate before the exchange completed: first contact repeats (A, B)', () => {
    const { i } = pair({ rotateEveryPackets: 1, minPacketsPerSid: 1 });
    const sids = Array.from({ length: 5 }, () => clearSid(send(i, 'x')));
    expect(new Set(sids)).toEqual(new Set([A]));
  });
});

describe('beyond the tolerance', () => {
  it('loses the session when every packet under one SID is lost: unknown-sid, then idle expiry', () => {
    const { hostI, hostR, i, r } = pair({ rotateEveryPackets: 2, minPacketsPerSid: 2, idleTimeoutMs: 1000 });
    receive(hostR, send(i, 'contact'));
    receive(hostI, send(r, 'reply'));
    expect(receive(hostR, send(i, 'B 1'))).toMatchObject({ payload: 'B 1' });
    send(i, 'B 2'); // lost
    send(i, 'C 1'); // lost
    send(i, 'C 2'); // lost: nothing under C arrived, so D was never announced to the responder
    const d = send(i, 'D 1');
    expect(receive(hostR, d)).toBe('unknown-sid');
    expect(receive(hostR, send(i, 'D 2'))).toBe('unknown-sid');
    r.tick(1000n * MS);
    expect(r.state).toBe('closed');
  });
});

describe('server mode (listen SID)', () => {
  const L = 0x5e5e5e5e_00000001n;

  it('takes first contact on the listen SID for the right client, then moves to ephemeral SIDs', () => {
    const server = new AnonReceiver();
    const listener = server.listener(L);
    const clients = [0, 1, 2].map((n) => deriveAnonKeys(Buffer.alloc(32, n + 1), { context: `client ${n}` }));
    const expecting = clients.map((k) =>
      server.responder({
        keys: keysFor(k, 'responder'),
        contact: listener,
        rotateEveryPackets: 0,
        rotateEveryMs: 0,
      }),
    );
    expect(listener.waiting).toBe(3);
    const host = new AnonReceiver();
    const c = host.initiator({
      keys: keysFor(clients[1]!, 'initiator'),
      listenSid: L,
      rotateEveryPackets: 0,
      rotateEveryMs: 0,
    });
    const a = c.nextSid;
    // First contact: (L, A).
    const first = send(c, 'syn');
    expect(clearSid(first)).toBe(L);
    expect(c.acceptedSids()).toEqual([a]);
    expect(receive(server, first)).toEqual({ session: expecting[1], protocol: 17, payload: 'syn' });
    expect(expecting.map((s) => s.state)).toEqual(['awaiting-contact', 'established', 'awaiting-contact']);
    // The server replies on A (not on L, which every client shares), announcing its X.
    const reply = send(expecting[1]!, 'syn-ack');
    expect(clearSid(reply)).toBe(a);
    expect(receive(host, reply)).toMatchObject({ session: c, payload: 'syn-ack' });
    // The client moves to A (the chain L, A, B, …) and the server sees it on its own table entry.
    const third = send(c, 'ack');
    expect(clearSid(third)).toBe(a);
    expect(server.table.lookup(sidHi(a), sidLo(a))).toBe(expecting[1]!.index);
    expect(receive(server, third)).toMatchObject({ session: expecting[1], payload: 'ack' });
    // Confirmation seen: the server moved to X.
    const x = send(expecting[1]!, 'data');
    expect(clearSid(x)).not.toBe(a);
    expect(receive(host, x)).toMatchObject({ payload: 'data' });
    // A replayed first contact is dropped; a stranger's first contact is tried and refused.
    expect(receive(server, first)).toBe('replayed'); // authentic for the session whose window has it
    const stranger = host.initiator({
      keys: keysFor(deriveAnonKeys(Buffer.alloc(32, 9)), 'initiator'),
      listenSid: L,
    });
    expect(receive(server, send(stranger, 'knock'))).toBe('tag');
    expect(server.stats().dropped).toEqual({ replayed: 1, tag: 1 });
  });

  it('keeps the session reachable on the listen SID until its first SID leaves the tolerance', () => {
    const server = new AnonReceiver();
    const listener = server.listener(L);
    const k = deriveAnonKeys(Buffer.alloc(32, 7));
    const opts = { rotateEveryPackets: 1, minPacketsPerSid: 1, keepPreviousSids: 1 };
    const s = server.responder({ ...opts, keys: keysFor(k, 'responder'), contact: listener });
    const host = new AnonReceiver();
    const c = host.initiator({ ...opts, keys: keysFor(k, 'initiator'), listenSid: L });
    const late = send(c, 'first contact, delivered late');
    receive(server, send(c, 'first contact'));
    receive(host, send(s, 'reply'));
    receive(server, send(c, 'on A'));
    expect(listener.waiting).toBe(1); // top is generation 1: generation 0 (L) is kept
    expect(receive(server, late)).toMatchObject({ session: s, payload: 'first contact, delivered late' });
    receive(server, send(c, 'on B'));
    expect(listener.waiting).toBe(0);
    expect(receive(server, send(c, 'on C'))).toMatchObject({ payload: 'on C' });
  });

  it('refuses a listen SID already in use and a closed listener', () => {
    const server = new AnonReceiver();
    const l = server.listener(L);
    expect(() => server.listener(L)).toThrow(
      'anonymity-layer listener: listen SID 5e5e5e5e00000001 is already in use',
    );
    server.closeListener(l);
    expect(server.table.size).toBe(0);
    expect(() => server.responder({ keys: keysFor(keys, 'responder'), contact: l })).toThrow(
      'anonymity-layer listener 5e5e5e5e00000001: closed, expects no sessions',
    );
    expect(server.sessions).toBe(0);
  });
});

describe('expiry, teardown and refusals', () => {
  it('expires after idleTimeoutMs without traffic: SIDs unregistered, slot freed, nothing sent', () => {
    const events: string[] = [];
    const hostI = new AnonReceiver({ onEvent: (e) => events.push(e.type) });
    const i = hostI.initiator({ keys: keysFor(keys, 'initiator'), firstSid: A, idleTimeoutMs: 1000 });
    const t0 = 5_000n * MS;
    send(i, 'x', t0);
    i.tick(t0 + 999n * MS);
    expect(i.state).toBe('contacting');
    hostI.tick(t0 + 1000n * MS);
    expect([i.state, hostI.table.size, hostI.sessions]).toEqual(['closed', 0, 0]);
    expect(events).toEqual(['expired']);
    expect(i.seal(Buffer.alloc(100), 0, 1, 17, t0)).toBe('closed');
    // The slot is reused by the next session.
    expect(hostI.initiator({ keys: keysFor(keys, 'initiator') }).index).toBe(i.index);
  });

  it('counts receiving as activity, and expires lazily on a packet after the timeout', () => {
    const { hostR, i, r } = pair();
    const t0 = 0n;
    receive(hostR, send(i, 'a', t0), t0);
    // No tick: the next packet finds the session idle for 120 s (the default) and drops it.
    expect(receive(hostR, send(i, 'b', t0), t0 + 120_000n * MS)).toBe('expired');
    expect([r.state, hostR.table.size]).toEqual(['closed', 0]);
    expect(hostR.stats().dropped).toEqual({ expired: 1 });
  });

  it('close() unregisters every SID the session accepts', () => {
    const { hostR, i, r, log } = pair();
    receive(hostR, send(i, 'a'));
    expect(hostR.table.size).toBe(2);
    r.close();
    r.close();
    expect([hostR.table.size, r.state, log().at(-1)]).toEqual([0, 'closed', 'responder closed']);
    expect(receive(hostR, send(i, 'b'))).toBe('unknown-sid');
  });

  it('reports sequence exhaustion once and refuses to send', () => {
    const hostI = new AnonReceiver();
    const events: string[] = [];
    const i = hostI.initiator({
      keys: keysFor(keys, 'initiator'),
      lastSequence: 2n,
      onEvent: (e) => events.push(e.type),
    });
    send(i, 'a');
    send(i, 'b');
    expect(i.seal(Buffer.alloc(100), 0, 1, 17, 0n)).toBe('sequence-exhausted');
    expect(i.seal(Buffer.alloc(100), 0, 1, 17, 0n)).toBe('sequence-exhausted');
    expect(events).toEqual(['sequence-exhausted']);
  });

  it('refuses an announced SID this host already uses, and one that contradicts an earlier announcement', () => {
    const taken = 0x0000_7777_0000_8888n;
    // The initiator's random source makes B = taken.
    const bytes = Buffer.alloc(256);
    bytes.writeBigUInt64BE(taken, 0);
    const fixed: RandomSource = (out) => out.set(bytes.subarray(0, out.length));
    const hostI = new AnonReceiver();
    const hostR = new AnonReceiver();
    const { log, onEvent } = eventLog(new Map([[taken, 'taken']]));
    hostR.table.add(sidHi(taken), sidLo(taken), 999);
    const i = hostI.initiator({ keys: keysFor(keys, 'initiator'), firstSid: A, random: fixed });
    expect(i.nextSid).toBe(taken);
    hostR.responder({ keys: keysFor(keys, 'responder'), firstSid: A, onEvent });
    expect(receive(hostR, send(i, 'a'))).toMatchObject({ payload: 'a' });
    // The announcement is judged before the session reports the contact it came with.
    expect(log()).toEqual(['responder sid-refused taken in-use', 'responder established']);
    expect(hostR.table.lookup(sidHi(taken), sidLo(taken))).toBe(999); // the other entry is untouched

    // A second initiator with the same keys (a peer bug) announces another B for generation 0.
    const twin = new AnonReceiver().initiator({
      keys: keysFor(keys, 'initiator'),
      firstSid: A,
      firstSequence: 100n,
    });
    expect(receive(hostR, send(twin, 'b'))).toMatchObject({ payload: 'b' });
    expect(log().at(-1)).toMatch(/^responder sid-refused [0-9a-f]+ mismatch$/);
  });

  it('refuses the same key for both directions, and a first SID in use', () => {
    const k = keysFor(keys, 'initiator');
    expect(() =>
      new AnonReceiver().initiator({ keys: { send: k.send, receive: Buffer.from(k.send) } }),
    ).toThrow(
      'anonymity-layer initiator: keys.send and keys.receive are the same; each direction needs its own key (keys.ts deriveAnonKeys)',
    );
    const host = new AnonReceiver();
    host.responder({ keys: keysFor(keys, 'responder'), firstSid: A });
    expect(() => host.responder({ keys: keysFor(keys, 'responder'), firstSid: A })).toThrow(
      `anonymity-layer responder: firstSid ${A.toString(16)} is already in use on this host`,
    );
    expect(host.sessions).toBe(1);
  });
});

describe('SID generation', () => {
  it('never yields 0 or a SID in use, drawing again instead', () => {
    const draws = [0n, 0x1111n, 0x2222n];
    const bytes = Buffer.alloc(256);
    for (const [k, d] of draws.entries()) bytes.writeBigUInt64BE(d, k * 8);
    const g = new SidGenerator((out) => out.set(bytes.subarray(0, out.length)));
    const table = new SessionTable();
    table.add(0, 0x1111, 1);
    g.next((hi, lo) => table.has(hi, lo));
    expect([g.hi, g.lo]).toEqual([0, 0x2222]);
  });

  it('throws when the random source keeps repeating a used value', () => {
    const g = new SidGenerator((out) => out.fill(0));
    expect(() => g.next(() => false)).toThrow(
      'session ID generator: 32 random draws were all 0 or in use; the random source is broken',
    );
  });

  it('draws distinct SIDs from the CSPRNG', () => {
    const g = new SidGenerator();
    const seen = new Set<string>();
    for (let k = 0; k < 1000; k++) {
      g.next(() => false);
      seen.add(`${g.hi}:${g.lo}`);
    }
    expect(seen.size).toBe(1000);
  });
});
