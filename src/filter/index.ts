/**
 * Host- and router-side filters of the broadcast scheme: the session-ID table the anonymity layer's receiver
 * decides on, the basic-mode tuple matcher, the kernel prefilter (libpcap expression) builder, and the
 * router's broadcast guard.
 */
export { type BroadcastGuardOptions, BroadcastGuardStage } from './broadcast-guard.js';
export {
  BPF_MAX_INSTRUCTIONS,
  buildPrefilter,
  PREFILTER_INSTRUCTION_BUDGET,
  type Prefilter,
  type PrefilterFallback,
  type PrefilterOptions,
  type SidHalves,
} from './prefilter.js';
export { SessionTable, type SessionTableOptions, type SidRegistry } from './session-table.js';
export {
  type ConversationTuple,
  describeTuple,
  OTHER_HOST,
  PORT_PROTOCOLS,
  TUPLE_AMBIGUOUS,
  TUPLE_NO_MATCH,
  TUPLE_UNREADABLE,
  type TupleConflict,
  TupleConflictError,
  TupleMatcher,
  type TupleMatcherEvents,
  type TupleMatcherOptions,
  type TupleMatcherStats,
} from './tuple-matcher.js';
