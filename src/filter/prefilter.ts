/**
 * The kernel prefilter of a host in the broadcast scheme: a libpcap filter expression (pcap-filter(7)) that
 * keeps this host's replies out of everything broadcast into the subnet, so other hosts' replies are dropped
 * in the kernel before they cost a copy to user space. It is built from the host's active session IDs
 * (advanced mode: the clear current SID right after the IPv4 header of protocol 253, or the configured one)
 * and its basic-mode conversation tuples. The exact decision is still made afterwards in JavaScript (the
 * session table, the tuple matcher); the prefilter only has to never drop the host's own packets.
 *
 * ## Shape
 *
 *   [ip dst host BROADCAST and] ( SIDS or TUPLES )
 *   SIDS   = (ip proto 253 and (ip[0] != 0x45 or ip[6:2] & 0x1fff != 0 or
 *                               (ip[20:4] = HI and ip[24:4] = LO) or …))
 *   TUPLES = (ip proto 6 and ((ip src host R and (ip[0] != 0x45 or ip[6:2] & 0x1fff != 0 or
 *                                                 ip[20:4] = REMOTEPORT<<16|LOCALPORT or …)) or …))
 *
 * Fields are read at fixed offsets (IPv4 header of 20 bytes), which the optimizer turns into one load and
 * a chain of comparisons. A packet whose session cannot be read there is let through for the JavaScript
 * check: IP options (IHL ≠ 5), and fragments after the first (no SID or ports in them) — for tuples, only
 * from a remote the host talks to. Every clause is parenthesized: in pcap-filter `and` and `or` have the
 * same precedence and group left to right, so `a and b or c and d` means `((a and b) or c) and d`.
 *
 * ## Size budget and fallback
 *
 * The kernel refuses classic BPF programs over 4096 instructions (BPF_MAXINSNS), and a long program costs
 * every packet and libpcap's optimizer time. Measured with `tcpdump -d` (libpcap 1.10.3, Ethernet): a SID
 * costs 3 instructions while conditional jumps reach (255 instructions), 5 beyond, where libpcap inserts long
 * jumps; 590 SIDs take 2798 instructions and 0.3 s to compile, 800 take 3845, 2000 take 9845 and 2.5 s. A
 * tuple costs about 2 instructions plus about 8 per remote host. The default budget of 3000 estimated
 * instructions (about 590 SIDs, or 250 tuples with 250 remotes, or 1300 tuples with 20) keeps a quarter of
 * the kernel limit spare for clauses a capture adds (non-promiscuous emulation) and another link layer, and
 * compiles in about 0.3 s at most — it matters, since SIDs rotate and the filter is rebuilt with them. The
 * cost model errs high: the tests compare it with `tcpdump -d`. Beyond the budget:
 *
 * 1. `prefix`: SIDs are matched on the first k bits of their high half (`ip[20:4] & MASK = VALUE`), k as
 *    large as fits (k = 32 is the whole high half): fewer, broader clauses, one per distinct prefix, about
 *    2 instructions each. Tuples drop their ports and keep the remote host (`ip src host R`, tupleMatch
 *    'remote'), or, when even that is too long, the remote network of as many bits as fit
 *    (`ip[12:4] & MASK = NET`, 'remote-prefix').
 * 2. `protocol`: a part that still does not fit keeps only its protocol (`ip proto 253`, `ip proto 6`).
 *
 * The combination chosen is the one fitting the budget that gives the most SIDs and tuples a clause of their
 * own, then the narrowest. `exact` is true when every SID and tuple has one (`fallback: 'none'`): then a
 * packet whose session is readable at the fixed offsets passes only if it is the host's.
 */
import { ipv4String } from '../codec/ip-address.js';
import type { ConversationTuple } from './tuple-matcher.js';

