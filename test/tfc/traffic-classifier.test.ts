/**
 * The classifier side of analyze: label files (exact timestamps, every mistake named), sub-window features
 * with known answers, naive Bayes under stratified blocked k-fold cross-validation, and the acceptance
 * points of the issue on generated traffic: VoIP, web and bulk taking turns for over a minute are told
 * apart with accuracy ≥ 0.90, and the same windows sent as constant-rate fixed-size packets stay within
 * 5 points of chance.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeCapture } from '../../src/tfc/analysis/analyze-capture.js';
import { type Labels, parseLabels, parseTimestamp } from '../../src/tfc/analysis/labels.js';
import { FEATURE_NAMES, WindowFeatures } from '../../src/tfc/analysis/window-features.js';
import {
  crossValidate,
  fitNaiveBayes,
  stratifiedBlockedFolds,
  summarizeByClass,
} from '../../src/tfc/traffic-classifier.js';
import { asConstantRate, generateTraffic, takeTurns, writeTraffic } from '../../src/tfc/traffic-patterns.js';
import { T0 } from './analysis-fixtures.js';

describe('label files', () => {
  it('parses "<sec>.<frac>" times exactly to the nanosecond, beyond float precision', () => {
    expect(parseTimestamp('1700000000.123456789')).toBe(1_700_000_000_123_456_789n);
    expect(parseTimestamp('1700000000.5')).toBe(1_700_000_000_500_000_000n);
    expect(parseTimestamp('1700000000')).toBe(1_700_000_000_000_000_000n);
    // 2^53 + 1 seconds: a float would round the seconds themselves.
    expect(parseTimestamp('9007199254740993.000000001')).toBe(9_007_199_254_740_993_000_000_001n);
    expect(() => parseTimestamp('1.1234567891')).toThrow(/at most 9 fraction digits/);
    for (const bad of ['', '-1', ' 1', '1.', '.5', '1e9', '0x10'])
      expect(() => parseTimestamp(bad)).toThrow(/is not a time in "<seconds>\[.<fraction>\]" form/);
  });

  it('sorts windows and keeps their classes', () => {
    const labels = parseLabels(
      {
        windowSeconds: 0.5,
        windows: [
          { start: '10.0', end: '12.0', class: 'web' },
          { start: '1.25', end: '3', class: 'voip' },
        ],
      },
      'l.json',
    );
    expect(labels).toEqual({
      windowNs: 500_000_000n,
      windows: [
        { start: 1_250_000_000n, end: 3_000_000_000n, class: 'voip' },
        { start: 10_000_000_000n, end: 12_000_000_000n, class: 'web' },
      ],
    });
    expect(parseLabels({ windowSeconds: '0.000000001', windows: labelsWindows() }, 'x').windowNs).toBe(1n);
  });

  it('names the file and the entry of every mistake', () => {
    const cases: [unknown, RegExp][] = [
      [[], /labels l\.json: expected an object/],
      [
        { windowSeconds: 1, windows: [], extra: 1 },
        /unknown field 'extra' \(the fields are windowSeconds and windows\)/,
      ],
      [
        { windowSeconds: 0, windows: labelsWindows() },
        /windowSeconds must be a positive number of seconds.*got 0/,
      ],
      [{ windowSeconds: 1e-12, windows: labelsWindows() }, /at least 1 ns/],
      [{ windowSeconds: 1, windows: [] }, /windows must be a non-empty array/],
      [
        { windowSeconds: 1, windows: [{ start: '1', end: '2', class: 'a', kind: 'b' }] },
        /windows\[0\]: unknown field 'kind'/,
      ],
      [
        { windowSeconds: 1, windows: [{ start: 1, end: '2', class: 'a' }] },
        /windows\[0\]\.start must be a string/,
      ],
      [
        { windowSeconds: 1, windows: [{ start: '1', end: '2.x', class: 'a' }] },
        /windows\[0\]\.end: "2\.x" is not a time/,
      ],
      [
        { windowSeconds: 1, windows: [{ start: '2', end: '2', class: 'a' }] },
        /windows\[0\]: end 2 is not after start 2/,
      ],
      [
        { windowSeconds: 1, windows: [{ start: '1', end: '2', class: '' }] },
        /windows\[0\]\.class must be a non-empty string/,
      ],
      [
        {
          windowSeconds: 1,
          windows: [
            { start: '5', end: '8', class: 'b' },
            { start: '1', end: '5.5', class: 'a' },
          ],
        },
        /windows overlap: \[1\.000000000, 5\.500000000\) 'a' and \[5\.000000000, 8\.000000000\) 'b'/,
      ],
    ];
    for (const [json, message] of cases) expect(() => parseLabels(json, 'l.json')).toThrow(message);
  });
});

function labelsWindows() {
  return [{ start: '1', end: '2', class: 'a' }];
}

describe('sub-window features', () => {
  const labels = (windows: [number, number, string][], windowSeconds = 1): Labels => ({
    windowNs: BigInt(windowSeconds * 1e9),
    windows: windows.map(([s, e, c]) => ({
      start: T0 + BigInt(s * 1e9),
      end: T0 + BigInt(e * 1e9),
      class: c,
    })),
  });
  const ms = (x: number) => x * 1e6;

  it('cuts windows into sub-windows and drops the shorter remainder', () => {
    const w = new WindowFeatures(
      labels([
        [0, 2.5, 'a'],
        [3, 5, 'b'],
      ]),
      T0,
    );
    expect(w.count).toBe(4);
    expect(w.samples().classes).toEqual(['a', 'a', 'b', 'b']);
  });

  it('describes a sub-window by what the wire shows', () => {
    const w = new WindowFeatures(labels([[0, 2, 'a']]), T0);
    w.add(ms(100), 100);
    w.add(ms(300), 200);
    w.add(ms(600), 200);
    w.add(ms(2500), 999); // outside every window: ignored
    const s = w.samples();
    expect(s.features).toEqual(FEATURE_NAMES);
    expect(s.empty).toBe(1);
    const row = Object.fromEntries(FEATURE_NAMES.map((f, i) => [f, s.rows[0]![i]]));
    expect(row).toEqual({
      packets: 3,
      bytes: 500,
      meanSize: expect.closeTo(500 / 3, 9),
      stddevSize: expect.closeTo(Math.sqrt(20000 / 9), 9),
      minSize: 100,
      maxSize: 200,
      distinctSizes: 2,
      meanGap: 0.25,
      gapCv: 0.2,
      maxIdle: 0.4, // from the last packet to the sub-window's end
      burstFraction: 0,
    });
    // An empty sub-window: no packets, idle throughout.
    expect(s.rows[1]).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0]);
  });

  it('counts back-to-back packets (gaps under 1 ms) in burstFraction', () => {
    const w = new WindowFeatures(labels([[0, 1, 'a']]), T0);
    for (const t of [0, 0.2, 0.4, 0.6, 500]) w.add(ms(t), 1500);
    const row = w.samples().rows[0]!;
    expect(row[FEATURE_NAMES.indexOf('burstFraction')]).toBe(0.75);
    expect(row[FEATURE_NAMES.indexOf('maxIdle')]).toBe(0.5);
    expect(row[FEATURE_NAMES.indexOf('distinctSizes')]).toBe(1);
  });

  it('refuses labels that would make more than a million sub-windows', () => {
    expect(() => new WindowFeatures(labels([[0, 2000, 'a']], 0.001), T0)).toThrow(
      /2000000 sub-windows of 0\.001 s, more than 1000000: raise windowSeconds/,
    );
  });
});

describe('naive Bayes under cross-validation', () => {
  it('stratified blocked folds: each class cut into k contiguous runs', () => {
    expect(stratifiedBlockedFolds([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 2, 5)).toEqual([
      0, 1, 2, 3, 4, 0, 1, 2, 3, 4,
    ]);
    expect(stratifiedBlockedFolds([1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1], 2, 3)).toEqual([
      0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 1, 2, 2,
    ]);
  });

  it('separates well-apart classes perfectly, with the confusion matrix to show it', () => {
    const rows: number[][] = [];
    const classes: string[] = [];
    for (let i = 0; i < 12; i++) {
      rows.push([i % 3, 100 + i], [50 + (i % 3), 100 - i]);
      classes.push('low', 'high');
    }
    const cv = crossValidate(rows, classes);
    expect(cv).toMatchObject({
      method: 'gaussian-naive-bayes',
      folds: 5,
      samples: 24,
      accuracy: 1,
      chance: 0.5,
      classes: ['high', 'low'],
      samplesPerClass: { high: 12, low: 12 },
      confusion: [
        [12, 0],
        [0, 12],
      ],
      recall: { high: 1, low: 1 },
    });
  });

  it('falls back to the majority class when every window looks alike: accuracy = chance', () => {
    const rows = Array.from({ length: 10 }, () => [100, 50_000, 500]);
    const classes = ['a', 'a', 'a', 'a', 'a', 'a', 'b', 'b', 'b', 'b'];
    const cv = crossValidate(rows, classes);
    expect(cv.folds).toBe(4);
    expect(cv.chance).toBe(0.6);
    expect(cv.chanceClass).toBe('a');
    expect(cv.accuracy).toBe(0.6);
    expect(cv.confusion).toEqual([
      [6, 0],
      [4, 0],
    ]);
  });

  it('uses fewer folds when a class has fewer than 5 samples, and needs 2 per class', () => {
    const rows = [[1], [2], [3], [10], [11], [12], [13], [14], [15]];
    expect(crossValidate(rows, ['a', 'a', 'a', 'b', 'b', 'b', 'b', 'b', 'b']).folds).toBe(3);
    expect(() => crossValidate([[1], [2], [3]], ['a', 'b', 'b'])).toThrow(
      /class 'a' has 1 sample window; cross-validation needs at least 2 per class \(lengthen its labelled windows or lower windowSeconds\)/,
    );
    expect(() => crossValidate([[1], [2]], ['a', 'a'])).toThrow(
      /at least two classes; the labels have 1 \(a\)/,
    );
  });

  it('predicts the class whose per-feature Gaussians fit best, on the training fold scale', () => {
    const model = fitNaiveBayes(
      [
        [0, 5],
        [1, 5],
        [10, 5],
        [11, 5],
      ],
      [0, 0, 1, 1],
      2,
    );
    expect(model.predict([0.5, 5])).toBe(0);
    expect(model.predict([9, 123])).toBe(1); // the constant feature is ignored
  });

  it('summarizes each feature per class in its own units', () => {
    const s = summarizeByClass(
      [
        [1, 10],
        [3, 10],
        [5, 0],
      ],
      ['a', 'a', 'b'],
      ['x', 'y'],
    );
    expect(s).toEqual({
      a: { x: { mean: 2, stddev: 1 }, y: { mean: 10, stddev: 0 } },
      b: { x: { mean: 5, stddev: 0 }, y: { mean: 0, stddev: 0 } },
    });
  });
});

describe('acceptance on generated traffic (issue 5)', () => {
  let dir: string;
  // VoIP, web and bulk take turns of 4–8 s, four rounds: about 68 s.
  const turns = takeTurns(['voip', 'web', 'bulk'], 4, [4, 8], 7);
  const plain = generateTraffic({ seed: 42, turns });
  const constant = generateTraffic({ seed: 42, turns: asConstantRate(turns) });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pktveil-classifier-'));
    await writeTraffic(join(dir, 'plain.pcap'), plain);
    await writeTraffic(join(dir, 'constant.pcap'), constant);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the schedule is over a minute long and both traces carry the same labels', () => {
    expect(Number(plain.end - plain.start) / 1e9).toBeGreaterThanOrEqual(60);
    expect(constant.labels).toEqual(plain.labels);
  });

  it('tells VoIP, web and bulk apart in the plain trace with accuracy >= 0.90', async () => {
    const r = await analyzeCapture(join(dir, 'plain.pcap'), { labels: parseLabels(plain.labels, 'plain') });
    const c = r.classifier!;
    expect(c.classes).toEqual(['bulk', 'voip', 'web']);
    expect(c.samples).toBeGreaterThanOrEqual(60);
    expect(c.folds).toBe(5);
    expect(c.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(c.chance).toBeLessThan(0.4);
    expect(c.emptyWindows).toBe(0);
    // The per-class summary shows why: VoIP's 200-byte packets, bulk's steady flood.
    expect(c.perClass.voip!.maxSize).toEqual({ mean: 200, stddev: 0 });
    expect(c.perClass.bulk!.packets!.mean).toBeGreaterThan(10 * c.perClass.voip!.packets!.mean);
  });

  it('cannot beat chance by more than 5 points when every packet has one size at a constant rate', async () => {
    const r = await analyzeCapture(join(dir, 'constant.pcap'), { labels: parseLabels(constant.labels, 'c') });
    const c = r.classifier!;
    expect(r.sizes.distinct).toBe(1);
    expect(r.timing.cv).toBeCloseTo(0, 6);
    expect(c.samples).toBeGreaterThanOrEqual(60);
    expect(Math.abs(c.accuracy - c.chance)).toBeLessThanOrEqual(0.05);
  });
});
