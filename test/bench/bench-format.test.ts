/**
 * The benchmark suite's output contract (contracts/cli.md, `bench`): with --json every stdout line is a
 * JSON object with exactly name, unit, value, baseline, baselineValue, ratio, and ratio is
 * value / baselineValue. Runs the real suite with --quick; no timing is asserted, only the shape.
 */
import { describe, expect, it } from 'vitest';
import { keySuite } from '../../src/esp/crypto/select.js';
import { SUITES } from '../../src/esp/suites.js';
import { expectWellFormed, parseFigures, runBench } from '../helpers/bench-figures.js';
import { describeSystem } from '../helpers/system.js';

/** `bench/run.ts ARGS` as a user runs it. */
function bench(...args: string[]) {
  return runBench(args, 120_000);
}

/** The backend the IP-TFS figures name: the fastest that offers chacha20-poly1305 here. */
const CHACHA_BACKEND = keySuite(SUITES['chacha20-poly1305'], new Uint8Array(36), new Uint8Array(0)).backend;

/**
 * The benchmarks this test runs, as --only substrings, one process each: all but ESP and the anonymity
 * layer's, which have their own format tests (esp-bench-format.test.ts, anon-bench-format.test.ts) because
 * they take a minute or more even quick. (--skip takes one substring, so they are named instead.)
 */
const GENERAL = ['decode', 'capture-read', 'pcap-throughput', 'heap', 'iptfs'];

describeSystem('bench/run.ts --quick --json', ['cap', 'tcpdump'], () => {
  it('prints one well-formed figure per line for every benchmark but ESP and anon (IP-TFS included)', async () => {
    const figures: Record<string, unknown>[] = [];
    for (const only of GENERAL) {
      const out = await bench('--quick', '--json', '--only', only);
      expect(out.stderr).not.toMatch(/baseline skipped/);
      expect(out.code, `--only ${only}: ${out.stderr}`).toBe(0);
      figures.push(...parseFigures(out.stdout));
    }
    // iptfs-live needs root (it runs on a veth pair) and names its figures by rate: checked for shape below.
    const general = figures.filter((f) => !String(f.name).startsWith('iptfs-live'));
    expect(general.map((f) => f.name)).toEqual([
      'decode',
      'capture-read',
      'pcap-throughput',
      'pcap-throughput-packets',
      'heap',
      ...['encap', 'decap'].flatMap((d) =>
        ['imix', '1400'].map((mix) => `iptfs-${d}/chacha20-poly1305/${CHACHA_BACKEND}/${mix}`),
      ),
    ]);
    expectWellFormed(figures);
    expect(general.map((f) => f.unit)).toEqual([
      'frames/s',
      'packets/s',
      'MB/s',
      'packets/s',
      'bytes',
      ...Array(4).fill('Gbit/s'),
    ]);
  }, 180_000);
});

describe('bench/run.ts arguments', () => {
  it('runs only the benchmarks --only names', async () => {
    const out = await bench('--quick', '--json', '--only', 'heap');
    expect(out.code).toBe(0);
    expect(parseFigures(out.stdout).map((f) => f.name)).toEqual(['heap']);
  }, 120_000);

  it('prints a table without --json', async () => {
    const out = await bench('--quick', '--only', 'heap');
    expect(out.code).toBe(0);
    const [header, rule, row, ...rest] = out.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^benchmark\s+value\s+unit\s+baseline\s+baseline value\s+ratio\s+detail$/);
    expect(rule).toMatch(/^[- ]+$/);
    expect(row).toMatch(/^heap\s+[\d,]+\s+bytes\s+heap after warm-up\s+[\d,]+\s+[\d.]+×\s+growth -?\d+ B/);
    expect(rest).toEqual([]);
  }, 120_000);

  it('refuses an unknown argument and an --only that matches nothing, with exit code 2', async () => {
    const unknown = await bench('--fast');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown argument "--fast"');
    const nothing = await bench('--only', 'no-such-bench');
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain(
      'no benchmark name contains "no-such-bench": decode, capture-read, pcap-throughput, heap',
    );
    expect(nothing.stdout).toBe('');
  }, 60_000);
});
