/**
 * Basic mode of the broadcast scheme (no anonymity header): a host recognises its replies among everything
 * broadcast into the subnet by the conversation tuple (remote address, remote port, local port, protocol),
 * read straight from the reply's bytes: IPv4 source, transport source and destination ports, protocol.
 *
 * The table is built for the per-packet lookup: the tuple is two uint32 keys (remote address; remote port
 * and local port packed) and a protocol byte in typed arrays, open addressing with linear probing over a
 * power-of-two capacity, a seeded murmur3-style mix, backward-shift deletion (no tombstones). No strings,
 * no objects, no allocation per lookup. It grows (doubling) when half full, on registration only.
 *
 * ## Two hosts on one tuple
 *
 * All hosts of the subnet share one source address, so two of them talking to the same remote service from
 * the same local port would receive each other's replies and neither could tell which are its own. The
 * table never lets that turn into silent misdelivery:
 *
 * - `register(tuple, owner)` is a claim made before the tuple is used (a host's agent registering a new
 *   conversation with its own table, or with a coordinator that sees every host's registrations). A claim
 *   on a tuple that another owner holds is refused: the table is unchanged, a `tuple-conflict` event
 *   (`kind: 'refused'`) is emitted and a `TupleConflictError` is thrown. The agent then picks another local
 *   port (`freeLocalPort` finds one) and registers again. Registering a tuple one already holds is a no-op.
 * - `reportUse(tuple, owner)` reports use seen after the fact: the router attributing an outbound packet
 *   to a host (by its MAC), or a host told by the coordinator that another host uses its tuple (report it
 *   with that host's id, or OTHER_HOST). When a second owner is reported on a tuple it becomes
 *   **contested**: `tuple-conflict` (`kind: 'contested'`) is emitted and from then on a reply on that tuple
 *   is delivered to nobody — `lookup` answers TUPLE_AMBIGUOUS and counts it (`stats().ambiguous`), so
 *   every claimant sees the loss and none sees another's data.
 * - A contested tuple stays contested until its claimants unregister; when one claimant is left it owns the
 *   tuple again (`tuple-resolved` event), when none is left the entry goes.
 *
 * Owners are small non-negative integers the caller chooses: a conversation index on a host, a host index
 * at a coordinator or router.
 */
import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ipv4String } from '../codec/ip-address.js';

/** One conversation as the host sees it. Addresses are unsigned 32-bit numbers (parseIpv4). */
export interface ConversationTuple {
  remoteAddress: number;
  remotePort: number;
  localPort: number;
  /** IP protocol number of a transport whose first 4 bytes are the ports (see PORT_PROTOCOLS). */
  protocol: number;
}

/** Transports whose header starts with source port, destination port: TCP, UDP, DCCP, UDP-Lite, SCTP. */
export const PORT_PROTOCOLS: readonly number[] = [6, 17, 33, 136, 132];

/** lookup: no registered tuple matches. */
export const TUPLE_NO_MATCH = -1;
/** lookup: the tuple is contested by several owners; the reply must be delivered to nobody. */
export const TUPLE_AMBIGUOUS = -2;
/** lookup: the packet shows no tuple (not IPv4, not a port protocol, a fragment after the first, cut short). */
export const TUPLE_UNREADABLE = -3;
/** An owner id for "another host" when a host records others' use of a tuple without knowing who. */
export const OTHER_HOST = 0x7fffffff;

export interface TupleConflict {
  tuple: ConversationTuple;
  /** The owner that held the tuple. */
  owner: number;
  /** The owner whose claim or use collided with it. */
  claimant: number;
  /** 'refused': a registration was turned down; 'contested': use by two owners was reported. */
  kind: 'refused' | 'contested';
}

export interface TupleMatcherEvents {
  'tuple-conflict': [TupleConflict];
  /** A contested tuple is down to one claimant, which owns it again. */
  'tuple-resolved': [{ tuple: ConversationTuple; owner: number }];
}

/** Thrown by register() for a tuple another owner holds (or that is contested). */
export class TupleConflictError extends Error {
  constructor(readonly conflict: TupleConflict) {
    super(
      `${describeTuple(conflict.tuple)} is already used by owner ${conflict.owner}: owner ${conflict.claimant} must pick another local port`,
    );
    this.name = 'TupleConflictError';
  }
}

