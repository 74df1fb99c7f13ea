/**
 * Traffic-flow confidentiality (DESIGN.md §8): IP-TFS (RFC 9347), pacing, constant-rate sending, padding,
 * dummies, delay, and what an observer still learns (metrics, classifier, report).
 */
export {
  type AnalysisReport,
  type AnalyzeOptions,
  analyzeCapture,
} from './analysis/analyze-capture.js';
export { type Labels, type LabelsJson, parseLabels, parseTimestamp } from './analysis/labels.js';
export { ObserverMetrics, type ObserverReport } from './analysis/observer-metrics.js';
export {
  ConstantRateStage,
  type ConstantRateStageOptions,
} from './constant-rate-stage.js';
export { DelayStage, type DelayStageOptions, type Jitter } from './delay.js';
export {
  constantSchedule,
  DUMMY_IP_PROTOCOL,
  type DummyInjectionOptions,
  DummyInjectionStage,
  type DummySchedule,
  type DummySource,
  Ipv4DummySource,
  type Ipv4DummySourceOptions,
  ipv4DummySource,
  poissonSchedule,
} from './dummy.js';
export {
  IPTFS_HEADROOM,
  type IptfsEmit,
  IptfsReceiver,
  type IptfsReceiverOptions,
  type IptfsReceiverStats,
} from './iptfs-receiver.js';
export { IptfsSender, type IptfsSenderOptions, type IptfsSenderStats } from './iptfs-sender.js';
export {
  aggfragPayloadSize,
  IptfsDecapStage,
  type IptfsDecapStageOptions,
  IptfsEncapStage,
  type IptfsEncapStageOptions,
  type IptfsSendMode,
} from './iptfs-stages.js';
export { Pacer, type PacerOptions, type PacerRateOptions, type PacerStats } from './pacer.js';
export {
  fixedSize,
  type PaddingPolicy,
  PaddingStage,
  type PaddingStageOptions,
  type RandomPaddingOptions,
  randomPadding,
  type SizeBucketsOptions,
  sizeBuckets,
} from './padding.js';
export { cryptoRandom, exponential, type Random, seededRandom } from './random.js';
export { renderReportHtml } from './report-html.js';
export { nearestRank, SampleReservoir, type SampleSummary } from './sample-reservoir.js';
export { crossValidate, fitNaiveBayes } from './traffic-classifier.js';
export {
  asConstantRate,
  generateTraffic,
  type PatternName,
  type TrafficTurn,
  takeTurns,
  writeTraffic,
} from './traffic-patterns.js';
