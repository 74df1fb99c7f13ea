/**
 * `pktveil analyze` as a library call: one streaming pass over a capture computes what an observer learns
 * (observer-metrics.ts), the classifier's accuracy when labels say what was sent when
 * (window-features.ts, traffic-classifier.ts), and, given the capture before the TFC transform, what the
 * transform costs (overhead.ts, delay-measurement.ts). The result is the JSON object `analyze --json` prints.
 */
import { PacketParser } from '../../codec/parser.js';
import { LayerRegistry } from '../../codec/registry.js';
import { readCapture } from '../../io/capture-file.js';
import { wireLength } from '../../packet.js';
import { type CrossValidation, crossValidate, summarizeByClass } from '../traffic-classifier.js';
import { DEFAULT_DELAY_HORIZON_NS, DelayMeasurement, type DelayReport } from './delay-measurement.js';
import { readError } from './input-error.js';
import type { Labels } from './labels.js';
import { ObserverMetrics, type ObserverMetricsOptions, type ObserverReport } from './observer-metrics.js';
import { compareTotals, type OverheadReport, TrafficTotals } from './overhead.js';
import { checkSubWindowCount, WindowFeatures } from './window-features.js';

export interface AnalyzeOptions extends ObserverMetricsOptions {
  /** Classes of traffic over time: adds `classifier`. */
  labels?: Labels;
  /** The capture before the TFC transform: adds `overhead` and `delay`. */
  before?: string;
  /** Where the packets of `before` came out (e.g. decapsulated); default: the analyzed capture itself. */
  delivered?: string;
  /** How long a sent packet may wait for delivery before it counts as lost (default 10 s). */
  delayHorizonNs?: number;
  /** IP protocol number of the anonymity layer (default 253). */
  anonProtocol?: number;
}

export interface ClassifierReport extends CrossValidation {
  windowSeconds: number;
  features: readonly string[];
  /** Sub-windows without a packet (silence, or labels outside the capture). */
  emptyWindows: number;
  /** Per class and feature, mean and standard deviation over its sub-windows (features' own units). */
  perClass: Record<string, Record<string, { mean: number; stddev: number }>>;
}

export interface AnalysisReport extends ObserverReport {
  file: string;
  classifier?: ClassifierReport;
  overhead?: OverheadReport;
  delay?: DelayReport;
}

export async function analyzeCapture(file: string, options: AnalyzeOptions = {}): Promise<AnalysisReport> {
  if (options.delivered !== undefined && options.before === undefined)
    throw new Error('a delivered capture needs the capture before the transform (before) to match against');
  const registry = LayerRegistry.defaults(options.anonProtocol);
  const parser = new PacketParser(registry);
  const metrics = new ObserverMetrics(options);
  const totals = new TrafficTotals();
  const labels = options.labels;
  const horizon = options.delayHorizonNs ?? DEFAULT_DELAY_HORIZON_NS;
  const delay = options.before
    ? new DelayMeasurement(options.before, options.delivered ?? file, registry, horizon)
    : null;
  const matchHere = delay !== null && options.delivered === undefined;
  let windows: WindowFeatures | null = null;
  let t0: bigint | null = null;

  if (labels) checkSubWindowCount(labels);
  try {
    for await (const pkt of readCapture(file)) {
      if (t0 === null) {
        t0 = pkt.ts;
        if (labels) windows = new WindowFeatures(labels, t0);
      }
      const rel = Number(pkt.ts - t0);
      const size = wireLength(pkt);
      parser.parsePacket(pkt);
      totals.add(pkt.ts, size);
      metrics.add(parser, rel, size);
      (windows as WindowFeatures | null)?.add(rel, size);
      if (matchHere) await delay.deliver(pkt.ts, parser);
    }
  } catch (err) {
    throw readError('capture', file, err);
  }

  const report: AnalysisReport = { file, ...metrics.report(t0) };
  if (labels) {
    // An empty capture still has its labelled windows (all empty).
    const w = windows ?? new WindowFeatures(labels, labels.windows[0]!.start);
    report.classifier = classify(w, labels);
  }
  if (delay) {
    if (options.delivered !== undefined) {
      const deliveredParser = new PacketParser(registry);
      try {
        for await (const pkt of readCapture(options.delivered)) {
          deliveredParser.parsePacket(pkt);
          await delay.deliver(pkt.ts, deliveredParser);
        }
      } catch (err) {
        throw readError('delivered capture', options.delivered, err);
      }
    }
    report.delay = await delay.finish();
    report.overhead = compareTotals(delay.sentTotals, totals);
  }
  return report;
}

function classify(windows: WindowFeatures, labels: Labels): ClassifierReport {
  const samples = windows.samples();
  const cv = crossValidate(samples.rows, samples.classes);
  return {
    ...cv,
    windowSeconds: Number(labels.windowNs) / 1e9,
    features: samples.features,
    emptyWindows: samples.empty,
    perClass: summarizeByClass(samples.rows, samples.classes, samples.features),
  };
}
