import { readFileSync, writeFileSync } from 'node:fs';
import { type AnalysisReport, analyzeCapture } from '../tfc/analysis/analyze-capture.js';
import { DEFAULT_DELAY_HORIZON_NS } from '../tfc/analysis/delay-measurement.js';
import { type Labels, parseLabels } from '../tfc/analysis/labels.js';
import { DEFAULT_TOP_FLOWS } from '../tfc/analysis/observer-metrics.js';
import { FEATURE_NAMES } from '../tfc/analysis/window-features.js';
import { renderReportHtml } from '../tfc/report-html.js';
import { type Command, integerOption, numberOption, UsageError } from './command.js';

const help = `Usage: pktveil analyze FILE [--labels FILE] [--before PLAIN [--delivered FILE2]] [--bin-ms N]
                      [--flows N] [--max-delay-ms N] [--anon-protocol P] [--json] [--report OUT.html]

What an observer of FILE learns from packet sizes and timing alone, and, given the capture before a TFC
transform, what the transform costs. One streaming pass; memory does not grow with the number of packets.

  --labels FILE     which class of traffic was on the wire when (adds "classifier"):
                    {"windowSeconds":1,"windows":[{"start":"<sec.frac>","end":"<sec.frac>","class":"voip"}]}
                    times as inspect prints them (seconds since the epoch, exact to the ns); windows are
                    [start, end) and must not overlap. Each window is cut into sub-windows of windowSeconds
                    (a shorter remainder is left out); each sub-window is a sample with the features
                    ${FEATURE_NAMES.join(', ')}.
                    A Gaussian naive Bayes classifier on the standardized features is scored by stratified
                    k-fold cross-validation (k = 5, fewer if a class has fewer samples; each class's samples
                    cut into k contiguous runs in time order, so no randomness).
  --before PLAIN    the capture before the TFC transform (adds "overhead" and "delay")
  --delivered FILE2 where PLAIN's packets came out (e.g. the decapsulated inner packets); without it they
                    are looked for in FILE itself (when FILE carries the same IP packets, e.g. after a pacer)
  --bin-ms N        volume bin width in ms (default: 1, 2, 10, 20, 100, 200 ms, 1 s ... the smallest that
                    covers the capture in at most 500 bins)
  --flows N         rows in the flow table (default ${DEFAULT_TOP_FLOWS})
  --max-delay-ms N  a PLAIN packet not delivered within this long counts as lost (default ${DEFAULT_DELAY_HORIZON_NS / 1e6})
  --anon-protocol P IP protocol number of the anonymity layer (default 253)
  --json            print ONE JSON object instead of the summary (keys below)
  --report OUT.html also write a self-contained HTML page with the charts (no external resources)
  -h, --help        this text

Definitions: size = frame length on the wire as captured (pcap original length, link header included);
gap = time between consecutive packets in capture order; standard deviations are population ones;
CV = stddev / mean; percentiles are nearest-rank, within 0.1% (exact for repeated values). A flow is directional: IP source and
destination and protocol, plus ports for TCP/UDP, the SPI for ESP (and NAT-T ESP), the current session ID
for the anonymity layer; non-IP frames group by EtherType.

JSON keys (times in seconds, timestamps as "<sec>.<ns>" strings):
  file, packets, bytes, durationSeconds, firstTs, lastTs
  sizes      mean, stddev, min, max, distinct, top [{size, packets, share}],
             histogram {binBytes: 32, bins [{lo, hi, count}]} (bins [lo, hi); the last, from 1536, open: hi null)
  timing     gaps between packets: count, meanSeconds, stddevSeconds, cv, minSeconds, maxSeconds,
             percentilesSeconds {p1, p5, p25, p50, p75, p95, p99}, histogram {bins} (1-2-5 bins from 1 us
             to 10 s), outOfOrder (negative gaps, left out)
  volume     binSeconds, start, bytes [per bin], packets [per bin]
  flows      count, untracked {packets, bytes} (beyond 65536 flows), top [{network, src, dst, protocol,
             srcPort, dstPort, spi, sid, etherType, packets, bytes, firstTs, lastTs, durationSeconds,
             size {mean, stddev, min, max}, gap {meanSeconds, stddevSeconds, cv, minSeconds, maxSeconds}}]
  classifier (with --labels) method, accuracy, chance (the accuracy of always guessing the majority class),
             chanceClass, classes, samplesPerClass, confusion [true][predicted] in classes' order, recall,
             folds, samples, emptyWindows, windowSeconds, features, perClass {class: {feature: {mean, stddev}}}
  overhead   (with --before) before and after {packets, bytes, firstTs, lastTs, durationSeconds,
             bitsPerSecond, packetsPerSecond}, each over its own span; bytesRatio, packetsRatio,
             extraBytes, extraPackets, extraBitsPerSecond
  delay      (with --before) PLAIN's IP packets matched to the delivered ones by their bytes, TTL and IP
             header checksum ignored (identical packets pair first with first): deliveredFile, matched,
             unmatchedBefore, unmatchedDelivered, notIpBefore, notIpDelivered, horizonSeconds, count,
             meanSeconds, stddevSeconds, cv, minSeconds, maxSeconds, percentilesSeconds, histogram`;

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'what an observer learns from sizes and timing (classifier accuracy with labels), and TFC costs',
  help,
  options: {
    labels: { type: 'string' },
    before: { type: 'string' },
    delivered: { type: 'string' },
    'bin-ms': { type: 'string' },
    flows: { type: 'string' },
    'max-delay-ms': { type: 'string' },
    'anon-protocol': { type: 'string' },
    json: { type: 'boolean' },
    report: { type: 'string' },
  },
  async run(values, positionals) {
    const [file, ...extra] = positionals;
    if (!file) throw new UsageError('missing FILE');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const before = values.before as string | undefined;
    const delivered = values.delivered as string | undefined;
    if (delivered !== undefined && before === undefined)
      throw new UsageError('--delivered needs --before (the packets to look for in it)');
    const binMs = numberOption(values, 'bin-ms');
    const binNs = binMs === undefined ? undefined : Math.round(binMs * 1e6);
    if (binNs !== undefined && binNs < 1) throw new UsageError(`--bin-ms ${binMs} is below a nanosecond`);
    const topFlows = integerOption(values, 'flows');
    if (topFlows === 0) throw new UsageError('--flows needs at least 1');
    const maxDelayMs = numberOption(values, 'max-delay-ms');
    const anonProtocol = integerOption(values, 'anon-protocol');
    if (anonProtocol !== undefined && anonProtocol > 255)
      throw new UsageError('--anon-protocol must be 0-255');
    const labelsFile = values.labels as string | undefined;
    const labels = labelsFile === undefined ? undefined : readLabels(labelsFile);
    const reportFile = values.report as string | undefined;

    const report = await analyzeCapture(file, {
      labels,
      before,
      delivered,
      volumeBinNs: binNs,
      topFlows,
      delayHorizonNs: maxDelayMs === undefined ? undefined : maxDelayMs * 1e6,
      anonProtocol,
    });
    if (
      labels &&
      report.packets > 0 &&
      report.classifier &&
      report.classifier.emptyWindows === report.classifier.samples
    )
      process.stderr.write(
        `pktveil analyze: warning: no packet of ${file} falls in a labelled window: are the label times ` +
          'seconds since the epoch, like the ts of pktveil inspect?\n',
      );
    if (reportFile !== undefined) {
      try {
        writeFileSync(reportFile, renderReportHtml(report));
      } catch (err) {
        throw new Error(`cannot write the report ${reportFile}: ${(err as Error).message}`);
      }
    }
    if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${humanSummary(report)}${reportFile ? `report: ${reportFile}\n` : ''}`);
    return 0;
  },
};

function readLabels(path: string): Labels {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`labels ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`labels ${path}: not JSON: ${(err as Error).message}`);
  }
  return parseLabels(json, path);
}