/** "udp 203.0.113.5:53 ↔ local port 40000", for messages. */
export function describeTuple(t: ConversationTuple): string {
  const name = t.protocol === 6 ? 'tcp' : t.protocol === 17 ? 'udp' : `protocol ${t.protocol}`;
  return `${name} ${ipv4String(t.remoteAddress >>> 0)}:${t.remotePort} ↔ local port ${t.localPort}`;
}

export interface TupleMatcherOptions {
  /** Tuples to hold without growing (default 1024). */
  expectedEntries?: number;
  /** Hash seed (two uint32s); random by default. */
  seed?: readonly [number, number];
}

export interface TupleMatcherStats {
  matched: number;
  unmatched: number;
  ambiguous: number;
  unreadable: number;
  /** Registrations refused because another owner held the tuple. */
  refused: number;
  /** Tuples currently contested. */
  contested: number;
}

const EMPTY = -1;
/** Owner value of a contested slot; its claimants are kept aside in `claimants`. */
const CONTESTED = -2;
const MAX_OWNER = 0x7fffffff;
const MAX_CAPACITY = 1 << 30;

export class TupleMatcher extends EventEmitter<TupleMatcherEvents> {
  private keyAddr: Uint32Array;
  /** remotePort << 16 | localPort. */
  private keyPorts: Uint32Array;
  private keyProto: Uint8Array;
  /** Owner per slot; EMPTY for a free slot, CONTESTED for a tuple with several claimants. */
  private owners: Int32Array;
  private mask: number;
  private count = 0;
  private readonly seedA: number;
  private readonly seedB: number;
  /** Claimants of contested tuples, by slot key (control path only; lookups read just the slot's owner). */
  private readonly claimants = new Map<string, Set<number>>();
  private readonly counters: TupleMatcherStats = {
    matched: 0,
    unmatched: 0,
    ambiguous: 0,
    unreadable: 0,
    refused: 0,
    contested: 0,
  };

  constructor(options: TupleMatcherOptions = {}) {
    super();
    const expected = options.expectedEntries ?? 1024;
    if (!Number.isInteger(expected) || expected < 1 || expected > MAX_CAPACITY / 2)
      throw new Error(
        `tuple matcher: expectedEntries ${expected} must be an integer from 1 to ${MAX_CAPACITY / 2}`,
      );
    let capacity = 8;
    while (capacity < expected * 2) capacity *= 2;
    this.keyAddr = new Uint32Array(capacity);
    this.keyPorts = new Uint32Array(capacity);
    this.keyProto = new Uint8Array(capacity);
    this.owners = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    let seed = options.seed;
    if (!seed) {
      const s = new Uint32Array(2);
      randomFillSync(s);
      seed = [s[0]!, s[1]!];
    }
    this.seedA = seed[0] >>> 0;
    this.seedB = seed[1] >>> 0;
  }

  /** Tuples in the table (contested ones included). */
  get size(): number {
    return this.count;
  }

  /** Slots (a power of two). */
  get capacity(): number {
    return this.mask + 1;
  }

  /** Owner of the tuple, TUPLE_AMBIGUOUS when contested, TUPLE_NO_MATCH when absent. Counts nothing. */
  ownerOf(tuple: ConversationTuple): number {
    const t = checkTuple(tuple);
    const i = this.slotOf(t.remoteAddress, packPorts(t.remotePort, t.localPort), t.protocol);
    if (i < 0) return TUPLE_NO_MATCH;
    const owner = this.owners[i]!;
    return owner === CONTESTED ? TUPLE_AMBIGUOUS : owner;
  }

  /**
   * The owner of the conversation a reply belongs to: `remoteAddress` is the reply's IP source,
   * `remotePort` its source port, `localPort` its destination port. Returns the owner, TUPLE_NO_MATCH or
   * TUPLE_AMBIGUOUS (deliver to nobody), and counts the outcome.
   */
  lookup(remoteAddress: number, remotePort: number, localPort: number, protocol: number): number {
    return this.lookupKey(remoteAddress >>> 0, packPorts(remotePort, localPort), protocol);
  }

