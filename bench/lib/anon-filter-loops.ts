/**
 * The host filter's decision loops over a packed corpus (anon-frames.ts), and the naive baselines they are
 * measured beside: cap's decoders, then a string-keyed Map. Each timed operation decides one chunk of the
 * corpus (the chunks tile it, so successive operations walk the whole corpus and its cache footprint) and
 * checks its keep count against the chunk's truth: a filter that keeps the wrong frames throws instead of
 * looking fast.
 */
import { SessionTable } from '../../src/filter/session-table.js';
import { TupleMatcher } from '../../src/filter/tuple-matcher.js';
import type { HostSession, HostTuple, PackedFrames } from './anon-frames.js';
import type { CapDecoders } from './cap-decoders.js';

const ETH = 14;
const ANON_PROTOCOL = 253;

/** Frame ranges of the chunks and how many own frames each holds. */
interface Chunks {
  starts: Uint32Array;
  truths: Uint32Array;
  count: number;
}

function chunksOf(c: PackedFrames, count: number): Chunks {
  const starts = new Uint32Array(count + 1);
  const truths = new Uint32Array(count);
  for (let k = 0; k <= count; k++) starts[k] = Math.round((c.count * k) / count);
  for (let k = 0; k < count; k++) for (let i = starts[k]!; i < starts[k + 1]!; i++) truths[k]! += c.own[i]!;
  return { starts, truths, count };
}

/** Frames one timed operation decides (the mean chunk). */
export function framesPerOperation(c: PackedFrames, chunks: number): number {
  return c.count / chunks;
}

/** The host's SID table: every session's current and announced next SID, mapped to the session's index. */
export function sessionTable(sessions: readonly HostSession[]): SessionTable {
  const table = new SessionTable({ expectedEntries: sessions.length * 2 });
  sessions.forEach((s, i) => {
    if (!table.add(s.currentHi, s.currentLo, i) || !table.add(s.nextHi, s.nextLo, i))
      throw new Error(`session ${i}: a SID repeats`);
  });
  return table;
}