/** A few lines for a person at a terminal. */
export function humanSummary(r: AnalysisReport): string {
  const lines: string[] = [];
  const rate = r.durationSeconds > 0 ? `, ${bits((r.bytes * 8) / r.durationSeconds)}` : '';
  lines.push(
    `${r.file}: ${r.packets} packets, ${bytes(r.bytes)} over ${seconds(r.durationSeconds)}${rate}, ${r.flows.count} flows`,
  );
  const s = r.sizes;
  if (r.packets > 0) {
    const top = s.top
      .slice(0, 3)
      .map((t) => `${t.size} B (${(t.share * 100).toFixed(1)}%)`)
      .join(', ');
    lines.push(
      `sizes: mean ${s.mean!.toFixed(1)} B, sd ${s.stddev!.toFixed(1)}, min ${s.min}, max ${s.max}, ` +
        `${s.distinct} distinct; most common ${top}`,
    );
  }
  const t = r.timing;
  if (t.count > 0)
    lines.push(
      `gaps: mean ${seconds(t.meanSeconds!)}, CV ${t.cv!.toFixed(2)}, p50 ${seconds(t.percentilesSeconds!.p50!)}, ` +
        `p99 ${seconds(t.percentilesSeconds!.p99!)}, max ${seconds(t.maxSeconds!)}` +
        (t.outOfOrder ? `; ${t.outOfOrder} out of order` : ''),
    );
  if (r.volume.bytes.length > 0)
    lines.push(
      `volume: ${r.volume.bytes.length} bins of ${seconds(r.volume.binSeconds)}, ` +
        `peak ${bytes(Math.max(...r.volume.bytes))} per bin`,
    );
  if (r.flows.top.length > 0) {
    lines.push('top flows by bytes:');
    for (const f of r.flows.top.slice(0, 5)) {
      const ends =
        f.network === 'ipv4' || f.network === 'ipv6'
          ? `${f.src}${f.srcPort !== undefined ? `:${f.srcPort}` : ''} > ${f.dst}${f.dstPort !== undefined ? `:${f.dstPort}` : ''} proto ${f.protocol}`
          : `${f.network}${f.etherType !== undefined ? ` ethertype 0x${f.etherType.toString(16)}` : ''}`;
      const extra = f.spi ? ` spi ${f.spi}` : f.sid ? ` sid ${f.sid}` : '';
      lines.push(`  ${ends}${extra}: ${f.packets} packets, ${bytes(f.bytes)}`);
    }
  }
  const c = r.classifier;
  if (c)
    lines.push(
      `classifier: accuracy ${c.accuracy.toFixed(3)} vs chance ${c.chance.toFixed(3)} (always '${c.chanceClass}'), ` +
        `${c.samples} windows of ${c.windowSeconds} s, ${c.folds}-fold cross-validation`,
    );
  const o = r.overhead;
  if (o)
    lines.push(
      `overhead: ${ratio(o.bytesRatio)} bytes, ${ratio(o.packetsRatio)} packets` +
        (o.extraBitsPerSecond !== null
          ? `, ${o.extraBitsPerSecond >= 0 ? '+' : ''}${bits(o.extraBitsPerSecond)}`
          : ''),
    );
  const d = r.delay;
  if (d) {
    const unmatched = `unmatched: ${d.unmatchedBefore} before, ${d.unmatchedDelivered} delivered`;
    if (d.matched === 0)
      lines.push(
        `delay: no packet of the before capture found in ${d.deliveredFile} (${unmatched}); if FILE is ` +
          'encrypted or encapsulated, give --delivered with the packets as they came out',
      );
    else
      lines.push(
        `delay: ${d.matched} matched (${unmatched}); mean ${seconds(d.meanSeconds!)}, ` +
          `p50 ${seconds(d.percentilesSeconds!.p50!)}, p99 ${seconds(d.percentilesSeconds!.p99!)}, max ${seconds(d.maxSeconds!)}`,
      );
  }
  return `${lines.join('\n')}\n`;
}

function seconds(s: number): string {
  if (s === 0) return '0 s';
  if (s < 1e-6) return `${(s * 1e9).toPrecision(3)} ns`;
  if (s < 1e-3) return `${(s * 1e6).toPrecision(3)} us`;
  if (s < 1) return `${(s * 1e3).toPrecision(3)} ms`;
  return `${s.toPrecision(4)} s`;
}

function bytes(n: number): string {
  if (n < 1e4) return `${n} B`;
  if (n < 1e7) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e10) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(1)} GB`;
}

function bits(perSecond: number): string {
  const a = Math.abs(perSecond);
  if (a < 1e3) return `${perSecond.toFixed(0)} bit/s`;
  if (a < 1e6) return `${(perSecond / 1e3).toFixed(1)} kbit/s`;
  if (a < 1e9) return `${(perSecond / 1e6).toFixed(2)} Mbit/s`;
  return `${(perSecond / 1e9).toFixed(2)} Gbit/s`;
}

function ratio(x: number | null): string {
  return x === null ? '-' : `${x.toFixed(3)}x`;
}