/** Estimated BPF instructions a prefilter may take by default (see the file comment). */
export const PREFILTER_INSTRUCTION_BUDGET = 3000;
/** The kernel's limit on a classic BPF program (BPF_MAXINSNS). */
export const BPF_MAX_INSTRUCTIONS = 4096;

/** A 64-bit session ID as its uint32 halves. */
export interface SidHalves {
  hi: number;
  lo: number;
}

export interface PrefilterOptions {
  /** The host's active SIDs: every SID it accepts now (current and announced next, per session). */
  sids?: readonly SidHalves[];
  /** The host's basic-mode conversations. */
  tuples?: readonly ConversationTuple[];
  /** IP protocol number of the anonymity layer (default 253). */
  anonProtocol?: number;
  /** The subnet's broadcast address (a number): when given, only packets sent to it pass. */
  broadcastAddress?: number;
  /** Instruction budget (default PREFILTER_INSTRUCTION_BUDGET, at most BPF_MAX_INSTRUCTIONS). */
  maxInstructions?: number;
}

export type PrefilterFallback = 'none' | 'prefix' | 'protocol';

export interface Prefilter {
  /** A libpcap filter expression (for LiveCapture's `filter`, tcpdump, tshark -f). */
  expression: string;
  /** Every SID and tuple has a clause of its own. */
  exact: boolean;
  /** How many of the given (distinct) SIDs and tuples have a clause of their own; the rest pass broader ones. */
  sessionsCovered: number;
  /** The broadest fallback either part uses. */
  fallback: PrefilterFallback;
  /** How SIDs were matched: whole, by the first `sidPrefixBits` bits, by protocol alone; 'none' without SIDs. */
  sidMatch: 'exact' | 'prefix' | 'protocol' | 'none';
  sidPrefixBits: number;
  /**
   * How tuples were matched: whole; by remote host; by remote network of `remotePrefixBits` bits; by
   * protocol alone; 'none' without tuples.
   */
  tupleMatch: 'exact' | 'remote' | 'remote-prefix' | 'protocol' | 'none';
  remotePrefixBits: number;
  /** Estimated instructions of the compiled program (the cost model the budget is checked against). */
  estimatedInstructions: number;
}

// Cost model, in BPF instructions (libpcap 1.10.3; the tests check it against `tcpdump -d`).
const COST_BASE = 16;
const COST_BROADCAST = 2;
const COST_PART = 14;
const COST_PROTOCOL = 3;
const COST_SID = 5;
/** A prefix clause, remote host or remote network: one masked comparison after a shared load. */
const COST_PREFIX = 2;
const COST_REMOTE_GROUP = 9;
const COST_PORTS = 2;

/** Packets whose session sits elsewhere than the fixed offsets: IP options, or a fragment after the first. */
const NOT_AT_FIXED_OFFSETS = 'ip[0] != 0x45 or ip[6:2] & 0x1fff != 0';

