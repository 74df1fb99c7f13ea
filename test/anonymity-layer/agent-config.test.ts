import { describe, expect, it } from 'vitest';
import { ConfigError, parseAgentConfig } from '../../src/anonymity-layer/agent-config.js';
import { ipv4String } from '../../src/codec/ip-address.js';

const SECRET = 'ab'.repeat(32);
const host = {
  role: 'host',
  mode: 'advanced',
  interface: 'eth0',
  outboundInterface: 'pktveil0',
  subnet: '198.18.5.0/24',
  address: '198.18.5.7',
  peers: [{ name: 'server', address: '198.18.9.2', secret: SECRET, listenSid: '00112233aabbccdd' }],
  rotation: { packets: 10, ms: 0 },
  sidLog: 'sids.json',
  delivery: { file: 'out/inner.pcap' },
};
const responder = {
  role: 'responder',
  address: '198.18.9.2',
  replyInterface: 'pktveil0',
  virtualClients: '198.18.99.0/24',
  listenSid: '00112233aabbccdd',
  peers: [{ name: 'h1', secretFile: 'h1.key' }],
};

const parse = (o: unknown, readFile?: (p: string) => string) =>
  parseAgentConfig(JSON.stringify(o), { baseDir: '/etc/pktveil', readFile });

function error(o: unknown): string {
  try {
    parse(o, () => SECRET);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('parsed without error');
}

describe('parseAgentConfig', () => {
  it('reads a host configuration: numbers, SIDs, secret bytes, paths from the config directory, defaults', () => {
    const c = parse(host);
    if (c.role !== 'host') throw new Error('role');
    expect(ipv4String(c.subnet.broadcast)).toBe('198.18.5.255');
    expect(ipv4String(c.address)).toBe('198.18.5.7');
    expect(c.peers[0]!.listenSid).toBe(0x00112233aabbccddn);
    expect(Buffer.from(c.peers[0]!.secret!).toString('hex')).toBe(SECRET);
    expect(c.rotation).toEqual({ packets: 10, ms: 0 });
    // Default 8, lowered to the rotation's packet count when that is smaller.
    expect(c.minPacketsPerSid).toBe(8);
    const fast = parse({ ...host, rotation: { packets: 5 } });
    expect(fast.minPacketsPerSid).toBe(5);
    expect(c.protocol).toBe(253);
    expect(c.idleTimeoutMs).toBe(120_000);
    expect(c.prefilter).toBe('sids');
    expect(c.sidLog).toBe('/etc/pktveil/sids.json');
    expect(c.delivery).toEqual({ kind: 'file', path: '/etc/pktveil/out/inner.pcap' });
  });

  it('reads a responder configuration with its secret from a file', () => {
    const read: string[] = [];
    const c = parse(responder, (p) => {
      read.push(p);
      return `${SECRET}\n`;
    });
    if (c.role !== 'responder') throw new Error('role');
    expect(read).toEqual(['/etc/pktveil/h1.key']);
    expect(Buffer.from(c.peers[0]!.secret).toString('hex')).toBe(SECRET);
    expect(c.virtualClients.toString()).toBe('198.18.99.0/24');
    expect(c.delivery).toEqual({ kind: 'stack' });
    expect(c.rotation).toEqual({ packets: 1000, ms: 10_000 });
  });

  it('reads basic mode without secrets, and refuses secrets there', () => {
    const basic = { ...host, mode: 'basic', peers: [{ name: 'server', address: '198.18.9.2' }] };
    const c = parse(basic);
    expect(c.role === 'host' && c.peers[0]!.secret).toBe(null);
    expect(error({ ...basic, peers: host.peers })).toMatch(/peers\[0\]: basic mode has no anonymity header/);
  });

  it('names the field and what to write for each mistake', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...host, role: 'router' }, /role must be "host" or "responder"/],
      [{ ...host, mode: 'fast' }, /mode must be "advanced" or "basic"/],
      [
        { ...host, address: '198.18.6.7' },
        /address 198.18.6.7 is not a host address of subnet 198.18.5.0\/24/,
      ],
      [{ ...host, address: '198.18.5.255' }, /not a host address/],
      [{ ...host, subnet: '198.18.5.1/24' }, /subnet: .*host bits set: write 198.18.5.0\/24/],
      [{ ...host, subnet: '198.18.5.0/31' }, /subnet: .*\/31/],
      [{ ...host, peers: [] }, /peers must be a non-empty array/],
      [
        { ...host, peers: [{ ...host.peers[0], address: '198.18.5.9' }] },
        /peers\[0\]\.address .* inside the subnet/,
      ],
      [
        { ...host, peers: [{ ...host.peers[0], secret: 'abcd' }] },
        /peers\[0\]\.secret is 2 bytes; give at least 16/,
      ],
      [{ ...host, peers: [{ ...host.peers[0], secret: 'xyz' }] }, /peers\[0\]\.secret must be hex digits/],
      [
        { ...host, peers: [{ ...host.peers[0], secretFile: 'k' }] },
        /exactly one of secret .* and secretFile/,
      ],
      [{ ...host, peers: [{ ...host.peers[0], listenSid: '0000000000000000' }] }, /listenSid must not be 0/],
      [
        { ...host, peers: [{ ...host.peers[0], listenSid: '12' }] },
        /listenSid must be a session ID of 16 hex digits/,
      ],
      [{ ...host, peers: [host.peers[0], host.peers[0]] }, /peers\[1\]\.name "server" appears twice/],
      [
        { ...host, rotation: { packets: 4 }, minPacketsPerSid: 8 },
        /rotation\.packets 4 is below minPacketsPerSid 8/,
      ],
      [{ ...host, rotation: { count: 4 } }, /unknown field rotation\.count/],
      [{ ...host, protocol: 300 }, /protocol must be an integer from 0 to 255/],
      [{ ...host, delivery: 'socket' }, /delivery must be "stack" or \{ "file": "PATH.pcap" \}/],
      [{ ...host, prefilter: 'none' }, /prefilter must be "sids" or "protocol"/],
      [{ ...host, interface: '' }, /interface must be a non-empty string/],
      [{ ...host, colour: 'blue' }, /unknown field colour/],
      [{ ...responder, virtualClients: '198.18.9.0/24' }, /address 198.18.9.2 lies inside virtualClients/],
      [{ ...responder, peers: [{ name: 'h 1', secret: SECRET }] }, /peers\[0\]\.name must be 1-64 of/],
      [[1, 2], /the configuration must be a JSON object/],
    ];
    for (const [config, message] of cases) expect(error(config)).toMatch(message);
    expect(() => parseAgentConfig('{', {})).toThrow(/not valid JSON/);
    expect(() =>
      parse(responder, () => {
        throw new Error('ENOENT');
      }),
    ).toThrow(/peers\[0\]\.secretFile \/etc\/pktveil\/h1\.key cannot be read: ENOENT/);
  });
});
