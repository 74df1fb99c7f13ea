/**
 * Gate for tests that need root, network namespaces or Debian tools. Where a requirement is missing the
 * suite skips with a one-line reason; with PKTVEIL_REQUIRE_SYSTEM_TESTS=1 (set by .ci/run) that skip
 * becomes a failing test instead, so CI can never pass by skipping.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, it } from 'vitest';

export type Requirement =
  | 'root'
  | 'netns'
  | 'tshark'
  | 'tcpdump'
  | 'scapy'
  | 'ethtool'
  | 'cap'
  | 'raw-socket'
  | 'sodium-native'
  | 'chromium';

const require = createRequire(import.meta.url);

function runs(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
}

const probes: Record<Requirement, () => string | null> = {
  root: () => (process.getuid?.() === 0 ? null : 'needs root'),
  netns: () =>
    process.getuid?.() === 0 && runs('ip', ['netns', 'list']) ? null : 'needs root and `ip netns` (iproute2)',
  tshark: () => (runs('tshark', ['--version']) ? null : 'needs tshark (apt-get install tshark)'),
  tcpdump: () => (runs('tcpdump', ['--version']) ? null : 'needs tcpdump (apt-get install tcpdump)'),
  scapy: () =>
    runs('/usr/bin/python3', ['-c', 'import scapy']) ? null : 'needs scapy (apt-get install python3-scapy)',
  ethtool: () => (runs('ethtool', ['--version']) ? null : 'needs ethtool (apt-get install ethtool)'),
  cap: () => loads('cap', 'apt-get install libpcap-dev, then npm install'),
  'raw-socket': () => loads('raw-socket', 'apt-get install libpcap-dev, then npm install'),
  'sodium-native': () => loads('sodium-native', 'npm install; it ships prebuilt binaries'),
  chromium: () =>
    runs(CHROMIUM, ['--headless', '--no-sandbox', '--version'])
      ? null
      : 'needs Chromium (apt-get install chromium)',
};

/** Debian's Chromium, for tests that render HTML reports headless. */
export const CHROMIUM = '/usr/bin/chromium';

function loads(pkg: string, howToGet: string): string | null {
  try {
    require(pkg);
    return null;
  } catch {
    return `needs the optional addon ${pkg} (${howToGet})`;
  }
}

const cache = new Map<Requirement, string | null>();

/** The first missing requirement, as a one-line reason, or null when all are present. */
export function missing(needs: Requirement[]): string | null {
  for (const need of needs) {
    if (!cache.has(need)) cache.set(need, probes[need]());
    const reason = cache.get(need);
    if (reason) return reason;
  }
  return null;
}

export const systemTestsRequired = process.env.PKTVEIL_REQUIRE_SYSTEM_TESTS === '1';

/** `describe` for a suite that needs system facilities; skips (or fails under CI) when they are missing. */
export function describeSystem(name: string, needs: Requirement[], body: () => void): void {
  const reason = missing(needs);
  if (reason && systemTestsRequired) {
    describe(name, () => {
      it('has the system facilities it needs', () => {
        throw new Error(`${name}: ${reason} (PKTVEIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping)`);
      });
    });
    return;
  }
  describe.skipIf(reason !== null)(reason ? `${name} [skipped: ${reason}]` : name, body);
}
