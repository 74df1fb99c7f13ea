/**
 * `pktveil analyze --report OUT.html`: one self-contained HTML page (inline CSS and script, the analysis
 * embedded as JSON, no external URL) whose script draws the charts as SVG: size histogram, gap histogram,
 * volume over time, the flow table, and with labels the per-class feature summary and the confusion
 * matrix; with a before capture, the costs and the delay histogram.
 *
 * Each chart's element says when it has been drawn, for tests and tools: `data-drawn="true"` and
 * `data-marks` = the number of marks (bars, rows, cells) it drew. When the script fails, <body> gets
 * `data-error` with the message and the page shows it; when it finishes, <body> gets `data-rendered="true"`.
 */
import type { AnalysisReport } from './analysis/analyze-capture.js';

export interface ReportHtmlOptions {
  title?: string;
}

/** Chart element ids, in page order (those without data are left out of the page). */
export const REPORT_CHARTS = ['sizes', 'gaps', 'volume', 'flows', 'features', 'confusion', 'delay'] as const;
export type ReportChart = (typeof REPORT_CHARTS)[number];

/** The charts a report of `report` contains. */
export function reportCharts(report: AnalysisReport): ReportChart[] {
  return REPORT_CHARTS.filter((c) => {
    if (c === 'features' || c === 'confusion') return report.classifier !== undefined;
    if (c === 'delay') return report.delay !== undefined;
    return true;
  });
}

const CHART_TITLES: Record<ReportChart, string> = {
  sizes: 'Packet sizes (frame bytes on the wire, 32-byte bins)',
  gaps: 'Gaps between consecutive packets (log bins)',
  volume: 'Volume over time (bytes per bin)',
  flows: 'Flows with the most bytes',
  features: 'Per-class feature summary (mean ± standard deviation over the sub-windows)',
  confusion: 'Confusion matrix (rows: true class, columns: predicted)',
  delay: 'Added delay per packet (log bins)',
};

