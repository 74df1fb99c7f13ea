/** `tcpdump -r IN -w OUT` as a baseline: the child's wall time, process start included. */
import { spawnSync } from 'node:child_process';

/** Copies `input` to `output` with tcpdump; returns the child's wall time in seconds. */
export function copyWithTcpdump(input: string, output: string): number {
  // As root tcpdump may switch to an unprivileged user before opening the output; keep root so it can
  // write into a private temporary directory.
  const asRoot = process.getuid?.() === 0 ? ['-Z', 'root'] : [];
  const began = performance.now();
  const result = spawnSync('tcpdump', [...asRoot, '-r', input, '-w', output], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = (performance.now() - began) / 1000;
  if (result.error) throw result.error;
  if (result.status !== 0)
    throw new Error(`tcpdump exited with ${result.status}: ${result.stderr.toString().trim()}`);
  return seconds;
}

/** Why tcpdump cannot run here, or null. */
export function tcpdumpMissing(): string | null {
  const probe = spawnSync('tcpdump', ['--version'], { stdio: 'ignore' });
  return probe.error || probe.status !== 0 ? 'tcpdump is not installed (apt-get install tcpdump)' : null;
}
