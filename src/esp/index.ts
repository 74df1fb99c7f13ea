/** ESP (RFC 4303): security associations, suites and backends, encapsulation, decapsulation, stages. */
export * from './crypto/index.js';
export { type DecapDrop, type DecapInfo, decapsulate, newDecapInfo } from './decapsulate.js';
export { type EncapDrop, encapsulate, encapsulateAggfrag, encapsulateDummy } from './encapsulate.js';
export {
  EspDecapStage,
  type EspDecapStageOptions,
  EspEncapStage,
  type EspEncapStageOptions,
} from './esp-stages.js';
export { NATT_KEEPALIVE_LENGTH, writeNatKeepalive } from './natt-keepalive.js';
export { type ReplayVerdict, ReplayWindow } from './replay-window.js';
export {
  type DfPolicy,
  type EspMode,
  hexSpi,
  type LifetimeLimit,
  type NattConfig,
  type SaConfig,
  type SaEvent,
  SecurityAssociation,
  type TunnelConfig,
} from './sa.js';
export { parseSaJson, readSaFile } from './sa-file.js';
export { SecurityAssociationDatabase } from './sad.js';
export { isSuiteName, SUITES, type Suite, type SuiteName } from './suites.js';
export { TelescopeEncapsulator } from './telescope.js';
