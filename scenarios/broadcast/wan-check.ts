/**
 * What the router's WAN capture of the broadcast scenario shows: packets from the subnet and whether each
 * has the broadcast source, packets into the subnet's broadcast address, and where each session ID of
 * sids.json first appears in clear (the current SID right after the IPv4 header of an anonymity-layer
 * packet). A session's SIDs must all appear, in the order of its list: a SID seen in clear before the one
 * before it would have leaked ahead of its use.
 */
import type { BroadcastSubnet } from '../../src/anonymity-layer/broadcast-subnet.js';
import { networkOffset } from '../../src/codec/network-offset.js';
import { readCapture } from '../../src/io/capture-file.js';

export interface WanAnalysis {
  packets: number;
  fromSubnet: number;
  fromSubnetNotBroadcast: number;
  toBroadcast: number;
  anonPackets: number;
  /** One line per broken rule of the SID order (empty when every session's SIDs appear in order). */
  sidFailures: string[];
}

export async function analyzeWan(
  file: string,
  subnet: BroadcastSubnet,
  sessions: { host: string; direction: string; sids: string[] }[],
  anonProtocol = 253,
): Promise<WanAnalysis> {
  const version: { ip: 4 | 6 } = { ip: 4 };
  const firstSeen = new Map<string, number>();
  const a: WanAnalysis = {
    packets: 0,
    fromSubnet: 0,
    fromSubnetNotBroadcast: 0,
    toBroadcast: 0,
    anonPackets: 0,
    sidFailures: [],
  };
  let index = 0;
  for await (const pkt of readCapture(file)) {
    index++;
    const d = pkt.data;
    const ip = networkOffset(d, pkt.link, version);
    if (ip < 0 || version.ip !== 4 || d.length < ip + 20) continue;
    a.packets++;
    const src = d.readUInt32BE(ip + 12);
    const dst = d.readUInt32BE(ip + 16);
    if (subnet.contains(src)) {
      a.fromSubnet++;
      if (src !== subnet.broadcast) a.fromSubnetNotBroadcast++;
    }
    if (dst === subnet.broadcast) a.toBroadcast++;
    if (d[ip + 9] !== anonProtocol) continue;
    const sidOff = ip + ((d[ip]! & 0x0f) << 2);
    if (d.length < sidOff + 8) continue;
    a.anonPackets++;
    const sid = d.toString('hex', sidOff, sidOff + 8);
    if (!firstSeen.has(sid)) firstSeen.set(sid, index);
  }
  for (const s of sessions) {
    let previous = 0;
    for (const [k, sid] of s.sids.entries()) {
      const at = firstSeen.get(sid);
      if (at === undefined) {
        a.sidFailures.push(`${s.host} ${s.direction} SID #${k} ${sid} never appears in clear on the WAN`);
        continue;
      }
      if (at <= previous)
        a.sidFailures.push(
          `${s.host} ${s.direction} SID #${k} ${sid} appears in clear (packet ${at}) before SID #${k - 1} (packet ${previous})`,
        );
      previous = at;
    }
  }
  return a;
}
