/**
 * A 64-bit fingerprint (two independent 32-bit hashes) of the IP packet in a parsed frame, ignoring what
 * forwarding changes: the IPv4 TTL and header checksum, the IPv6 hop limit. The same IP packet seen before
 * and after a tunnel, a pacer or a router has the same fingerprint whatever the link layer around it.
 * No allocation: words are hashed in place.
 */
import type { PacketParser } from '../../codec/parser.js';
import { Layer } from '../../codec/registry.js';

/**
 * Writes the fingerprint of the first IP packet in the parser's last frame into out[0], out[1] and
 * returns true; false (out untouched) when the frame has no IP header. Covers the captured bytes of the
 * packet up to its total length (not the Ethernet padding after it).
 */
export function fingerprintIpPacket(p: PacketParser, out: Uint32Array): boolean {
  for (let i = 0; i < p.layerCount; i++) {
    const layer = p.layers[i];
    if (layer === Layer.ipv4) {
      const v = p.ipv4;
      // Word 2 holds TTL, protocol and checksum: keep the protocol alone.
      fingerprint(v.buf, v.off, v.captured, 2, 0x00ff0000, out);
      return true;
    }
    if (layer === Layer.ipv6) {
      const v = p.ipv6;
      // Word 1 holds payload length, next header and hop limit: drop the hop limit.
      fingerprint(v.buf, v.off, v.capturedEnd - v.off, 1, 0xffffff00, out);
      return true;
    }
  }
  return false;
}

function fingerprint(
  buf: Buffer,
  off: number,
  length: number,
  maskedWord: number,
  mask: number,
  out: Uint32Array,
) {
  let h1 = 0x3c6ef372 ^ length;
  let h2 = 0x9e3779b9 ^ length;
  const words = length >>> 2;
  for (let w = 0; w < words; w++) {
    const at = off + 4 * w;
    let k = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
    if (w === maskedWord) k = (k & mask) >>> 0;
    h1 = mix(h1, k);
    h2 = round(h2, k);
  }
  let tail = 0;
  for (let at = off + 4 * words; at < off + length; at++) tail = (tail << 8) | buf[at]!;
  out[0] = finish(mix(h1, tail));
  out[1] = finish(round(h2, tail));
}

/** MurmurHash3's block step. */

function mix(h: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** xxHash32's round: a second, differently built hash, so the pair behaves as 64 bits. */
function round(acc: number, word: number): number {
  acc = (acc + Math.imul(word, 0x85ebca77)) | 0;
  acc = (acc << 13) | (acc >>> 19);
  return Math.imul(acc, 0x9e3779b1);
}

/** MurmurHash3's finalizer (avalanche). */
function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
