/**
 * `pktveil analyze` (contracts/cli.md, "analyze"): --json prints one object with the documented keys
 * (classifier, overhead and delay when asked for), the human summary, --report, --help, usage errors
 * (exit 2) and unreadable inputs (exit 1) that say which file and what is wrong.
 *
 * A few runs go through the real CLI process (exit codes, stdout of the real wiring). The many error cases run in this process with main.ts's dispatch (usage errors exit 2, others 1), since a
 * process start costs a second.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { analyzeCommand } from '../../src/cli/analyze.js';
import { parseCommandArgs, UsageError } from '../../src/cli/command.js';
import { openCaptureWriter, parseCaptureBuffer } from '../../src/io/capture-file.js';
import { generateTraffic, takeTurns, writeTraffic } from '../../src/tfc/traffic-patterns.js';
import { type CliResult, runCli } from '../helpers/cli.js';

const KERNEL_MIX = fileURLToPath(new URL('../../examples/kernel-mix.pcap', import.meta.url));
function analyze(args: string[]): Promise<CliResult> {
  return runCli(['analyze', ...args]);
}

/** The command in this process, with main.ts's dispatch and stdout/stderr captured. */
async function inProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const parsed = parseCommandArgs(analyzeCommand, args);
    if (parsed === 'help') {
      stdout += `${analyzeCommand.help}\n`;
      return { code: 0, stdout, stderr };
    }
    return { code: await analyzeCommand.run(parsed.values, parsed.positionals), stdout, stderr };
  } catch (e) {
    if (e instanceof UsageError)
      return {
        code: 2,
        stdout,
        stderr: `${stderr}pktveil analyze: ${e.message}\n\n${analyzeCommand.help}\n`,
      };
    return { code: 1, stdout, stderr: `${stderr}pktveil analyze: ${(e as Error).message}\n` };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

let dir: string;
let real: Record<'json' | 'full' | 'human' | 'usage' | 'unreadable', CliResult>;
let traffic: string;
let labels: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pktveil-analyze-cli-'));
  const generated = generateTraffic({ seed: 2, turns: takeTurns(['voip', 'web', 'bulk'], 2, 3, 2) });
  traffic = join(dir, 'traffic.pcap');
  labels = join(dir, 'labels.json');
  await writeTraffic(traffic, generated);
  writeFileSync(labels, JSON.stringify(generated.labels));
  // The runs through a real process, started together (each costs a second of start-up).
  const [json, full, human, usage, unreadable] = await Promise.all([
    analyze([KERNEL_MIX, '--json']),
    analyze([
      traffic,
      '--labels',
      labels,
      '--before',
      traffic,
      '--json',
      '--report',
      join(dir, 'report.html'),
    ]),
    analyze([traffic, '--labels', labels, '--before', traffic]),
    analyze([KERNEL_MIX, '--bin-ms', '0']),
    analyze([join(dir, 'missing.pcap'), '--json']),
  ]);
  real = { json: json!, full: full!, human: human!, usage: usage!, unreadable: unreadable! };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE_KEYS = ['packets', 'bytes', 'durationSeconds', 'sizes', 'timing', 'volume', 'flows'];

describe('pktveil analyze', () => {
  it('--json prints one JSON object with the contract keys', async () => {
    const r = real.json;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const json = JSON.parse(r.stdout);
    for (const key of BASE_KEYS) expect(json).toHaveProperty(key);
    for (const key of ['classifier', 'overhead', 'delay']) expect(json).not.toHaveProperty(key);
    // The bundled capture: 34 Ethernet frames of IPv4, IPv6 and ARP from a real kernel.
    expect(json).toMatchObject({ packets: 34, bytes: 8408, firstTs: expect.stringMatching(/^\d+\.\d{9}$/) });
    expect(json.flows.top.some((f: { etherType?: number }) => f.etherType === 0x0806)).toBe(true);
    expect(json.sizes.histogram.bins).toHaveLength(49);
  });

  it('adds classifier, overhead and delay with --labels and --before, and writes --report', async () => {
    const report = join(dir, 'report.html');
    const r = real.full;
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    for (const key of [...BASE_KEYS, 'classifier', 'overhead', 'delay']) expect(json).toHaveProperty(key);
    expect(json.classifier).toMatchObject({
      method: 'gaussian-naive-bayes',
      classes: ['bulk', 'voip', 'web'],
      windowSeconds: 1,
      accuracy: expect.any(Number),
      chance: expect.any(Number),
    });
    expect(json.classifier.confusion).toHaveLength(3);
    expect(json.overhead).toMatchObject({ bytesRatio: 1, packetsRatio: 1, extraBytes: 0 });
    expect(json.delay).toMatchObject({ matched: json.packets, unmatchedBefore: 0, maxSeconds: 0 });
    const html = readFileSync(report, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('id="chart-confusion"');
  });

  it('--bin-ms sets the volume bin width; --flows the table length', async () => {
    const r = await inProcess([KERNEL_MIX, '--json', '--bin-ms', '500', '--flows', '2']);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.volume.binSeconds).toBe(0.5);
    expect(json.volume.bytes.reduce((a: number, b: number) => a + b)).toBe(8408);
    expect(json.flows.top).toHaveLength(2);
  });

  it('without --json prints a short summary for people', async () => {
    const r = real.human;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^.*traffic\.pcap: \d+ packets, .* over .*, \d+ flows\n/);
    expect(r.stdout).toMatch(/\nsizes: mean [\d.]+ B, .* distinct; most common 1500 B/);
    expect(r.stdout).toMatch(/\ngaps: mean .*, CV [\d.]+, p50 .*, p99 .*, max /);
    expect(r.stdout).toMatch(
      /\nclassifier: accuracy [\d.]+ vs chance [\d.]+ \(always '\w+'\), \d+ windows of 1 s, \d-fold/,
    );
    expect(r.stdout).toMatch(/\noverhead: 1\.000x bytes, 1\.000x packets/);
    expect(r.stdout).toMatch(/\ndelay: \d+ matched \(unmatched: 0 before, 0 delivered\)/);
  });

  it('reads pcapng as well as pcap', async () => {
    const pcapng = join(dir, 'kernel-mix.pcapng');
    const writer = await openCaptureWriter(pcapng, { format: 'pcapng', link: 1 });
    for (const p of parseCaptureBuffer(readFileSync(KERNEL_MIX))) await writer.writePacket(p);
    await writer.close();
    const r = await inProcess([pcapng, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ packets: 34, bytes: 8408 });
  });

  it('--help documents the flags, the JSON keys and what chance means', async () => {
    const r = await inProcess(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: pktveil analyze FILE \[--labels FILE\]/);
    for (const flag of ['--labels', '--before', '--delivered', '--bin-ms', '--json', '--report'])
      expect(r.stdout).toContain(flag);
    for (const key of [...BASE_KEYS, 'classifier', 'overhead', 'delay'])
      expect(r.stdout).toMatch(new RegExp(`\\b${key}\\b`));
    expect(r.stdout).toContain('chance (the accuracy of always guessing the majority class)');
  });

  it('exits 2 with the usage on bad arguments', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing FILE/],
      [[KERNEL_MIX, 'extra.pcap'], /unexpected argument 'extra\.pcap'/],
      [[KERNEL_MIX, '--frobnicate'], /Unknown option '--frobnicate'/],
      [[KERNEL_MIX, '--bin-ms', '0'], /--bin-ms needs a positive number, got '0'/],
      [[KERNEL_MIX, '--bin-ms', 'soon'], /--bin-ms needs a positive number, got 'soon'/],
      [[KERNEL_MIX, '--flows', '0'], /--flows needs at least 1/],
      [[KERNEL_MIX, '--delivered', KERNEL_MIX], /--delivered needs --before/],
      [[KERNEL_MIX, '--anon-protocol', '300'], /--anon-protocol must be 0-255/],
    ];
    // One through a real process, to see the exit status itself.
    expect([real.usage.code, real.usage.stdout]).toEqual([2, '']);
    expect(real.usage.stderr).toMatch(
      /^pktveil analyze: --bin-ms needs a positive number, got '0'\n\nUsage: pktveil analyze/,
    );
    const results = [];
    for (const [args] of cases) results.push(await inProcess(args));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(2);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr).toContain('Usage: pktveil analyze');
      expect(r.stdout).toBe('');
    });
  });

  it('exits 1 naming the file when an input cannot be read or makes no sense', async () => {
    const notCapture = join(dir, 'notes.txt');
    writeFileSync(notCapture, 'these are not packets\n');
    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{"windowSeconds":1,');
    const overlapping = join(dir, 'overlap.json');
    writeFileSync(
      overlapping,
      JSON.stringify({
        windowSeconds: 1,
        windows: [
          { start: '1', end: '3', class: 'a' },
          { start: '2', end: '4', class: 'b' },
        ],
      }),
    );
    const missing = join(dir, 'missing.pcap');
    const cases: [string[], RegExp][] = [
      [[missing, '--json'], /^pktveil analyze: capture .*missing\.pcap: ENOENT: no such file or directory/],
      [
        [notCapture],
        /^pktveil analyze: capture .*notes\.txt: capture file header at byte offset 0: magic number 0x74686573 is neither pcap nor pcapng/,
      ],
      [[KERNEL_MIX, '--labels', missing], /^pktveil analyze: labels .*missing\.pcap: ENOENT/],
      [[KERNEL_MIX, '--labels', badJson], /^pktveil analyze: labels .*bad\.json: not JSON/],
      [[KERNEL_MIX, '--labels', overlapping], /^pktveil analyze: labels .*overlap\.json: windows overlap/],
      [[KERNEL_MIX, '--before', missing], /^pktveil analyze: before capture .*missing\.pcap: ENOENT/],
      [
        [KERNEL_MIX, '--report', join(dir, 'no', 'such', 'dir', 'r.html')],
        /^pktveil analyze: cannot write the report .*r\.html: ENOENT/,
      ],
      // Labels whose classes cannot be cross-validated: say which class and what to change.
      [
        [KERNEL_MIX, '--labels', join(dir, 'one-class.json')],
        /^pktveil analyze: a classifier needs at least two classes/,
      ],
    ];
    writeFileSync(
      join(dir, 'one-class.json'),
      JSON.stringify({ windowSeconds: 1, windows: [{ start: '1', end: '9', class: 'a' }] }),
    );
    expect([real.unreadable.code, real.unreadable.stdout]).toEqual([1, '']);
    expect(real.unreadable.stderr).toMatch(
      /^pktveil analyze: capture .*missing\.pcap: ENOENT: no such file or directory/,
    );
    const results = [];
    for (const [args] of cases) results.push(await inProcess(args));
    results.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(1);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr).not.toContain('Usage:');
      expect(r.stdout).toBe('');
    });
  });

  it('warns when the labels miss the capture entirely (relative times instead of epoch ones)', async () => {
    const relative = join(dir, 'relative.json');
    writeFileSync(
      relative,
      JSON.stringify({
        windowSeconds: 1,
        windows: [
          { start: '0', end: '3', class: 'a' },
          { start: '3', end: '6', class: 'b' },
        ],
      }),
    );
    const r = await inProcess([KERNEL_MIX, '--labels', relative, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: no packet of .*kernel-mix\.pcap falls in a labelled window/);
    expect(JSON.parse(r.stdout).classifier).toMatchObject({ emptyWindows: 6, samples: 6 });
  });
});