/** What a naive filter keys its Map by: the SID as 16 hex digits. */
function sidHex(hi: number, lo: number): string {
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

export function sidMap(sessions: readonly HostSession[]): Map<string, number> {
  const map = new Map<string, number>();
  sessions.forEach((s, i) => {
    map.set(sidHex(s.currentHi, s.currentLo), i);
    map.set(sidHex(s.nextHi, s.nextLo), i);
  });
  return map;
}

function mismatch(what: string, chunk: number, kept: number, truth: number): Error {
  return new Error(`${what}: kept ${kept} frames of chunk ${chunk}, but ${truth} are the host's`);
}

/**
 * pktveil's SID filter: EtherType, IPv4 version, protocol 253, not a later fragment, the SID inside the
 * frame, then SessionTable.lookupAt straight from the frame's bytes.
 */
export function sidFilterLoop(c: PackedFrames, table: SessionTable, chunkCount: number): () => void {
  const { bytes, offsets, lengths } = c;
  const { starts, truths } = chunksOf(c, chunkCount);
  let k = 0;
  return () => {
    let kept = 0;
    const end = starts[k + 1]!;
    for (let i = starts[k]!; i < end; i++) {
      const o = offsets[i]!;
      if (bytes[o + 12] !== 0x08 || bytes[o + 13] !== 0x00) continue;
      const vihl = bytes[o + ETH]!;
      if (vihl >>> 4 !== 4 || bytes[o + ETH + 9] !== ANON_PROTOCOL) continue;
      if (((bytes[o + ETH + 6]! & 0x1f) | bytes[o + ETH + 7]!) !== 0) continue;
      const sid = o + ETH + ((vihl & 0x0f) << 2);
      if (sid + 8 > o + lengths[i]!) continue;
      if (table.lookupAt(bytes, sid) >= 0) kept++;
    }
    if (kept !== truths[k]) throw mismatch('SessionTable filter', k, kept, truths[k]!);
    k = k + 1 === chunkCount ? 0 : k + 1;
  };
}

/** The naive SID filter: cap's Ethernet and IPv4 decoders, then the SID as hex looked up in a Map. */
export function sidBaselineLoop(
  c: PackedFrames,
  cap: CapDecoders,
  map: Map<string, number>,
  chunkCount: number,
): () => void {
  const { bytes, offsets, lengths } = c;
  const { starts, truths } = chunksOf(c, chunkCount);
  let k = 0;
  return () => {
    let kept = 0;
    const end = starts[k + 1]!;
    for (let i = starts[k]!; i < end; i++) {
      const o = offsets[i]!;
      const eth = cap.Ethernet(bytes, o);
      if (eth.info.type !== 0x0800) continue;
      const ip = cap.IPV4(bytes, eth.offset);
      if (ip.info.protocol !== ANON_PROTOCOL || ip.info.fragoffset !== 0) continue;
      if (ip.offset + 8 > o + lengths[i]!) continue;
      if (map.has(bytes.toString('hex', ip.offset, ip.offset + 8))) kept++;
    }
    if (kept !== truths[k]) throw mismatch('cap + Map<hex SID> filter', k, kept, truths[k]!);
    k = k + 1 === chunkCount ? 0 : k + 1;
  };
}

/** The host's basic-mode table: every tuple registered to its index. */
export function tupleMatcher(tuples: readonly HostTuple[]): TupleMatcher {
  const matcher = new TupleMatcher({ expectedEntries: tuples.length });
  tuples.forEach((t, i) => {
    matcher.register(t, i);
  });
  return matcher;
}

function tupleKey(src: string, srcPort: number, dstPort: number, protocol: number): string {
  return `${src}:${srcPort}:${dstPort}:${protocol}`;
}

/** What a naive basic-mode filter keys its Map by: remote address and ports, protocol, as one string. */
export function tupleMap(tuples: readonly HostTuple[]): Map<string, number> {
  const map = new Map<string, number>();
  tuples.forEach((t, i) => {
    const a = t.remoteAddress;
    const dotted = `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
    map.set(tupleKey(dotted, t.remotePort, t.localPort, t.protocol), i);
  });
  return map;
}

/** pktveil's basic-mode filter: EtherType, then TupleMatcher.lookupPacket on the IPv4 packet's bytes. */
export function tupleFilterLoop(c: PackedFrames, matcher: TupleMatcher, chunkCount: number): () => void {
  const { bytes, offsets, lengths } = c;
  const { starts, truths } = chunksOf(c, chunkCount);
  let k = 0;
  return () => {
    let kept = 0;
    const end = starts[k + 1]!;
    for (let i = starts[k]!; i < end; i++) {
      const o = offsets[i]!;
      if (bytes[o + 12] !== 0x08 || bytes[o + 13] !== 0x00) continue;
      if (matcher.lookupPacket(bytes, o + ETH, o + lengths[i]!) >= 0) kept++;
    }
    if (kept !== truths[k]) throw mismatch('TupleMatcher filter', k, kept, truths[k]!);
    k = k + 1 === chunkCount ? 0 : k + 1;
  };
}

/** The naive basic-mode filter: cap's Ethernet, IPv4 and TCP/UDP decoders, then a string-keyed Map. */
export function tupleBaselineLoop(
  c: PackedFrames,
  cap: CapDecoders,
  map: Map<string, number>,
  chunkCount: number,
): () => void {
  const { bytes, offsets } = c;
  const { starts, truths } = chunksOf(c, chunkCount);
  let k = 0;
  return () => {
    let kept = 0;
    const end = starts[k + 1]!;
    for (let i = starts[k]!; i < end; i++) {
      const eth = cap.Ethernet(bytes, offsets[i]!);
      if (eth.info.type !== 0x0800) continue;
      const ip = cap.IPV4(bytes, eth.offset);
      if (ip.info.fragoffset !== 0) continue;
      const protocol = ip.info.protocol;
      let ports: { srcport: number; dstport: number };
      if (protocol === 6) ports = cap.TCP(bytes, ip.offset).info;
      else if (protocol === 17) ports = cap.UDP(bytes, ip.offset).info;
      else continue;
      if (map.has(tupleKey(ip.info.srcaddr, ports.srcport, ports.dstport, protocol))) kept++;
    }
    if (kept !== truths[k]) throw mismatch('cap + Map<tuple string> filter', k, kept, truths[k]!);
    k = k + 1 === chunkCount ? 0 : k + 1;
  };
}
