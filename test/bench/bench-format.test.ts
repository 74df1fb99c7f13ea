/**
 * The benchmark suite's output contract (contracts/cli.md, `bench`): with --json every stdout line is a
 * JSON object with exactly name, unit, value, baseline, baselineValue, ratio, and ratio is
 * value / baselineValue. Runs the real suite with --quick; no timing is asserted, only the shape.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { keySuite } from '../../src/esp/crypto/select.js';
import { SUITES } from '../../src/esp/suites.js';
import { describeSystem } from '../helpers/system.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function bench(...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      cwd: root,
      timeout: 120_000,
      maxBuffer: 16 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

const KEYS = ['name', 'unit', 'value', 'baseline', 'baselineValue', 'ratio'];
/** The backend the IP-TFS figures name: the fastest that offers chacha20-poly1305 here. */
const CHACHA_BACKEND = keySuite(SUITES['chacha20-poly1305'], new Uint8Array(36), new Uint8Array(0)).backend;

function parseLines(stdout: string): Record<string, unknown>[] {
  const lines = stdout.split('\n').filter((l) => l !== '');
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

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
      figures.push(...parseLines(out.stdout));
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
    for (const f of figures) {
      expect(Object.keys(f)).toEqual(KEYS);
      expect(typeof f.name).toBe('string');
      expect(typeof f.unit).toBe('string');
      expect(typeof f.baseline).toBe('string');
      for (const key of ['value', 'baselineValue', 'ratio']) {
        expect(typeof f[key], `${String(f.name)}.${key}`).toBe('number');
        expect(
          Number.isFinite(f[key]) && (f[key] as number) > 0,
          `${String(f.name)}.${key} = ${f[key]}`,
        ).toBe(true);
      }
      const ratio = (f.value as number) / (f.baselineValue as number);
      expect(Math.abs((f.ratio as number) - ratio) / ratio, `${String(f.name)} ratio`).toBeLessThan(1e-4);
    }
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
    expect(parseLines(out.stdout).map((f) => f.name)).toEqual(['heap']);
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
