/**
 * Inner packets and collectors for the IP-TFS tests. Inner packets are real IPv4/IPv6 headers (our IP
 * codecs, addresses from 198.18.0.0/15 and 2001:db8::/32, protocol 253) with pseudo-random payload bytes,
 * so every packet differs from every other and a byte put in the wrong place shows up.
 */
import { Ipv4Repr, parseIpv4 } from '../../src/codec/ipv4.js';
import { Ipv6Repr } from '../../src/codec/ipv6.js';
import type { IptfsEmit, IptfsReceiver } from '../../src/tfc/iptfs-receiver.js';

const EXPERIMENTAL_PROTOCOL = 253;

/** xorshift32 bytes from a seed; any value, 0xa5 included (junk checks compare two runs, not byte values). */
function fillRandom(buf: Buffer, from: number, seed: number): void {
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = from; i < buf.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
  }
}

/** An IPv4 packet of `totalLength` bytes (at least 20); `seed` picks its id and payload bytes. */
export function ipv4Packet(totalLength: number, seed = totalLength): Buffer {
  const buf = Buffer.alloc(totalLength);
  new Ipv4Repr({
    id: seed & 0xffff,
    ttl: 64,
    protocol: EXPERIMENTAL_PROTOCOL,
    src: parseIpv4('198.18.0.1'),
    dst: parseIpv4('198.19.0.2'),
    payloadLength: totalLength - 20,
  }).encodeInto(buf, 0);
  fillRandom(buf, 20, seed);
  return buf;
}

/** An IPv6 packet of `totalLength` bytes (at least 40); `seed` picks its flow label and payload bytes. */
export function ipv6Packet(totalLength: number, seed = totalLength): Buffer {
  const buf = Buffer.alloc(totalLength);
  new Ipv6Repr({
    flowLabel: seed & 0xfffff,
    payloadLength: totalLength - 40,
    nextHeader: EXPERIMENTAL_PROTOCOL,
    hopLimit: 64,
    src: '2001:db8::1',
    dst: '2001:db8::2',
  }).encodeInto(buf, 0);
  fillRandom(buf, 40, seed);
  return buf;
}

/** A sub-type 0 AGGFRAG header written byte by byte from RFC 9347 §6.1.1: 0, reserved 0, BlockOffset. */
export function basicHeader(blockOffset: number): Buffer {
  return Buffer.from([0x00, 0x00, blockOffset >> 8, blockOffset & 0xff]);
}

/** What a receiver emitted: copies of the inner packets and their timestamps. */
export interface Collected {
  packets: Buffer[];
  ts: bigint[];
  emit: IptfsEmit;
}

export function collector(): Collected {
  const packets: Buffer[] = [];
  const ts: bigint[] = [];
  return {
    packets,
    ts,
    emit: (buf, off, len, t) => {
      packets.push(Buffer.from(buf.subarray(off, off + len)));
      ts.push(t);
    },
  };
}

/** Feeds payloads to a receiver as sequence numbers first, first + 1, … at time `now`. */
export function feed(rx: IptfsReceiver, payloads: Buffer[], out: Collected, first = 1, now = 0n): void {
  for (const [i, p] of payloads.entries()) rx.receive(0, first + i, p, 0, p.length, now, out.emit);
}
