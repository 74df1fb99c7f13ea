/**
 * A parsed frame as the plain JSON objects of the `pktveil inspect --json` contract
 * (../shared/contracts/cli.md): numbers as JSON numbers, 64-bit values as decimal strings, byte strings
 * as lowercase hex. Slow path (allocates): for humans, tests and tools, not for line-rate work.
 */
import type { DecodeError } from './decode-error.js';
import { macString } from './ethernet.js';
import { ipv4String } from './ipv4.js';
import { ipv6String } from './ipv6.js';
import type { PacketParser } from './parser.js';
import { Layer, layerNames } from './registry.js';

export type LayerJson = { layer: string } & Record<string, unknown>;

export interface PacketJson {
  index: number;
  ts: string;
  caplen: number;
  len: number;
  layers: LayerJson[];
  error?: DecodeError;
}

/** Nanoseconds since the epoch as "seconds.nanoseconds" with all nine digits. */
export function formatTimestamp(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** The layers the parser decoded in its last parse, as contract JSON. */
export function describeLayers(p: PacketParser): LayerJson[] {
  const out: LayerJson[] = [];
  for (let i = 0; i < p.layerCount; i++) out.push(describeLayer(p, p.layers[i] as Layer));
  return out;
}

function hexOf(buf: Buffer, off: number, len: number): string {
  return buf.toString('hex', off, off + len);
}

function describeLayer(p: PacketParser, layer: Layer): LayerJson {
  const name = layerNames[layer];
  switch (layer) {
    case Layer.eth: {
      const v = p.eth;
      const vlan = [];
      for (let t = 0; t < v.vlanCount; t++)
        vlan.push({ tpid: v.vlanTpid(t), pcp: v.vlanPcp(t), dei: v.vlanDei(t) ? 1 : 0, id: v.vlanId(t) });
      return {
        layer: name,
        src: macString(v.buf, v.off + 6),
        dst: macString(v.buf, v.off),
        type: v.etherType,
        vlan,
      };
    }
    case Layer.sll:
    case Layer.sll2: {
      const v = layer === Layer.sll ? p.sll : p.sll2;
      return {
        layer: name,
        packetType: v.packetType,
        arphrdType: v.arphrdType,
        address: hexOf(v.buf, v.addressOffset, v.storedAddressLength),
        protocol: v.protocol,
        ...(layer === Layer.sll2 ? { ifIndex: p.sll2.interfaceIndex } : {}),
      };
    }
    case Layer.arp: {
      const v = p.arp;
      return {
        layer: name,
        htype: v.htype,
        ptype: v.ptype,
        oper: v.oper,
        senderHw: hexOf(v.buf, v.senderHwOffset, v.hlen),
        senderProto: hexOf(v.buf, v.senderProtoOffset, v.plen),
        targetHw: hexOf(v.buf, v.targetHwOffset, v.hlen),
        targetProto: hexOf(v.buf, v.targetProtoOffset, v.plen),
      };
    }
    case Layer.ipv4: {
      const v = p.ipv4;
      return {
        layer: name,
        ihl: v.ihl,
        dscp: v.dscp,
        ecn: v.ecn,
        totalLength: v.totalLength,
        id: v.id,
        flags: v.flags,
        fragOffset: v.fragOffset,
        ttl: v.ttl,
        protocol: v.protocol,
        checksum: v.checksum,
        checksumOk: v.checksumOk(),
        src: ipv4String(v.src),
        dst: ipv4String(v.dst),
        options: hexOf(v.buf, v.optionsOffset, v.optionsLength),
      };
    }
    case Layer.ipv6: {
      const v = p.ipv6;
      return {
        layer: name,
        trafficClass: v.trafficClass,
        flowLabel: v.flowLabel,
        payloadLength: v.payloadLength,
        nextHeader: v.nextHeader,
        hopLimit: v.hopLimit,
        src: ipv6String(v.buf, v.off + 8),
        dst: ipv6String(v.buf, v.off + 24),
        upperProtocol: v.upperProtocol,
        ...(v.isFragment
          ? { fragOffset: v.fragmentOffset, moreFragments: v.moreFragments, fragId: v.fragmentId }
          : {}),
      };
    }
    case Layer.tcp: {
      const v = p.tcp;
      return {
        layer: name,
        srcPort: v.srcPort,
        dstPort: v.dstPort,
        seq: v.seq,
        ack: v.ack,
        dataOffset: v.dataOffset,
        flags: v.flags,
        window: v.window,
        checksum: v.checksum,
        checksumOk: p.tcpChecksumOk(),
        urgent: v.urgent,
        options: hexOf(v.buf, v.off + 20, v.headerLength - 20),
        payloadLength: v.payloadLength,
      };
    }
    case Layer.udp: {
      const v = p.udp;
      return {
        layer: name,
        srcPort: v.srcPort,
        dstPort: v.dstPort,
        length: v.length,
        checksum: v.checksum,
        checksumOk: p.udpChecksumOk(),
        payloadLength: v.payloadLength,
      };
    }
    case Layer.icmp:
    case Layer.icmpv6: {
      const v = layer === Layer.icmp ? p.icmp : p.icmpv6;
      return {
        layer: name,
        type: v.type,
        code: v.code,
        checksum: v.checksum,
        checksumOk: layer === Layer.icmp ? p.icmp.checksumOk() : p.icmpv6ChecksumOk(),
      };
    }
    case Layer.esp:
      return { layer: name, spi: p.esp.spi, seq: p.esp.seq, payloadLength: p.esp.payloadLength };
    case Layer.natt:
      return { layer: name, kind: p.nattKind };
    case Layer.anon: {
      const v = p.anon;
      return {
        layer: name,
        currentSid: v.currentSidHex,
        sequence: v.sequence.toString(),
        payloadLength: v.payloadLength,
      };
    }
    case Layer.aggfrag: {
      const v = p.aggfrag;
      return { layer: name, subType: v.subType, blockOffset: v.blockOffset };
    }
  }
}
