/**
 * The router's guard on directed broadcasts into a subnet of the broadcast scheme. The router forwards
 * packets sent to the subnet's broadcast address (Linux `bc_forwarding`) because that is how replies reach
 * the hosts; without a guard anyone could use that to make every host of the subnet answer one packet at
 * once — a smurf-style reflection and amplification attack. So only what looks like a reply goes in:
 *
 * | packet to the broadcast address                        | verdict                                        |
 * |--------------------------------------------------------|------------------------------------------------|
 * | anonymity layer (protocol 253 or configured)           | allowed: the hosts' filters decide by SID      |
 * | TCP with ACK set (SYN-ACK, data, FIN-ACK, RST-ACK …)   | allowed                                        |
 * | TCP with RST alone                                     | allowed: no host ever answers a reset          |
 * | TCP SYN without ACK                                    | dropped `tcp-syn` (a connection request)       |
 * | other TCP without ACK (FIN, NULL, Xmas scans …)        | dropped `tcp-no-ack`                           |
 * | UDP to a port in the hosts' ephemeral range            | allowed (default 32768–60999, Linux's range)   |
 * | UDP to any other port (echo, chargen, DNS, NTP …)      | dropped `udp-port`                             |
 * | ICMP echo reply, destination unreachable, time         | allowed: answers to the hosts' own packets     |
 * |   exceeded, parameter problem                          |                                                |
 * | ICMP echo request                                      | dropped `icmp-echo-request` (the smurf packet) |
 * | ICMP timestamp, information, address mask, router     | dropped `icmp-request`                         |
 * |   solicitation requests                                |                                                |
 * | any other ICMP type (redirect, source quench …)        | dropped `icmp-type`                            |
 * | any other protocol                                     | dropped `protocol`                             |
 * | source address inside the same subnet                  | dropped `source-inside-subnet` (spoofed: a     |
 * |                                                        |   reply from outside never comes from inside)  |
 *
 * Fragments: only the first carries the transport header. A first fragment that is allowed is remembered
 * by (source, destination, IP ID, protocol) for `fragmentMemoryMs` (default 30 s, Linux's reassembly
 * timeout) and the later fragments of that datagram are allowed with it; a later fragment with no allowed
 * first fragment is dropped (`fragment-unmatched`) — including one that overtook its first fragment. The
 * memory is a fixed table of 1024 entries where a new datagram overwrites an old one in its slot: under
 * heavy fragmented load a datagram may lose its tail (counted), never another datagram's tail slip through.
 *
 * Packets with a transport header cut short by the capture are dropped `truncated`; a broken IPv4 header
 * `malformed`. Packets to any other address (and frames without IPv4) pass unchanged (`passedThrough`): this
 * guard judges only directed broadcasts. Place it on the router's path into the subnet.
 *
 * The guard is coarse by design: it stops the reflection, while each host still delivers only its own
 * sessions (SID filter, tuple matcher).
 */
import { BroadcastSubnet } from '../anonymity-layer/broadcast-subnet.js';
import { ICMPV4_PROTOCOL } from '../codec/icmp.js';
import { networkOffset } from '../codec/network-offset.js';
import { TCP_PROTOCOL } from '../codec/tcp.js';
import { UDP_PROTOCOL } from '../codec/udp.js';
import type { Packet } from '../packet.js';
import { countDrop, type Emit, emptyStats, type Stage, type StageStats } from '../stages/stage.js';

export interface BroadcastGuardOptions {
  /** The subnets whose broadcast address is guarded, "198.18.5.0/24" or parsed. */
  subnets: readonly (string | BroadcastSubnet)[];
  /** UDP destination ports the hosts use for their own side of conversations (default [32768, 60999]). */
  ephemeralPorts?: readonly [number, number];
  /** IP protocol number of the anonymity layer (default 253). */
  anonProtocol?: number;
  /** How long an allowed first fragment lets the rest of its datagram in (default 30 000 ms). */
  fragmentMemoryMs?: number;
  name?: string;
}

