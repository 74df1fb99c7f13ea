/**
 * The HTML report: one self-contained file (no external resource, the analysis embedded as JSON that no
 * file name can break out of), and, rendered by headless Chromium, every chart drawn with the expected
 * number of marks, no script error, a screenshot with the bars visible; a broken chart is reported by the
 * page's error marker, not silently left blank.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnalysisReport, analyzeCapture } from '../../src/tfc/analysis/analyze-capture.js';
import { parseLabels } from '../../src/tfc/analysis/labels.js';
import { REPORT_CHARTS, renderReportHtml, reportCharts } from '../../src/tfc/report-html.js';
import { generateTraffic, takeTurns, writeTraffic } from '../../src/tfc/traffic-patterns.js';
import { CHROMIUM, describeSystem } from '../helpers/system.js';

let dir: string;
let full: AnalysisReport;
let plainOnly: AnalysisReport;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pktveil-report-'));
  const traffic = generateTraffic({ seed: 4, turns: takeTurns(['voip', 'web', 'bulk'], 2, 3, 4) });
  const file = join(dir, 'traffic.pcap');
  await writeTraffic(file, traffic);
  full = await analyzeCapture(file, { labels: parseLabels(traffic.labels, 'labels'), before: file });
  plainOnly = await analyzeCapture(file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The JSON embedded in a report page. */
function embedded(html: string): unknown {
  const m = /<script type="application\/json" id="pktveil-data">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no embedded data');
  return JSON.parse(m[1]!);
}

