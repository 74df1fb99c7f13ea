/**
 * Runs scapy-esp-rate.py (scapy 2.5.0 in Debian's /usr/bin/python3, the only Python that has it here)
 * and returns scapy's ESP encryption rate, measured inside Python.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./scapy-esp-rate.py', import.meta.url));

export interface ScapyEncryptJob {
  count: number;
  spi: number;
  /** AES key ‖ 4-byte salt. */
  keyMaterial: Uint8Array;
  tunnel: { src: string; dst: string };
  /** The inner IPv4 packet scapy encrypts `count` times. */
  inner: Uint8Array;
  /** pktveil's encapsulation of `inner` with the same SA, which scapy must decrypt back to `inner`. */
  pktveilPacket: Uint8Array;
}

export interface ScapyEncryptRate {
  packets: number;
  seconds: number;
  packetsPerSecond: number;
  outputLength: number;
}

/** Why scapy cannot run here, or null. */
export function scapyMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import scapy.layers.ipsec'], { stdio: 'ignore', timeout: 30_000 });
  return probe.error || probe.status !== 0
    ? `scapy is not importable by ${PYTHON} (apt-get install python3-scapy)`
    : null;
}

/** Throws when the script fails, including when either side's packet does not decrypt. */
export function runScapyEncrypt(job: ScapyEncryptJob): ScapyEncryptRate {
  const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  const input = JSON.stringify({
    count: job.count,
    spi: job.spi,
    keyMaterial: hex(job.keyMaterial),
    tunnel: job.tunnel,
    inner: hex(job.inner),
    pktveilPacket: hex(job.pktveilPacket),
  });
  const result = spawnSync(PYTHON, [SCRIPT], { input, timeout: 600_000, maxBuffer: 1 << 20 });
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(
      `scapy-esp-rate.py exited with ${result.status}: ${result.stderr.toString().trim()} ${result.stdout.toString().trim()}`,
    );
  const out = JSON.parse(result.stdout.toString()) as {
    packets: number;
    seconds: number;
    outputLength: number;
    pktveilDecrypts: boolean;
  };
  if (!out.pktveilDecrypts) throw new Error("scapy did not decrypt pktveil's packet to its inner packet");
  return {
    packets: out.packets,
    seconds: out.seconds,
    packetsPerSecond: out.packets / out.seconds,
    outputLength: out.outputLength,
  };
}