const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

/** Slots of the fragment memory (a power of two). */
const FRAGMENT_SLOTS = 1024;

/** ICMP types that answer something a host sent: echo reply and the error messages. */
function icmpVerdict(type: number): string | null {
  switch (type) {
    case 0: // echo reply
    case 3: // destination unreachable
    case 11: // time exceeded
    case 12: // parameter problem
      return null;
    case 8:
      return 'icmp-echo-request';
    case 10: // router solicitation
    case 13: // timestamp
    case 15: // information request
    case 17: // address mask request
      return 'icmp-request';
    default:
      return 'icmp-type';
  }
}

export class BroadcastGuardStage implements Stage {
  readonly name: string;
  readonly subnets: readonly BroadcastSubnet[];
  private readonly broadcasts: Uint32Array;
  private readonly masks: Uint32Array;
  private readonly networks: Uint32Array;
  private readonly portLow: number;
  private readonly portHigh: number;
  private readonly anonProtocol: number;
  private readonly memoryNs: number;
  // Fragment memory: source, destination, ID << 8 | protocol, and until when (ns, as a double).
  private readonly fragSrc = new Uint32Array(FRAGMENT_SLOTS);
  private readonly fragDst = new Uint32Array(FRAGMENT_SLOTS);
  private readonly fragIdProto = new Int32Array(FRAGMENT_SLOTS).fill(-1);
  private readonly fragUntil = new Float64Array(FRAGMENT_SLOTS);
  private readonly version: { ip: 4 | 6 } = { ip: 4 };
  private readonly counters: StageStats = { ...emptyStats(), allowed: 0, passedThrough: 0 };

  constructor(options: BroadcastGuardOptions) {
    if (!options.subnets || options.subnets.length === 0)
      throw new Error(
        'broadcast guard: give at least one subnet ("198.18.5.0/24") whose broadcasts it guards',
      );
    this.subnets = options.subnets.map((s) => BroadcastSubnet.from(s));
    this.broadcasts = Uint32Array.from(this.subnets, (s) => s.broadcast);
    this.masks = Uint32Array.from(this.subnets, (s) => s.mask);
    this.networks = Uint32Array.from(this.subnets, (s) => s.network);
    const [low, high] = options.ephemeralPorts ?? [32768, 60999];
    if (!(Number.isInteger(low) && Number.isInteger(high) && low >= 1 && low <= high && high <= 0xffff))
      throw new Error(`ephemeralPorts [${low}, ${high}] must be a range within 1–65535, low ≤ high`);
    this.portLow = low;
    this.portHigh = high;
    this.anonProtocol = options.anonProtocol ?? 253;
    if (!Number.isInteger(this.anonProtocol) || this.anonProtocol < 0 || this.anonProtocol > 255)
      throw new Error(`anonProtocol ${options.anonProtocol} is not an IP protocol number 0–255`);
    const memoryMs = options.fragmentMemoryMs ?? 30_000;
    if (!(Number.isFinite(memoryMs) && memoryMs >= 0))
      throw new Error(`fragmentMemoryMs ${memoryMs} must be a non-negative number of milliseconds`);
    this.memoryNs = memoryMs * 1e6;
    this.name = options.name ?? 'broadcast-guard';
  }

  process(pkt: Packet, emit: Emit): void {
    const c = this.counters;
    c.packetsIn++;
    const data = pkt.data;
    const ip = networkOffset(data, pkt.link, this.version);
    const end = data.length;
    if (ip < 0 || this.version.ip !== 4 || end - ip < 20) {
      this.pass(pkt, emit);
      return;
    }
    const dst =
      ((data[ip + 16]! << 24) | (data[ip + 17]! << 16) | (data[ip + 18]! << 8) | data[ip + 19]!) >>> 0;
    const subnet = this.subnetOf(dst);
    if (subnet < 0) {
      this.pass(pkt, emit);
      return;
    }
    const verdict = this.judge(data, ip, end, dst, subnet, Number(pkt.ts));
    if (verdict !== null) {
      countDrop(c, verdict);
      return;
    }
    c.allowed = (c.allowed as number) + 1;
    c.packetsOut++;
    emit(pkt);
  }

