/** The parts of live I/O that need no privileges or addon: naming, filters, error wording, option checks. */
import { describe, expect, it } from 'vitest';
import { linkTypeFromCapName } from '../../src/io/cap-open.js';
import { RawIpv4Sink } from '../../src/io/inject.js';
import { combineFilters, LiveCapture, nonPromiscuousClause } from '../../src/io/live-capture.js';
import { explainFailure, LiveIoError, noSuchInterface, PRIVILEGE_HINT } from '../../src/io/live-io-error.js';
import { LinkType } from '../../src/packet.js';

describe('linkTypeFromCapName', () => {
  it('maps every name cap 0.2.1 returns to its LINKTYPE number', () => {
    expect(linkTypeFromCapName('ETHERNET')).toBe(LinkType.ETHERNET);
    expect(linkTypeFromCapName('RAW')).toBe(LinkType.RAW);
    expect(linkTypeFromCapName('LINKTYPE_LINUX_SLL')).toBe(LinkType.LINUX_SLL);
    expect(linkTypeFromCapName('NULL')).toBe(0);
    expect(linkTypeFromCapName('IEEE802_11_RADIO')).toBe(127);
  });

  it('reads the DLT number out of "Unknown linktype N" and refuses anything else', () => {
    expect(linkTypeFromCapName('Unknown linktype 276')).toBe(LinkType.LINUX_SLL2);
    expect(linkTypeFromCapName('Unknown linktype 228')).toBe(LinkType.IPV4);
    expect(linkTypeFromCapName('Unknown linktype')).toBeNull();
    expect(linkTypeFromCapName('ethernet')).toBeNull();
  });
});

describe('non-promiscuous filter', () => {
  it('keeps frames to or from the MAC plus broadcast and multicast, and narrows the user filter', () => {
    const clause = nonPromiscuousClause('02:00:00:00:00:01');
    expect(clause).toBe('(ether host 02:00:00:00:00:01 or ether multicast)');
    expect(combineFilters('udp port 53', clause)).toBe(`${clause} and (udp port 53)`);
    // Parentheses keep an 'or' in the user's filter from escaping the clause.
    expect(combineFilters('udp or icmp', clause)).toBe(`${clause} and (udp or icmp)`);
    expect(combineFilters('  ', clause)).toBe(clause);
    expect(combineFilters(' tcp ', null)).toBe('tcp');
    expect(combineFilters('', null)).toBe('');
  });
});

describe('live I/O errors', () => {
  it('turns every way libpcap and the kernel say "not permitted" into the privilege fix', () => {
    for (const text of [
      'socket: Operation not permitted',
      "You don't have permission to capture on that device (socket: Operation not permitted)",
      'Permission denied',
      'EPERM',
    ]) {
      const e = explainFailure('live capture on eth9', new Error(text), 'eth9');
      expect(e).toBeInstanceOf(LiveIoError);
      expect(e.kind).toBe('permission');
      expect(e.message).toBe(`live capture on eth9 is not permitted (${text}): ${PRIVILEGE_HINT}`);
    }
    expect(PRIVILEGE_HINT).toBe(
      'run as root or grant CAP_NET_RAW,CAP_NET_ADMIN: setcap cap_net_raw,cap_net_admin=eip $(readlink -f $(which node))',
    );
  });

  it('names a vanished interface and keeps other failures in the addon’s words', () => {
    const gone = explainFailure('live capture on eth9', new Error('SIOCGIFHWADDR: No such device'), 'eth9');
    expect(gone).toMatchObject({
      kind: 'no-such-interface',
      message: "live capture on eth9 failed: no interface 'eth9' (SIOCGIFHWADDR: No such device)",
    });
    const other = explainFailure('raw IPv4 socket', new Error('Too many open files'));
    expect(other).toMatchObject({ kind: 'failed', message: 'raw IPv4 socket failed: Too many open files' });
    expect(other.cause).toBeInstanceOf(Error);
  });

  it('lists the interfaces there are', () => {
    expect(noSuchInterface('live capture', 'eth9', ['lo', 'eth0']).message).toBe(
      "live capture: no interface 'eth9'; available: lo, eth0 (see 'ip link')",
    );
    expect(noSuchInterface('live capture', 'eth9', []).message).toBe(
      "live capture: no interface 'eth9'; available: none visible to this process (see 'ip link')",
    );
  });
});

describe('option checks (before any addon is touched)', () => {
  it('refuses a snapLength, bufferSize or queueLimit out of range, saying the range', () => {
    expect(() => new LiveCapture({ interface: 'lo', snapLength: 0 })).toThrow(
      'LiveCapture snapLength must be an integer from 1 to 65535, got 0',
    );
    expect(() => new LiveCapture({ interface: 'lo', snapLength: 65536 })).toThrow(RangeError);
    expect(() => new LiveCapture({ interface: 'lo', snapLength: 1.5 })).toThrow(RangeError);
    expect(() => new LiveCapture({ interface: 'lo', bufferSize: 1000 })).toThrow(
      'LiveCapture bufferSize must be an integer from 65535 to 2147483647, got 1000',
    );
    expect(() => new LiveCapture({ interface: 'lo', queueLimit: 0 })).toThrow(RangeError);
  });

  it('needs an interface name', () => {
    expect(() => new LiveCapture({ interface: '' })).toThrow('LiveCapture needs an interface name');
  });

  it('refuses a RawIpv4Sink maxInFlight below 1', () => {
    expect(() => new RawIpv4Sink({ maxInFlight: 0 })).toThrow(
      'RawIpv4Sink maxInFlight must be a positive integer, got 0',
    );
  });
});
