/** Traffic-flow confidentiality (DESIGN.md §8): pacing, constant-rate sending, padding, dummies, delay. */
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
export { nearestRank, SampleReservoir, type SampleSummary } from './sample-reservoir.js';
