/**
 * What an observer of a LIVES capture sees, by `pktveil analyze` as a library call (analyzeCapture) with
 * the traffic labels: sizes, rate and gaps, and how well its classifier tells the labelled classes apart,
 * next to chance. The scenario's JSON carries this summary; the full report is analyze's.
 */
import { analyzeCapture } from '../../src/tfc/analysis/analyze-capture.js';
import type { Labels } from '../../src/tfc/analysis/labels.js';

export interface WireSummary {
  packets: number;
  /** Frame bytes. */
  bytes: number;
  distinctSizes: number;
  /** The most common frame sizes, most common first. */
  sizes: number[];
  /** (packets − 1) / (last − first). */
  achievedRateHz: number;
  /** Gaps between consecutive packets: stddev / mean. */
  iatCv: number;
  gapP50Us: number;
  gapP99Us: number;
  gapMaxUs: number;
}

export interface ClassifierSummary {
  accuracy: number;
  chance: number;
  classes: string[];
  samples: number;
  recall: Record<string, number>;
  /** confusion[true][predicted], in the order of `classes`. */
  confusion: number[][];
}

export interface Observation {
  wire: WireSummary;
  classifier: ClassifierSummary;
}

export async function observe(file: string, labels: Labels): Promise<Observation> {
  const report = await analyzeCapture(file, { labels });
  const c = report.classifier!;
  const gaps = report.timing;
  const us = (seconds: number | null | undefined) => (seconds ?? 0) * 1e6;
  return {
    wire: {
      packets: report.packets,
      bytes: report.bytes,
      distinctSizes: report.sizes.distinct,
      sizes: report.sizes.top.map((s) => s.size),
      achievedRateHz: report.durationSeconds > 0 ? (report.packets - 1) / report.durationSeconds : 0,
      iatCv: gaps.cv ?? 0,
      gapP50Us: us(gaps.percentilesSeconds?.p50),
      gapP99Us: us(gaps.percentilesSeconds?.p99),
      gapMaxUs: us(gaps.maxSeconds),
    },
    classifier: {
      accuracy: c.accuracy,
      chance: c.chance,
      classes: c.classes,
      samples: c.samples,
      recall: c.recall,
      confusion: c.confusion,
    },
  };
}