  /**
   * lookup() for the inbound IPv4 packet at buf[ipOff, end), its fields read straight from the bytes.
   * TUPLE_UNREADABLE (counted) when it shows no tuple: not IPv4, a protocol without ports, a fragment other
   * than the first (it carries no transport header), or ports beyond the captured bytes.
   */
  lookupPacket(buf: Uint8Array, ipOff: number, end = buf.length): number {
    if (end - ipOff < 20) return this.unreadable();
    const vihl = buf[ipOff]!;
    const headerLength = (vihl & 0x0f) << 2;
    if (vihl >>> 4 !== 4 || headerLength < 20) return this.unreadable();
    if (((buf[ipOff + 6]! & 0x1f) | buf[ipOff + 7]!) !== 0) return this.unreadable();
    const protocol = buf[ipOff + 9]!;
    if (!isPortProtocol(protocol)) return this.unreadable();
    const t = ipOff + headerLength;
    if (t + 4 > end) return this.unreadable();
    const remote =
      ((buf[ipOff + 12]! << 24) | (buf[ipOff + 13]! << 16) | (buf[ipOff + 14]! << 8) | buf[ipOff + 15]!) >>>
      0;
    const ports = ((buf[t]! << 24) | (buf[t + 1]! << 16) | (buf[t + 2]! << 8) | buf[t + 3]!) >>> 0;
    return this.lookupKey(remote, ports, protocol);
  }

  private lookupKey(addr: number, ports: number, protocol: number): number {
    const i = this.slotOf(addr, ports, protocol);
    if (i < 0) {
      this.counters.unmatched++;
      return TUPLE_NO_MATCH;
    }
    const owner = this.owners[i]!;
    if (owner === CONTESTED) {
      this.counters.ambiguous++;
      return TUPLE_AMBIGUOUS;
    }
    this.counters.matched++;
    return owner;
  }

  /**
   * Claims `tuple` for `owner` before use. Throws TupleConflictError (after emitting `tuple-conflict`,
   * kind 'refused') when another owner holds it or it is contested; the table is then unchanged.
   * Registering a tuple the owner already holds does nothing.
   */
  register(tuple: ConversationTuple, owner: number): void {
    const t = checkTuple(tuple);
    checkOwner(owner);
    const ports = packPorts(t.remotePort, t.localPort);
    const i = this.slotOf(t.remoteAddress, ports, t.protocol);
    if (i >= 0) {
      const held = this.owners[i]!;
      if (held === owner) return;
      const conflict: TupleConflict = {
        tuple: { ...t },
        owner: held === CONTESTED ? this.firstClaimant(i) : held,
        claimant: owner,
        kind: 'refused',
      };
      this.counters.refused++;
      this.emit('tuple-conflict', conflict);
      throw new TupleConflictError(conflict);
    }
    this.insert(t.remoteAddress, ports, t.protocol, owner);
  }

  /**
   * Reports that `owner` was seen using `tuple`. A tuple nobody held becomes `owner`'s; a tuple another owner
   * holds becomes contested (`tuple-conflict`, kind 'contested') and its replies go to nobody. Returns
   * whether the tuple is now owned (by `owner`) or contested.
   */
  reportUse(tuple: ConversationTuple, owner: number): 'owned' | 'contested' {
    const t = checkTuple(tuple);
    checkOwner(owner);
    const ports = packPorts(t.remotePort, t.localPort);
    const i = this.slotOf(t.remoteAddress, ports, t.protocol);
    if (i < 0) {
      this.insert(t.remoteAddress, ports, t.protocol, owner);
      return 'owned';
    }
    const held = this.owners[i]!;
    if (held === owner) return 'owned';
    const key = slotKey(t.remoteAddress, ports, t.protocol);
    let claimants = this.claimants.get(key);
    if (held !== CONTESTED) {
      claimants = new Set([held]);
      this.claimants.set(key, claimants);
      this.owners[i] = CONTESTED;
      this.counters.contested++;
    }
    if (!claimants!.has(owner)) {
      claimants!.add(owner);
      this.emit('tuple-conflict', {
        tuple: { ...t },
        owner: held === CONTESTED ? this.firstClaimant(i) : held,
        claimant: owner,
        kind: 'contested',
      });
    }
    return 'contested';
  }

