/**
 * The ESP benchmarks' output (bench/esp.ts, bench/esp-cli.ts) under the bench contract (contracts/cli.md,
 * `bench`): run with --quick --json --only esp, every stdout line is a figure with exactly name, unit,
 * value, baseline, baselineValue, ratio; every suite the issue names appears on every backend expected to
 * offer it, at every size, in both directions; the headline goals carry the goal as their baseline; no
 * baseline is skipped. No timing is asserted, only the shape and the coverage.
 */
import { expect, it } from 'vitest';
import { expectWellFormed, parseFigures, runBench, sodiumLoads } from '../helpers/bench-figures.js';
import { describeSystem } from '../helpers/system.js';

/** Which backends offer each suite: libsodium only ChaCha20-Poly1305; node:crypto and noble everything. */
function expectedPairs(): string[] {
  const both = ['node', 'noble'];
  const offers: [string, string[]][] = [
    ['aes-gcm-16', both],
    ['aes-gcm-8', both],
    ['chacha20-poly1305', sodiumLoads() ? ['sodium', ...both] : both],
    ['aes-cbc-hmac-sha1-96', both],
    ['aes-cbc-hmac-sha256-128', both],
    ['null-hmac-sha256-128', both],
  ];
  return offers.flatMap(([suite, backends]) => backends.map((b) => `${suite}/${b}`));
}

describeSystem('bench/run.ts --quick --json --only esp', ['scapy', 'tcpdump'], () => {
  it('prints a well-formed figure for every suite, backend, size and direction, and the goals', async () => {
    const { code, stdout, stderr } = await runBench(['--quick', '--json', '--only', 'esp'], 600_000, [
      '--expose-gc',
    ]);
    expect(stderr).not.toMatch(/baseline skipped/);
    expect(code, stderr).toBe(0);
    const figures = parseFigures(stdout);
    expectWellFormed(figures);

    const byName = new Map(figures.map((f) => [f.name as string, f]));
    const engine = (direction: string) =>
      expectedPairs().flatMap((pair) =>
        [64, 512, 1400].flatMap((size) => [
          `esp-${direction}/${pair}/${size}`,
          `esp-${direction}/${pair}/${size}/packets`,
        ]),
      );
    const goals = (direction: string) => [
      ...(sodiumLoads() ? [`esp-${direction}-goal/chacha20-poly1305/sodium/1400`] : []),
      `esp-${direction}-goal/aes-gcm-16/node/1400`,
    ];
    expect(figures.map((f) => f.name)).toEqual([
      ...engine('encap'),
      ...goals('encap'),
      ...engine('decap'),
      ...goals('decap'),
      'esp-vs-scapy/aes-gcm-16/node/1400',
      ...(sodiumLoads() ? ['esp-cli/chacha20-poly1305/sodium'] : []),
      'esp-cli/aes-gcm-16/node',
    ]);

    expect(byName.get('esp-encap/aes-gcm-16/node/1400')).toMatchObject({
      unit: 'Gbit/s',
      baseline: 'node AEAD seal',
    });
    expect(byName.get('esp-decap/aes-cbc-hmac-sha1-96/noble/64/packets')).toMatchObject({
      unit: 'packets/s',
      baseline: 'noble hmac-sha1 verify + aes-cbc decrypt',
    });
    expect(byName.get('esp-encap-goal/aes-gcm-16/node/1400')).toMatchObject({
      unit: 'Gbit/s',
      baseline: 'goal ≥ 1.3 Gbit/s, one core',
      baselineValue: 1.3,
    });
    // A goal figure reports the very value measured for its case.
    expect(byName.get('esp-encap-goal/aes-gcm-16/node/1400')?.value).toBe(
      byName.get('esp-encap/aes-gcm-16/node/1400')?.value,
    );
    expect(byName.get('esp-vs-scapy/aes-gcm-16/node/1400')).toMatchObject({
      unit: 'packets/s',
      baseline: 'scapy 2.5.0 SecurityAssociation.encrypt',
    });
    expect(byName.get('esp-cli/aes-gcm-16/node')).toMatchObject({
      unit: 'Gbit/s',
      baseline: 'tcpdump -r -w',
    });
  }, 600_000);
});
