import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PacketParser } from '../../src/codec/parser.js';
import { Layer, LayerRegistry, layerNames } from '../../src/codec/registry.js';
import { parseCaptureBuffer } from '../../src/io/capture-file.js';
import { LinkType } from '../../src/packet.js';

// Real kernel traffic between two namespaces (scripts/make-example-capture.sh); tshark reads it as
// ICMPv6 ×7, ARP ×2, ICMP ×2, TCP ×14 (a transfer), UDP ×2 (one fragmented into 3), ICMPv6 ×5.
const example = [
  ...parseCaptureBuffer(readFileSync(new URL('../../examples/kernel-mix.pcap', import.meta.url)), {
    copy: true,
  }),
];
const names = (p: PacketParser) => [...p.layers.subarray(0, p.layerCount)].map((l) => layerNames[l as Layer]);

describe('PacketParser', () => {
  it('decodes every frame of a real capture into the layers tshark shows', () => {
    const p = new PacketParser();
    const seen = example.map((pkt) => {
      p.parsePacket(pkt);
      expect(p.error).toBeNull();
      return names(p).join('/');
    });
    expect(seen.slice(7, 12)).toEqual([
      'eth/arp',
      'eth/arp',
      'eth/ipv4/icmp',
      'eth/ipv4/icmp',
      'eth/ipv4/tcp',
    ]);
    expect(seen.filter((s) => s === 'eth/ipv4/tcp')).toHaveLength(14);
    expect(seen.filter((s) => s === 'eth/ipv6/icmpv6')).toHaveLength(12);
    // The 3000-byte datagram: the first fragment carries the UDP header, the others only data.
    expect(seen.slice(25, 29)).toEqual(['eth/ipv4/udp', 'eth/ipv4/udp', 'eth/ipv4', 'eth/ipv4']);
    p.parsePacket(example[26]!);
    expect(p.inFragment).toBe(true);
    expect(p.udp.length).toBe(3008);
    expect(p.udpChecksumOk()).toBeNull();
    p.parsePacket(example[25]!);
    expect(p.udpChecksumOk()).toBe(true);
  });

  it('gives the exact error for a TCP frame cut at every length (a snap-length capture)', () => {
    const frame = example[11]!.data; // SYN with 20 bytes of options: 14 + 20 + 40 bytes
    const p = new PacketParser();
    for (let cut = 0; cut <= frame.length; cut++) {
      p.parse(frame.subarray(0, cut), LinkType.ETHERNET, frame.length);
      if (cut < 14)
        expect(p.error, `cut ${cut}`).toMatchObject({ layer: 'eth', kind: 'truncated', offset: 0 });
      else if (cut < 34) {
        expect(p.error, `cut ${cut}`).toEqual({
          layer: 'ipv4',
          kind: 'truncated',
          offset: 14,
          detail: `ipv4 header needs 20 bytes, ${cut - 14} available`,
        });
        expect(names(p)).toEqual(['eth']);
      } else if (cut < 74) {
        expect(p.error, `cut ${cut}`).toMatchObject({ layer: 'tcp', kind: 'truncated', offset: 34 });
        expect(names(p)).toEqual(['eth', 'ipv4']);
      } else {
        expect(p.error).toBeNull();
        expect(names(p)).toEqual(['eth', 'ipv4', 'tcp']);
        expect(p.tcpChecksumOk()).toBe(true);
      }
    }
  });

  it('ignores Ethernet padding after the IP packet', () => {
    const p = new PacketParser();
    const padded = Buffer.concat([example[13]!.data, Buffer.alloc(6, 0xa5)]); // 66-byte ACK + trailer
    p.parse(padded, LinkType.ETHERNET);
    expect(p.error).toBeNull();
    expect(p.tcp.payloadLength).toBe(0);
    expect(p.tcpChecksumOk()).toBe(true);
  });

  it('decodes raw IP and Linux cooked links', () => {
    const p = new PacketParser();
    const ip = example[11]!.data.subarray(14);
    for (const link of [LinkType.RAW, LinkType.IPV4]) {
      p.parse(ip, link);
      expect(names(p)).toEqual(['ipv4', 'tcp']);
    }
    const sll = Buffer.concat([
      Buffer.from('00000001000656ea2289736ccda00000800', 'hex').subarray(0, 16),
      ip,
    ]);
    sll.writeUInt16BE(0x0800, 14);
    p.parse(sll, LinkType.LINUX_SLL);
    expect(names(p)).toEqual(['sll', 'ipv4', 'tcp']);
    p.parse(ip, 147);
    expect(p.error).toEqual({
      layer: 'link',
      kind: 'unsupported',
      offset: 0,
      detail: 'link type 147 is not decoded',
    });
  });

  it('follows the registry: an IP protocol bound to the anonymity layer, or unbound', () => {
    const frame = Buffer.from(example[25]!.data);
    frame[14 + 9] = 99; // IP protocol 99: not bound by default
    const p = new PacketParser();
    p.parse(frame, LinkType.ETHERNET);
    expect(names(p)).toEqual(['eth', 'ipv4']);
    const anon99 = new PacketParser(LayerRegistry.defaults(99));
    anon99.parse(frame, LinkType.ETHERNET);
    // 15 bytes of payload are too few for an anonymity header (41 at least): decoded as anon, and cut.
    expect(names(anon99)).toEqual(['eth', 'ipv4']);
    expect(anon99.error).toMatchObject({ layer: 'anon', kind: 'truncated', offset: 34 });
    const custom = new PacketParser(new LayerRegistry().bindEtherType(0x0800, Layer.ipv4));
    custom.parse(example[11]!.data, LinkType.ETHERNET);
    expect(names(custom)).toEqual(['eth', 'ipv4']);
    expect(() => new LayerRegistry().bindIpProtocol(256, Layer.tcp)).toThrow(
      /IP protocol must be an integer from 0 to 255/,
    );
  });

  it('never throws on random or mutated frames, for every link type', () => {
    const p = new PacketParser();
    const links = [
      LinkType.ETHERNET,
      LinkType.RAW,
      LinkType.IPV4,
      LinkType.IPV6,
      LinkType.LINUX_SLL,
      LinkType.LINUX_SLL2,
    ];
    const mutated = fc
      .tuple(
        fc.constantFrom(...example.map((e) => e.data)),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
      )
      .map(([frame, edits, cut]) => {
        const m = Buffer.from(frame);
        for (const [i, b] of edits) m[i % m.length] = b;
        return m.subarray(0, cut % (m.length + 1));
      });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          mutated,
        ),
        fc.constantFrom(...links),
        fc.nat({ max: 2000 }),
        (buf, link, extraWire) => {
          const n = p.parse(buf, link, buf.length + extraWire);
          expect(n).toBe(p.layerCount);
          if (p.error) expect(['truncated', 'malformed', 'unsupported']).toContain(p.error.kind);
          p.tcpChecksumOk();
          p.udpChecksumOk();
          p.icmpv6ChecksumOk();
        },
      ),
      { numRuns: 5000 },
    );
  });
});