  /**
   * Withdraws `owner`'s claim on `tuple`: the entry goes when it was the owner's alone; a contested tuple
   * loses one claimant (and is owned again when one is left). False when `owner` had no claim on it.
   */
  unregister(tuple: ConversationTuple, owner: number): boolean {
    const t = checkTuple(tuple);
    const ports = packPorts(t.remotePort, t.localPort);
    const i = this.slotOf(t.remoteAddress, ports, t.protocol);
    if (i < 0) return false;
    const held = this.owners[i]!;
    if (held !== CONTESTED) {
      if (held !== owner) return false;
      this.removeSlot(i);
      return true;
    }
    const key = slotKey(t.remoteAddress, ports, t.protocol);
    const claimants = this.claimants.get(key)!;
    if (!claimants.delete(owner)) return false;
    if (claimants.size === 1) {
      const [last] = claimants;
      this.owners[i] = last!;
      this.claimants.delete(key);
      this.counters.contested--;
      this.emit('tuple-resolved', { tuple: { ...t }, owner: last! });
    }
    return true;
  }

  /**
   * A local port in [first, last] whose tuple with this remote end is free here (neither held nor contested),
   * searching from `start` (default `first`) and wrapping; -1 when every port of the range is taken.
   * For an agent whose registration was refused.
   */
  freeLocalPort(
    remoteAddress: number,
    remotePort: number,
    protocol: number,
    first = 32768,
    last = 60999,
    start = first,
  ): number {
    if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 1 && first <= last && last <= 0xffff))
      throw new Error(`local port range ${first}–${last} must lie within 1–65535, first ≤ last`);
    if (!Number.isInteger(start) || start < first || start > last)
      throw new Error(`start port ${start} must lie in the range ${first}–${last}`);
    const span = last - first + 1;
    for (let k = 0; k < span; k++) {
      const port = first + ((start - first + k) % span);
      if (this.slotOf(remoteAddress >>> 0, packPorts(remotePort, port), protocol) < 0) return port;
    }
    return -1;
  }

  /** Every tuple with its owner (TUPLE_AMBIGUOUS when contested); allocates, for tests and diagnostics. */
  entries(): { tuple: ConversationTuple; owner: number }[] {
    const out: { tuple: ConversationTuple; owner: number }[] = [];
    for (let i = 0; i <= this.mask; i++) {
      const owner = this.owners[i]!;
      if (owner === EMPTY) continue;
      out.push({ tuple: this.tupleAt(i), owner: owner === CONTESTED ? TUPLE_AMBIGUOUS : owner });
    }
    return out;
  }

  stats(): TupleMatcherStats {
    return { ...this.counters };
  }

  /** Probe distance of the entry farthest from its home slot (for tests of clustering). */
  maxProbeDistance(): number {
    let max = 0;
    for (let i = 0; i <= this.mask; i++) {
      if (this.owners[i] === EMPTY) continue;
      const d = (i - this.homeSlot(this.keyAddr[i]!, this.keyPorts[i]!, this.keyProto[i]!)) & this.mask;
      if (d > max) max = d;
    }
    return max;
  }

  /** The slot where probing starts: murmur3's 32-bit mixing over the keys, seeded. */
  private homeSlot(addr: number, ports: number, protocol: number): number {
    let h = Math.imul((ports ^ this.seedB) >>> 0, 0xcc9e2d51);
    h = ((h << 15) | (h >>> 17)) ^ addr ^ this.seedA;
    h = Math.imul(h ^ (h >>> 16) ^ protocol, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  private slotOf(addr: number, ports: number, protocol: number): number {
    const keyAddr = this.keyAddr;
    const keyPorts = this.keyPorts;
    const keyProto = this.keyProto;
    const owners = this.owners;
    const mask = this.mask;
    let i = this.homeSlot(addr, ports, protocol);
    for (;;) {
      if (owners[i] === EMPTY) return -1;
      if (keyPorts[i] === ports && keyAddr[i] === addr && keyProto[i] === protocol) return i;
      i = (i + 1) & mask;
    }
  }

  private insert(addr: number, ports: number, protocol: number, owner: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    let i = this.homeSlot(addr, ports, protocol);
    while (this.owners[i] !== EMPTY) i = (i + 1) & this.mask;
    this.keyAddr[i] = addr;
    this.keyPorts[i] = ports;
    this.keyProto[i] = protocol;
    this.owners[i] = owner;
    this.count++;
  }

  /** Backward-shift deletion (Knuth 6.4, algorithm R): no tombstones, lookups never slow down. */
  private removeSlot(hole: number): void {
    const { keyAddr, keyPorts, keyProto, owners, mask } = this;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      if (owners[j] === EMPTY) break;
      const home = this.homeSlot(keyAddr[j]!, keyPorts[j]!, keyProto[j]!);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        keyAddr[hole] = keyAddr[j]!;
        keyPorts[hole] = keyPorts[j]!;
        keyProto[hole] = keyProto[j]!;
        owners[hole] = owners[j]!;
        hole = j;
      }
    }
    owners[hole] = EMPTY;
    this.count--;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    if (capacity > MAX_CAPACITY) throw new Error(`tuple matcher: more than ${MAX_CAPACITY / 2} tuples`);
    const { keyAddr, keyPorts, keyProto, owners } = this;
    this.keyAddr = new Uint32Array(capacity);
    this.keyPorts = new Uint32Array(capacity);
    this.keyProto = new Uint8Array(capacity);
    this.owners = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    for (let i = 0; i < owners.length; i++) {
      if (owners[i] === EMPTY) continue;
      let j = this.homeSlot(keyAddr[i]!, keyPorts[i]!, keyProto[i]!);
      while (this.owners[j] !== EMPTY) j = (j + 1) & this.mask;
      this.keyAddr[j] = keyAddr[i]!;
      this.keyPorts[j] = keyPorts[i]!;
      this.keyProto[j] = keyProto[i]!;
      this.owners[j] = owners[i]!;
    }
  }

  private tupleAt(i: number): ConversationTuple {
    const ports = this.keyPorts[i]!;
    return {
      remoteAddress: this.keyAddr[i]!,
      remotePort: ports >>> 16,
      localPort: ports & 0xffff,
      protocol: this.keyProto[i]!,
    };
  }

  private firstClaimant(i: number): number {
    const ports = this.keyPorts[i]!;
    const [first] = this.claimants.get(slotKey(this.keyAddr[i]!, ports, this.keyProto[i]!))!;
    return first!;
  }

  private unreadable(): number {
    this.counters.unreadable++;
    return TUPLE_UNREADABLE;
  }
}