export function renderReportHtml(report: AnalysisReport, options: ReportHtmlOptions = {}): string {
  const title = options.title ?? `pktveil analyze: ${report.file}`;
  const charts = reportCharts(report)
    .map(
      (c) =>
        `<section><h2>${escapeHtml(CHART_TITLES[c])}</h2>` +
        `<figure class="chart" id="chart-${c}" data-chart="${c}" data-drawn="false"></figure></section>`,
    )
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body data-rendered="false">
<h1>${escapeHtml(title)}</h1>
<div id="summary"></div>
${charts}
<script type="application/json" id="pktveil-data">${embedJson(report)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that cannot end its <script> element early: every '<' is written as \u003c. */
function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; word-break: break-all; }
h2 { font-size: 1.1em; margin-top: 2em; }
figure.chart { margin: 0; overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; }
td.text { text-align: left; }
.bar { fill: #3b73b9; }
.bar2 { fill: #d9822b; }
.axis { stroke: #888; }
svg text { font-size: 10px; fill: #444; }
.error { color: #b00; white-space: pre-wrap; }
.verdict { font-size: 1.1em; }
`;

/* Plain ES2017 for the browser; no template literals so the TypeScript string stays literal. */
const SCRIPT = `
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  function fail(message) {
    document.body.setAttribute('data-error', String(message));
    var pre = document.getElementById('report-error');
    if (!pre) {
      pre = document.createElement('pre');
      pre.id = 'report-error';
      pre.className = 'error';
      document.body.insertBefore(pre, document.body.firstChild);
    }
    pre.textContent += 'Report script error: ' + message + '\\n';
  }
  window.addEventListener('error', function (e) { fail(e.message); });

  function el(name, attrs, parent, text) {
    var node = name === 'svg' || name === 'rect' || name === 'line' || name === 'text' || name === 'g' || name === 'title'
      ? document.createElementNS(NS, name) : document.createElement(name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }
  function fmt(x) {
    if (x === null || x === undefined) return '-';
    if (typeof x !== 'number') return String(x);
    if (x === 0) return '0';
    var a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toPrecision(3) + 'G';
    if (a >= 1e6) return (x / 1e6).toPrecision(3) + 'M';
    if (a >= 1e4) return (x / 1e3).toPrecision(3) + 'k';
    if (Number.isInteger(x)) return String(x);
    if (a >= 100) return x.toFixed(0);
    return x.toPrecision(3);
  }
  function seconds(s) {
    if (s === null || s === undefined) return '-';
    if (s === 0) return '0';
    if (s < 1e-6) return (s * 1e9).toPrecision(3) + ' ns';
    if (s < 1e-3) return (s * 1e6).toPrecision(3) + ' µs';
    if (s < 1) return (s * 1e3).toPrecision(3) + ' ms';
    return s.toPrecision(3) + ' s';
  }
  function done(figure, marks) {
    figure.setAttribute('data-marks', String(marks));
    figure.setAttribute('data-drawn', 'true');
  }

  /** Vertical bars: one rect per value (zero-height bars included), labels under some of them. */
  function bars(figure, values, labels, tips, options) {
    var n = values.length, W = Math.max(600, Math.min(1060, n * 14 + 60)), H = 220, left = 50, bottom = 40;
    var bw = (W - left - 10) / Math.max(1, n);
    var max = 0;
    for (var i = 0; i < n; i++) if (values[i] > max) max = values[i];
    var svg = el('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img' }, figure);
    el('line', { x1: left, y1: H - bottom, x2: W - 5, y2: H - bottom, 'class': 'axis' }, svg);
    el('line', { x1: left, y1: 5, x2: left, y2: H - bottom, 'class': 'axis' }, svg);
    el('text', { x: left - 4, y: 12, 'text-anchor': 'end' }, svg, fmt(max));
    el('text', { x: left - 4, y: H - bottom, 'text-anchor': 'end' }, svg, '0');
    var every = Math.max(1, Math.ceil(n / 12));
    for (var j = 0; j < n; j++) {
      var h = max > 0 ? (values[j] / max) * (H - bottom - 10) : 0;
      var r = el('rect', { x: left + j * bw + 0.5, y: H - bottom - h, width: Math.max(1, bw - 1), height: h,
        'class': options && options.secondary ? 'bar2' : 'bar', 'data-value': values[j] }, svg);
      el('title', {}, r, tips[j]);
      if (j % every === 0)
        el('text', { x: left + j * bw + bw / 2, y: H - bottom + 14, 'text-anchor': 'middle' }, svg, labels[j]);
    }
    if (options && options.xTitle) el('text', { x: W / 2, y: H - 4, 'text-anchor': 'middle' }, svg, options.xTitle);
    return n;
  }
  function histogram(figure, bins, label) {
    var values = bins.map(function (b) { return b.count; });
    var labels = bins.map(function (b) { return label(b.lo); });
    var tips = bins.map(function (b) {
      return '[' + label(b.lo) + ', ' + (b.hi === null ? '∞' : label(b.hi)) + '): ' + b.count + ' packets';
    });
    return bars(figure, values, labels, tips);
  }
  function table(figure, head, rows) {
    var t = el('table', {}, figure);
    var tr = el('tr', {}, el('thead', {}, t));
    head.forEach(function (h) { el('th', {}, tr, h); });
    var body = el('tbody', {}, t);
    rows.forEach(function (row) {
      var r = el('tr', { 'class': 'mark' }, body);
      row.forEach(function (cell) {
        el('td', typeof cell === 'number' || cell === null ? {} : { 'class': 'text' }, r,
          typeof cell === 'number' ? fmt(cell) : cell === null ? '-' : String(cell));
      });
    });
    return rows.length;
  }

  var draw = {
    sizes: function (f, d) { return histogram(f, d.sizes.histogram.bins, function (x) { return String(x); }); },
    gaps: function (f, d) { return histogram(f, d.timing.histogram.bins, seconds); },
    delay: function (f, d) { return histogram(f, d.delay.histogram.bins, seconds); },
    volume: function (f, d) {
      var v = d.volume;
      var labels = v.bytes.map(function (_, i) { return seconds(i * v.binSeconds); });
      var tips = v.bytes.map(function (b, i) {
        return '+' + seconds(i * v.binSeconds) + ': ' + b + ' bytes, ' + v.packets[i] + ' packets';
      });
      return bars(f, v.bytes, labels, tips, { xTitle: 'time since the first packet (bins of ' + seconds(v.binSeconds) + ')' });
    },
    flows: function (f, d) {
      var rows = d.flows.top.map(function (r) {
        var id = r.network === 'ipv4' || r.network === 'ipv6'
          ? r.src + (r.srcPort !== undefined ? ':' + r.srcPort : '') + ' > ' + r.dst + (r.dstPort !== undefined ? ':' + r.dstPort : '')
          : r.network + (r.etherType !== undefined ? ' 0x' + r.etherType.toString(16) : '');
        var extra = r.spi ? 'spi ' + r.spi : r.sid ? 'sid ' + r.sid : '';
        return [id, r.protocol === undefined ? null : r.protocol, extra, r.packets, r.bytes, seconds(r.durationSeconds),
          r.size.mean, r.size.stddev, seconds(r.gap.meanSeconds), r.gap.cv];
      });
      var n = table(f, ['flow', 'proto', 'spi / sid', 'packets', 'bytes', 'duration', 'mean size', 'size sd',
        'mean gap', 'gap CV'], rows);
      if (d.flows.untracked.packets > 0)
        el('p', {}, f, d.flows.untracked.packets + ' packets of flows beyond the table limit are not listed.');
      return n;
    },
    features: function (f, d) {
      var c = d.classifier, marks = 0;
      var svgW = 300, rowH = 16;
      var t = el('table', {}, f);
      var head = el('tr', {}, el('thead', {}, t));
      el('th', {}, head, 'feature');
      el('th', {}, head, 'class: mean ± sd');
      var body = el('tbody', {}, t);
      c.features.forEach(function (feature) {
        var tr = el('tr', {}, body);
        el('td', { 'class': 'text' }, tr, feature);
        var td = el('td', { 'class': 'text' }, tr);
        var max = 0;
        c.classes.forEach(function (k) { var s = c.perClass[k][feature]; max = Math.max(max, s.mean + s.stddev); });
        var svg = el('svg', { width: svgW + 200, height: rowH * c.classes.length }, td);
        c.classes.forEach(function (k, i) {
          var s = c.perClass[k][feature];
          var w = max > 0 ? (s.mean / max) * svgW : 0;
          var r = el('rect', { x: 90, y: i * rowH + 2, width: Math.max(0, w), height: rowH - 4, 'class': 'bar feature-mark' }, svg);
          el('title', {}, r, k + ': ' + fmt(s.mean) + ' ± ' + fmt(s.stddev));
          if (max > 0 && s.stddev > 0)
            el('line', { x1: 90 + w - (s.stddev / max) * svgW, x2: 90 + w + (s.stddev / max) * svgW,
              y1: i * rowH + rowH / 2, y2: i * rowH + rowH / 2, 'class': 'axis' }, svg);
          el('text', { x: 0, y: i * rowH + 12 }, svg, k);
          el('text', { x: 95 + Math.max(0, w), y: i * rowH + 12 }, svg, fmt(s.mean) + ' ± ' + fmt(s.stddev));
          marks++;
        });
      });
      return marks;
    },
    confusion: function (f, d) {
      var c = d.classifier, cell = 56, left = 90, top = 70, marks = 0;
      var n = c.classes.length;
      var svg = el('svg', { width: left + n * cell + 10, height: top + n * cell + 10 }, f);
      var max = 0;
      c.confusion.forEach(function (row) { row.forEach(function (v) { max = Math.max(max, v); }); });
      c.classes.forEach(function (k, i) {
        el('text', { x: left - 6, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'end' }, svg, k);
        el('text', { x: left + i * cell + cell / 2, y: top - 8, 'text-anchor': 'middle' }, svg, k);
      });
      el('text', { x: left, y: 14 }, svg, 'predicted →');
      c.confusion.forEach(function (row, i) {
        row.forEach(function (v, j) {
          var shade = max > 0 ? v / max : 0;
          var fill = i === j ? 'rgba(59,115,185,' + (0.1 + 0.9 * shade) + ')' : 'rgba(217,130,43,' + (0.1 + 0.9 * shade) + ')';
          var r = el('rect', { x: left + j * cell, y: top + i * cell, width: cell - 2, height: cell - 2, fill: fill,
            'class': 'cell', 'data-value': v }, svg);
          el('title', {}, r, c.classes[i] + ' predicted as ' + c.classes[j] + ': ' + v);
          el('text', { x: left + j * cell + cell / 2, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'middle' }, svg, String(v));
          marks++;
        });
      });
      return marks;
    }
  };

  function summary(d) {
    var s = document.getElementById('summary');
    var rows = [
      ['packets', fmt(d.packets)], ['bytes', fmt(d.bytes)], ['duration', seconds(d.durationSeconds)],
      ['first packet', d.firstTs], ['flows', fmt(d.flows.count)], ['distinct sizes', fmt(d.sizes.distinct)],
      ['mean size', fmt(d.sizes.mean) + ' B'], ['gap CV', fmt(d.timing.cv)]
    ];
    if (d.classifier) {
      var c = d.classifier;
      el('p', { 'class': 'verdict' }, s, 'A naive Bayes observer told the classes apart with accuracy ' +
        (c.accuracy * 100).toFixed(1) + '% against ' + (c.chance * 100).toFixed(1) +
        '% chance (always guessing the majority class, ' + c.chanceClass + '), over ' + c.samples + ' windows of ' +
        c.windowSeconds + ' s in ' + c.folds + '-fold cross-validation.');
    }
    if (d.overhead) {
      var o = d.overhead;
      rows.push(['bytes after / before', fmt(o.bytesRatio)], ['packets after / before', fmt(o.packetsRatio)],
        ['extra bits/s', fmt(o.extraBitsPerSecond)]);
    }
    if (d.delay) {
      var p = d.delay.percentilesSeconds || {};
      rows.push(['delay matched', d.delay.matched + ' (unmatched: ' + d.delay.unmatchedBefore + ' before, ' +
        d.delay.unmatchedDelivered + ' delivered)'], ['delay mean / p50 / p99 / max', seconds(d.delay.meanSeconds) + ' / ' +
        seconds(p.p50) + ' / ' + seconds(p.p99) + ' / ' + seconds(d.delay.maxSeconds)]);
    }
    var t = el('table', {}, s);
    rows.forEach(function (r) {
      var tr = el('tr', {}, t);
      el('th', {}, tr, r[0]);
      el('td', { 'class': 'text' }, tr, r[1]);
    });
  }

  try {
    var data = JSON.parse(document.getElementById('pktveil-data').textContent);
    summary(data);
    var figures = document.querySelectorAll('figure.chart');
    for (var i = 0; i < figures.length; i++) {
      var f = figures[i];
      try {
        done(f, draw[f.getAttribute('data-chart')](f, data));
      } catch (e) {
        fail(f.id + ': ' + (e && e.stack ? e.stack : e));
      }
    }
  } catch (e) {
    fail(e && e.stack ? e.stack : e);
  }
  document.body.setAttribute('data-rendered', 'true');
})();
`;