function hex32(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Distinct values of the top `bits` bits of sorted uint32s. */
function prefixes(sorted: readonly number[], bits: number): number[] {
  const mask = maskOf(bits);
  const out: number[] = [];
  for (const v of sorted) {
    const p = (v & mask) >>> 0;
    if (out.length === 0 || out[out.length - 1] !== p) out.push(p);
  }
  return out;
}

/** The most prefix bits (up to `max`) whose distinct prefixes cost at most `room`; 0 when none fits. */
function bestPrefixBits(sorted: readonly number[], max: number, overhead: number, room: number): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    // Prefixes only get more numerous with more bits, so the largest fitting count is found by bisection.
    if (overhead + COST_PREFIX * prefixes(sorted, mid).length <= room) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** One way of matching one kind of session (SIDs or tuples). */
interface Choice {
  clause: string;
  cost: number;
  /** Sessions with a clause of their own. */
  covered: number;
  /** Higher is narrower, for ties between combinations that cover as many sessions. */
  narrowness: number;
  match: string;
  bits: number;
}

/** Ways of matching a set of sessions, broadest first; `options(room)` lists those costing at most `room`. */
interface Part {
  minCost: number;
  options(room: number): Choice[];
}

function sidPart(sids: readonly SidHalves[], protocol: number): Part {
  const proto = `ip proto ${protocol}`;
  const sortedHi = sids.map((s) => s.hi);
  const protocolOnly: Choice = {
    clause: `(${proto})`,
    cost: COST_PROTOCOL,
    covered: 0,
    narrowness: 0,
    match: 'protocol',
    bits: 0,
  };
  const exactCost = COST_PART + COST_SID * sids.length;
  return {
    minCost: COST_PROTOCOL,
    options(room) {
      const out = [protocolOnly];
      if (exactCost <= room) {
        const clauses = sids.map((s) => `(ip[20:4] = ${hex32(s.hi)} and ip[24:4] = ${hex32(s.lo)})`);
        out.push({
          clause: `(${proto} and (${NOT_AT_FIXED_OFFSETS} or ${clauses.join(' or ')}))`,
          cost: exactCost,
          covered: sids.length,
          narrowness: 100,
          match: 'exact',
          bits: 0,
        });
        return out;
      }
      const bits = bestPrefixBits(sortedHi, 32, COST_PART, room);
      if (bits > 0) {
        const values = prefixes(sortedHi, bits);
        const mask = bits === 32 ? '' : ` & ${hex32(maskOf(bits))}`;
        const clauses = values.map((v) => `ip[20:4]${mask} = ${hex32(v)}`);
        out.push({
          clause: `(${proto} and (${NOT_AT_FIXED_OFFSETS} or ${clauses.join(' or ')}))`,
          cost: COST_PART + COST_PREFIX * values.length,
          covered: 0,
          narrowness: bits,
          match: 'prefix',
          bits,
        });
      }
      return out;
    },
  };
}

function tuplePart(tuples: readonly ConversationTuple[]): Part & { distinct: number } {
  // protocol → remote → packed ports
  const byProto = new Map<number, Map<number, Set<number>>>();
  for (const t of tuples) {
    let byRemote = byProto.get(t.protocol);
    if (!byRemote) {
      byRemote = new Map();
      byProto.set(t.protocol, byRemote);
    }
    const remote = t.remoteAddress >>> 0;
    let ports = byRemote.get(remote);
    if (!ports) {
      ports = new Set();
      byRemote.set(remote, ports);
    }
    ports.add(((t.remotePort << 16) | t.localPort) >>> 0);
  }
  const protocols = [...byProto.keys()].sort((a, b) => a - b);
  const protoClause = protocols.map((p) => `ip proto ${p}`).join(' or ');
  const protoCost = COST_PROTOCOL * protocols.length;

  let distinct = 0;
  let exactCost = COST_PART;
  const exactClauses: string[] = [];
  const allRemotes = new Set<number>();
  for (const p of protocols) {
    const byRemote = byProto.get(p)!;
    const groups: string[] = [];
    for (const r of [...byRemote.keys()].sort((a, b) => a - b)) {
      allRemotes.add(r);
      const ports = [...byRemote.get(r)!].sort((a, b) => a - b);
      distinct += ports.length;
      exactCost += COST_REMOTE_GROUP + COST_PORTS * ports.length;
      const portClauses = ports.map((v) => `ip[20:4] = ${hex32(v)}`).join(' or ');
      groups.push(`(ip src host ${ipv4String(r)} and (${NOT_AT_FIXED_OFFSETS} or ${portClauses}))`);
    }
    exactClauses.push(`(ip proto ${p} and (${groups.join(' or ')}))`);
  }
  const remotes = [...allRemotes].sort((a, b) => a - b);
  const remotesOverhead = COST_PART + protoCost;
  const protocolOnly: Choice = {
    clause: `(${protoClause})`,
    cost: protoCost,
    covered: 0,
    narrowness: 0,
    match: 'protocol',
    bits: 0,
  };
  return {
    distinct,
    minCost: protoCost,
    options(room) {
      const out = [protocolOnly];
      if (exactCost <= room)
        out.push({
          clause: exactClauses.length === 1 ? exactClauses[0]! : `(${exactClauses.join(' or ')})`,
          cost: exactCost,
          covered: distinct,
          narrowness: 100,
          match: 'exact',
          bits: 0,
        });
      const hostsCost = remotesOverhead + COST_PREFIX * remotes.length;
      if (hostsCost <= room) {
        const hosts = remotes.map((r) => `ip src host ${ipv4String(r)}`).join(' or ');
        out.push({
          clause: `((${protoClause}) and (${hosts}))`,
          cost: hostsCost,
          covered: 0,
          narrowness: 40,
          match: 'remote',
          bits: 32,
        });
      } else {
        const bits = bestPrefixBits(remotes, 31, remotesOverhead, room);
        if (bits > 0) {
          const nets = prefixes(remotes, bits);
          // ip[12:4] & MASK, not `ip src net`: the optimizer shares one masked load between these clauses
          // (about 2 instructions each) where `net` clauses cost 4.
          const mask = hex32(maskOf(bits));
          const clauses = nets.map((n) => `ip[12:4] & ${mask} = ${hex32(n)}`).join(' or ');
          out.push({
            clause: `((${protoClause}) and (${clauses}))`,
            cost: remotesOverhead + COST_PREFIX * nets.length,
            covered: 0,
            narrowness: bits,
            match: 'remote-prefix',
            bits,
          });
        }
      }
      return out;
    },
  };
}

const NOTHING: Prefilter = {
  expression: 'len = 0', // a packet is never 0 bytes long: nothing passes
  exact: true,
  sessionsCovered: 0,
  fallback: 'none',
  sidMatch: 'none',
  sidPrefixBits: 0,
  tupleMatch: 'none',
  remotePrefixBits: 0,
  estimatedInstructions: 4,
};

/**
 * The prefilter expression for a host's active SIDs and tuples, within the instruction budget (see the file
 * comment for the shape, the budget and the fallbacks). With neither SIDs nor tuples it matches nothing.
 */
export function buildPrefilter(options: PrefilterOptions): Prefilter {
  const protocol = options.anonProtocol ?? 253;
  if (!Number.isInteger(protocol) || protocol < 0 || protocol > 255)
    throw new Error(`anonProtocol ${protocol} is not an IP protocol number 0–255`);
  const budget = options.maxInstructions ?? PREFILTER_INSTRUCTION_BUDGET;
  if (!Number.isInteger(budget) || budget < 64 || budget > BPF_MAX_INSTRUCTIONS)
    throw new Error(
      `maxInstructions ${budget} must be an integer from 64 to ${BPF_MAX_INSTRUCTIONS} (BPF_MAXINSNS)`,
    );
  const sids = distinctSids(options.sids ?? []);
  const tuples = options.tuples ?? [];
  for (const t of tuples) checkTuple(t);
  if (sids.length === 0 && tuples.length === 0) return { ...NOTHING };

  const sidChoices = sids.length > 0 ? sidPart(sids, protocol) : null;
  const tupleChoices = tuples.length > 0 ? tuplePart(tuples) : null;
  const total = sids.length + (tupleChoices?.distinct ?? 0);
  const narrow =
    options.broadcastAddress === undefined
      ? ''
      : `ip dst host ${ipv4String(options.broadcastAddress >>> 0)} and `;
  const room = budget - COST_BASE - (narrow ? COST_BROADCAST : 0);

  // Fix one part's choice and give the other what is left, both ways round; keep the combination covering
  // the most sessions, then the narrowest.
  let best: { sid: Choice | null; tuple: Choice | null; score: number } = {
    sid: null,
    tuple: null,
    score: -1,
  };
  const consider = (sid: Choice | null, tuple: Choice | null) => {
    if ((sid?.cost ?? 0) + (tuple?.cost ?? 0) > room) return;
    const score =
      ((sid?.covered ?? 0) + (tuple?.covered ?? 0)) * 1000 +
      (sid?.narrowness ?? 0) +
      (tuple?.narrowness ?? 0);
    if (score > best.score) best = { sid, tuple, score };
  };
  const fill = (part: Part | null, left: number): (Choice | null)[] => (part ? part.options(left) : [null]);
  for (const sid of fill(sidChoices, room - (tupleChoices?.minCost ?? 0)))
    for (const tuple of fill(tupleChoices, room - (sid?.cost ?? 0))) consider(sid, tuple);
  for (const tuple of fill(tupleChoices, room - (sidChoices?.minCost ?? 0)))
    for (const sid of fill(sidChoices, room - (tuple?.cost ?? 0))) consider(sid, tuple);
  if (best.score < 0)
    throw new Error(`maxInstructions ${budget} is too small even for protocol-only clauses`);

  const { sid, tuple } = best;
  const sidMatch = (sid?.match ?? 'none') as Prefilter['sidMatch'];
  const tupleMatch = (tuple?.match ?? 'none') as Prefilter['tupleMatch'];
  const fallback: PrefilterFallback =
    sidMatch === 'protocol' || tupleMatch === 'protocol'
      ? 'protocol'
      : sidMatch === 'prefix' || tupleMatch === 'remote' || tupleMatch === 'remote-prefix'
        ? 'prefix'
        : 'none';
  const clauses = [sid?.clause, tuple?.clause].filter((c): c is string => c !== undefined);
  const covered = (sid?.covered ?? 0) + (tuple?.covered ?? 0);
  return {
    expression: narrow + (clauses.length === 1 ? clauses[0]! : `(${clauses.join(' or ')})`),
    exact: covered === total,
    sessionsCovered: covered,
    fallback,
    sidMatch,
    sidPrefixBits: sidMatch === 'prefix' ? sid!.bits : 0,
    tupleMatch,
    remotePrefixBits: tupleMatch === 'remote-prefix' ? tuple!.bits : 0,
    estimatedInstructions: budget - room + (sid?.cost ?? 0) + (tuple?.cost ?? 0),
  };
}

/** Distinct SIDs sorted by (hi, lo); throws on a value that is not a SID. */
function distinctSids(sids: readonly SidHalves[]): SidHalves[] {
  for (const s of sids)
    if (
      !(Number.isInteger(s.hi) && Number.isInteger(s.lo)) ||
      s.hi < 0 ||
      s.hi > 0xffffffff ||
      s.lo < 0 ||
      s.lo > 0xffffffff ||
      (s.hi === 0 && s.lo === 0)
    )
      throw new Error(
        `SID ${JSON.stringify(s)}: hi and lo must be uint32 values (0 to 2^32 − 1), not both 0`,
      );
  const sorted = [...sids].sort((a, b) => a.hi - b.hi || a.lo - b.lo);
  return sorted.filter((s, i) => i === 0 || s.hi !== sorted[i - 1]!.hi || s.lo !== sorted[i - 1]!.lo);
}

function checkTuple(t: ConversationTuple): void {
  if (!(Number.isInteger(t.remoteAddress) && t.remoteAddress >= 0 && t.remoteAddress <= 0xffffffff))
    throw new Error(`tuple remoteAddress ${t.remoteAddress} is not an unsigned 32-bit IPv4 address`);
  for (const field of ['remotePort', 'localPort'] as const)
    if (!(Number.isInteger(t[field]) && t[field] >= 0 && t[field] <= 0xffff))
      throw new Error(`tuple ${field} ${t[field]} is not a port number 0–65535`);
  if (!Number.isInteger(t.protocol) || t.protocol < 0 || t.protocol > 255)
    throw new Error(`tuple protocol ${t.protocol} is not an IP protocol number`);
}
