import { LinkType } from '../packet.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const MAX_VLAN_TAGS = 8;

/**
 * Where the network-layer header of a frame starts and which IP version it is, for stages that rewrite
 * the IP packet and keep the link header as it was (ESP, TFC). Returns the offset, or -1 when the frame
 * carries neither IPv4 nor IPv6 (ARP, unknown link types, frames cut inside the link header).
 * `version` receives 4 or 6.
 */
export function networkOffset(data: Uint8Array, link: number, version: { ip: 4 | 6 }): number {
  let off: number;
  let type: number;
  switch (link) {
    case LinkType.ETHERNET: {
      off = 12;
      if (data.length < 14) return -1;
      type = (data[12]! << 8) | data[13]!;
      let tags = 0;
      while ((type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) && tags < MAX_VLAN_TAGS) {
        off += 4;
        if (data.length < off + 2) return -1;
        type = (data[off]! << 8) | data[off + 1]!;
        tags++;
      }
      off += 2;
      break;
    }
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6: {
      if (data.length < 1) return -1;
      const v = data[0]! >> 4;
      if (v === 4 || v === 6) {
        version.ip = v;
        return 0;
      }
      return -1;
    }
    case LinkType.LINUX_SLL:
      if (data.length < 16) return -1;
      type = (data[14]! << 8) | data[15]!;
      off = 16;
      break;
    case LinkType.LINUX_SLL2:
      if (data.length < 20) return -1;
      type = (data[0]! << 8) | data[1]!;
      off = 20;
      break;
    default:
      return -1;
  }
  if (type === ETHERTYPE_IPV4) version.ip = 4;
  else if (type === ETHERTYPE_IPV6) version.ip = 6;
  else return -1;
  return off;
}

/**
 * Makes the link header of a frame whose network packet (at `netOff`) changed IP version announce the new
 * one (EtherType or link type), after tunnel decapsulation turned IPv4 into IPv6 or back. Returns the
 * link type the frame now has.
 */
export function setNetworkVersion(data: Uint8Array, link: number, netOff: number, ip: 4 | 6): number {
  const etherType = ip === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
  switch (link) {
    case LinkType.ETHERNET:
    case LinkType.LINUX_SLL:
      data[netOff - 2] = etherType >> 8;
      data[netOff - 1] = etherType & 0xff;
      return link;
    case LinkType.LINUX_SLL2:
      data[0] = etherType >> 8;
      data[1] = etherType & 0xff;
      return link;
    case LinkType.IPV4:
    case LinkType.IPV6:
      return ip === 4 ? LinkType.IPV4 : LinkType.IPV6;
    default:
      return link;
  }
}