function isPortProtocol(p: number): boolean {
  return p === 6 || p === 17 || p === 33 || p === 136 || p === 132;
}

/** Remote and local port as one uint32 key. */
function packPorts(remotePort: number, localPort: number): number {
  return ((remotePort << 16) | localPort) >>> 0;
}

function slotKey(addr: number, ports: number, protocol: number): string {
  return `${addr >>> 0}/${ports >>> 0}/${protocol}`;
}

/** Validates a tuple from the caller (a configuration error throws, saying which field). */
function checkTuple(t: ConversationTuple): ConversationTuple {
  if (!(Number.isInteger(t.remoteAddress) && t.remoteAddress >= 0 && t.remoteAddress <= 0xffffffff))
    throw new Error(
      `tuple remoteAddress ${t.remoteAddress} is not an unsigned 32-bit IPv4 address (use parseIpv4)`,
    );
  for (const field of ['remotePort', 'localPort'] as const)
    if (!(Number.isInteger(t[field]) && t[field] >= 0 && t[field] <= 0xffff))
      throw new Error(`tuple ${field} ${t[field]} is not a port number 0–65535`);
  if (!isPortProtocol(t.protocol))
    throw new Error(
      `tuple protocol ${t.protocol} carries no ports: use one of ${PORT_PROTOCOLS.join(', ')} (TCP, UDP, DCCP, UDP-Lite, SCTP)`,
    );
  return t;
}

function checkOwner(owner: number): void {
  if (!Number.isInteger(owner) || owner < 0 || owner > MAX_OWNER)
    throw new RangeError(`tuple owner ${owner} must be an integer from 0 to 2^31 − 1`);
}
