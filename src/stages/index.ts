export { filterStage, mapStage, passThrough } from './basic-stages.js';
export { type Clock, RealClock, realClock, VirtualClock } from './clock.js';
export { type Drainable, isDrainable, Pipeline, pipeline } from './pipeline.js';
export {
  DEFAULT_REAL_TICK_INTERVAL_NS,
  type RunStageOptions,
  type RunStageResult,
  runStage,
  Ticker,
  type TimeMode,
  timeSetup,
} from './run.js';
export { countDrop, type Emit, emptyStats, type Stage, type StageStats } from './stage.js';
export {
  type StageStreamOptions,
  type StageTransformOptions,
  stageTransform,
  throughStage,
} from './streams.js';