describe('report page', () => {
  it('draws the charts the analysis has data for', () => {
    expect(reportCharts(plainOnly)).toEqual(['sizes', 'gaps', 'volume', 'flows']);
    expect(reportCharts(full)).toEqual([...REPORT_CHARTS]);
    const html = renderReportHtml(full);
    for (const c of REPORT_CHARTS)
      expect(html).toContain(`id="chart-${c}" data-chart="${c}" data-drawn="false"`);
    expect(renderReportHtml(plainOnly)).not.toContain('chart-confusion');
  });

  it('is self-contained: inline style and script, no external resource or URL to fetch', () => {
    const html = renderReportHtml(full);
    expect(html).not.toMatch(/<link|<img|<iframe|\ssrc=|\shref=|url\(|@import/i);
    // The only URL is the SVG namespace name, which is an identifier, never fetched.
    expect(new Set(html.match(/https?:\/\/[^\s'"<)]+/g))).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(embedded(html)).toEqual(JSON.parse(JSON.stringify(full)));
  });

  it('embeds the data so that no file name can close its script element or inject markup', () => {
    const evil = { ...plainOnly, file: '</script><script>alert(1)</script><!--' };
    const html = renderReportHtml(evil);
    expect(html.split('</script>')).toHaveLength(3); // the data element and the drawing script, nothing else
    expect(embedded(html)).toEqual(JSON.parse(JSON.stringify(evil)));
    expect(html).toContain('<title>pktveil analyze: &#60;/script&#62;&#60;script&#62;alert(1)');
  });
});

/** Runs headless Chromium on a file with its own profile (engineers share the machine). */
function chromium(args: string[]): Promise<string> {
  const profile = mkdtempSync(join(dir, 'profile-'));
  return new Promise((resolve, reject) => {
    execFile(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        `--user-data-dir=${profile}`,
        '--hide-scrollbars',
        ...args,
      ],
      { timeout: 30_000, maxBuffer: 1 << 26 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`chromium failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** data-* attributes of the element with `id` in a dumped DOM. */
function attributes(dom: string, tag: string, id?: string): Record<string, string> {
  const re = new RegExp(`<${tag}\\b([^>]*)>`, 'g');
  for (const m of dom.matchAll(re)) {
    const attrs = Object.fromEntries([...m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]));
    if (id === undefined || attrs.id === id) return attrs;
  }
  throw new Error(`no <${tag}${id ? ` id=${id}` : ''}> in the DOM`);
}

/** Pixels of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium's screenshots are). */
function decodePng(png: Buffer): { width: number; height: number; channels: number; pixels: Buffer } {
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let at = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8); // bit depth
      expect(data[12]).toBe(0); // not interlaced
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      expect(channels).toBeGreaterThan(0);
    } else if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      let predicted = 0;
      if (filter === 1) predicted = a;
      else if (filter === 2) predicted = b;
      else if (filter === 3) predicted = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      pixels[y * stride + x] = (v + predicted) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

describeSystem('report rendered by headless Chromium', ['chromium'], () => {
  it('draws every chart with the expected number of marks and no script error', async () => {
    const page = join(dir, 'full.html');
    writeFileSync(page, renderReportHtml(full));
    const dom = await chromium(['--dump-dom', `file://${page}`]);
    const body = attributes(dom, 'body');
    expect(body['data-rendered']).toBe('true');
    expect(body['data-error']).toBeUndefined();
    expect(dom).not.toContain('<pre id="report-error"');
    const c = full.classifier!;
    const expected: Record<string, number> = {
      sizes: 49,
      gaps: 23,
      volume: full.volume.bytes.length,
      flows: Math.min(20, full.flows.count),
      features: c.features.length * c.classes.length,
      confusion: c.classes.length ** 2,
      delay: 23,
    };
    const marks = Object.fromEntries(
      REPORT_CHARTS.map((chart) => {
        const a = attributes(dom, 'figure', `chart-${chart}`);
        return [
          chart,
          a['data-drawn'] === 'true' ? Number(a['data-marks']) : `not drawn: ${JSON.stringify(a)}`,
        ];
      }),
    );
    expect(marks).toEqual(expected);
    // The marks are really in the DOM: one rect per size bin, one row per flow, one cell per pair.
    const sizes = dom.slice(dom.indexOf('id="chart-sizes"'), dom.indexOf('id="chart-gaps"'));
    expect(sizes.match(/<rect /g)).toHaveLength(49);
    const flows = dom.slice(dom.indexOf('id="chart-flows"'), dom.indexOf('id="chart-features"'));
    expect(flows.match(/<tr class="mark">/g)).toHaveLength(expected.flows!);
    expect(dom.match(/class="cell"/g)).toHaveLength(expected.confusion!);
  });

  it('shows the bars in a screenshot (not a blank page)', async () => {
    const page = join(dir, 'shot.html');
    const png = join(dir, 'shot.png');
    writeFileSync(page, renderReportHtml(plainOnly));
    await chromium(['--window-size=1100,1400', `--screenshot=${png}`, `file://${page}`]);
    const { width, height, channels, pixels } = decodePng(readFileSync(png));
    expect([width, height]).toEqual([1100, 1400]);
    let bar = 0;
    let white = 0;
    for (let i = 0; i < pixels.length; i += channels) {
      const [r, g, b] = [pixels[i]!, pixels[i + 1]!, pixels[i + 2]!];
      if (r === 0x3b && g === 0x73 && b === 0xb9) bar++; // .bar fill #3b73b9
      if (r === 255 && g === 255 && b === 255) white++;
    }
    expect(bar).toBeGreaterThan(2000);
    expect(white).toBeLessThan(width * height);
  });

  it('marks a chart that failed to draw, and still draws the others', async () => {
    const broken = JSON.parse(JSON.stringify(plainOnly));
    broken.sizes.histogram.bins = null;
    const page = join(dir, 'broken.html');
    writeFileSync(page, renderReportHtml(broken));
    const dom = await chromium(['--dump-dom', `file://${page}`]);
    const body = attributes(dom, 'body');
    expect(body['data-rendered']).toBe('true');
    expect(body['data-error']).toMatch(/^chart-sizes: TypeError/);
    expect(dom).toContain('<pre id="report-error" class="error">Report script error: chart-sizes: TypeError');
    expect(attributes(dom, 'figure', 'chart-sizes')['data-drawn']).toBe('false');
    expect(attributes(dom, 'figure', 'chart-gaps')['data-drawn']).toBe('true');
  });
});
