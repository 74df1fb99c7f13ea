/**
 * The anonymity layer's benchmarks (bench/anon-filter.ts) under the bench contract (contracts/cli.md,
 * `bench`): run through bench/run.ts with --quick --json --only anon, every stdout line is a figure with
 * exactly name, unit, value, baseline, baselineValue, ratio (= value / baselineValue); the filter figures
 * cover both table sizes with their goal figures, seal/open/receive every AEAD on every backend expected to
 * offer it at every size, and — where the machine has network namespaces — the prefilter phases. No baseline
 * is skipped. No timing is asserted, only the shape and the coverage (and what the runs themselves check:
 * keep counts against the truth, rings opened byte for byte, the prefilter delivering only own packets).
 */
import { expect, it } from 'vitest';
import { expectWellFormed, parseFigures, runBench, sodiumLoads } from '../helpers/bench-figures.js';
import { describeSystem, missing, systemTestsRequired } from '../helpers/system.js';

/** chacha20-poly1305 on every backend (sodium where it loads), AES-GCM on node:crypto alone. */
function expectedCases(): string[] {
  const chacha = sodiumLoads() ? ['sodium', 'node', 'noble'] : ['node', 'noble'];
  return [...chacha.map((b) => `chacha20-poly1305/${b}`), 'aes-gcm/node'].flatMap((c) =>
    [64, 512, 1400].map((size) => `${c}/${size}`),
  );
}

/** Why the prefilter phases cannot run here (no root, no netns, no ethtool), or null. */
const noLab = missing(['root', 'netns', 'ethtool']);

describeSystem('bench/run.ts --quick --json --only anon', ['cap'], () => {
  it('prints a well-formed figure for every filter table size, AEAD, backend and size, and the prefilter', async () => {
    expect(noLab === null || !systemTestsRequired, `the prefilter benchmark ${noLab}`).toBe(true);
    const { code, stdout, stderr } = await runBench(['--quick', '--json', '--only', 'anon'], 170_000);
    expect(stderr).not.toMatch(/baseline skipped/);
    expect(code, stderr).toBe(0);
    const figures = parseFigures(stdout);
    expectWellFormed(figures);

    const prefilter = noLab
      ? []
      : ['anon-prefilter/none', 'anon-prefilter/ip-proto', 'anon-prefilter/sids', 'anon-prefilter/sids/cpu'];
    expect(figures.map((f) => f.name)).toEqual([
      ...['10k', '100k'].flatMap((n) => [`anon-filter/sid/${n}`, `anon-filter-goal/sid/${n}`]),
      'anon-filter/tuple/10k',
      'anon-filter/tuple/100k',
      ...expectedCases().map((c) => `anon-seal/${c}`),
      ...expectedCases().flatMap((c) => [`anon-open/${c}`, `anon-receive/${c}`]),
      ...prefilter,
    ]);
    if (noLab) expect(stderr).toContain(`anon-prefilter: skipped, `);

    const byName = new Map(figures.map((f) => [f.name as string, f]));
    expect(byName.get('anon-filter/sid/100k')).toMatchObject({
      unit: 'Mpps',
      baseline: 'cap decoders + Map<hex SID>',
    });
    expect(byName.get('anon-filter-goal/sid/100k')).toMatchObject({
      unit: 'Mpps',
      baseline: 'goal ≥ 20 Mpps, one core',
      baselineValue: 20,
      value: byName.get('anon-filter/sid/100k')?.value,
    });
    expect(byName.get('anon-filter/tuple/10k')).toMatchObject({
      unit: 'Mpps',
      baseline: 'cap decoders + Map<tuple string>',
    });
    expect(byName.get('anon-seal/aes-gcm/node/1400')).toMatchObject({
      unit: 'packets/s',
      baseline: 'node AEAD seal',
    });
    // Opener and receiver are measured against the same raw open loop of the same run.
    const open = byName.get('anon-open/chacha20-poly1305/noble/512');
    const receive = byName.get('anon-receive/chacha20-poly1305/noble/512');
    expect(open).toMatchObject({ unit: 'packets/s', baseline: 'noble AEAD open' });
    expect(receive?.baselineValue).toBe(open?.baselineValue);
    // The filter and the opener ran over their corpora and rings (keep counts and bytes checked in the run).
    expect(stderr).toMatch(/anon-filter: 100000 protocol-253 frames \(\d+ the host's/);

    if (!noLab) {
      expect(byName.get('anon-prefilter/none')).toMatchObject({
        unit: 'packets/s',
        baseline: 'offered broadcast load',
      });
      const none = byName.get('anon-prefilter/none')!.value as number;
      for (const phase of ['ip-proto', 'sids'])
        expect(byName.get(`anon-prefilter/${phase}`)).toMatchObject({
          unit: 'packets/s',
          baseline: 'no kernel filter',
          baselineValue: none,
        });
      // Only the host's own 2% of the load passes the prefilter; ip proto 253 drops the 25% basic-mode.
      expect(byName.get('anon-prefilter/sids')!.ratio as number).toBeLessThan(0.1);
      expect(byName.get('anon-prefilter/ip-proto')!.ratio as number).toBeLessThan(0.9);
      expect(byName.get('anon-prefilter/sids/cpu')).toMatchObject({ unit: 'CPU s/s' });
      expect(stderr).toMatch(/anon-prefilter\/sids: .* reached JS \(\d+ own, 0 others' anon, 0 other\)/);
    }
  }, 180_000);
});