  stats(): StageStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Index of the guarded subnet whose broadcast address is `dst`, or -1. */
  private subnetOf(dst: number): number {
    const b = this.broadcasts;
    for (let i = 0; i < b.length; i++) if (b[i] === dst) return i;
    return -1;
  }

  /** null to allow, else the drop reason (the table in the file comment). */
  private judge(
    data: Buffer,
    ip: number,
    end: number,
    dst: number,
    subnet: number,
    now: number,
  ): string | null {
    const vihl = data[ip]!;
    const headerLength = (vihl & 0x0f) << 2;
    const totalLength = (data[ip + 2]! << 8) | data[ip + 3]!;
    if (vihl >>> 4 !== 4 || headerLength < 20 || totalLength < headerLength) return 'malformed';
    const src =
      ((data[ip + 12]! << 24) | (data[ip + 13]! << 16) | (data[ip + 14]! << 8) | data[ip + 15]!) >>> 0;
    if ((src & this.masks[subnet]!) >>> 0 === this.networks[subnet]) return 'source-inside-subnet';
    const protocol = data[ip + 9]!;
    const fragField = ((data[ip + 6]! & 0x3f) << 8) | data[ip + 7]!; // MF and the offset
    const idProto = (((data[ip + 4]! << 8) | data[ip + 5]!) << 8) | protocol;
    if ((fragField & 0x1fff) !== 0) return this.recalls(src, dst, idProto, now) ? null : 'fragment-unmatched';

    let verdict: string | null;
    const t = ip + headerLength;
    if (protocol === this.anonProtocol) verdict = null;
    else if (protocol === TCP_PROTOCOL) {
      if (t + 14 > end) return 'truncated';
      const flags = data[t + 13]!;
      if (flags & TCP_ACK) verdict = null;
      else if (flags & TCP_SYN) verdict = 'tcp-syn';
      else verdict = flags & TCP_RST ? null : 'tcp-no-ack';
    } else if (protocol === UDP_PROTOCOL) {
      if (t + 4 > end) return 'truncated';
      const port = (data[t + 2]! << 8) | data[t + 3]!;
      verdict = port >= this.portLow && port <= this.portHigh ? null : 'udp-port';
    } else if (protocol === ICMPV4_PROTOCOL) {
      if (t + 1 > end) return 'truncated';
      verdict = icmpVerdict(data[t]!);
    } else verdict = 'protocol';
    // An allowed first fragment (More Fragments set) lets the rest of its datagram in.
    if (verdict === null && fragField !== 0) this.remember(src, dst, idProto, now);
    return verdict;
  }

  private slot(src: number, dst: number, idProto: number): number {
    let h = Math.imul(src ^ idProto, 0x9e3779b1);
    h = Math.imul(h ^ dst ^ (h >>> 15), 0x85ebca6b);
    return (h ^ (h >>> 13)) & (FRAGMENT_SLOTS - 1);
  }

  private remember(src: number, dst: number, idProto: number, now: number): void {
    const i = this.slot(src, dst, idProto);
    this.fragSrc[i] = src;
    this.fragDst[i] = dst;
    this.fragIdProto[i] = idProto;
    this.fragUntil[i] = now + this.memoryNs;
  }

  private recalls(src: number, dst: number, idProto: number, now: number): boolean {
    const i = this.slot(src, dst, idProto);
    return (
      this.fragIdProto[i] === idProto &&
      this.fragSrc[i] === src &&
      this.fragDst[i] === dst &&
      now <= this.fragUntil[i]!
    );
  }

  private pass(pkt: Packet, emit: Emit): void {
    this.counters.passedThrough = (this.counters.passedThrough as number) + 1;
    this.counters.packetsOut++;
    emit(pkt);
  }
}
