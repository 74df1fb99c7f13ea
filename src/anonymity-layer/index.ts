/**
 * The broadcast anonymity layer: the broadcast source rewrite, keys, sealing, sessions with SID rotation,
 * server listen SIDs, the host receiver.
 */

export { type AgentConfig, ConfigError, parseAgentConfig } from './agent-config.js';
export { type LiveDelivery, LiveHostAgent, LiveResponderAgent } from './agent-live.js';
export { AGENT_KEY_CONTEXT, agentKeys, type SidLogEntry } from './agent-parts.js';
export {
  BroadcastReplyStage,
  type BroadcastReplyStageOptions,
  BroadcastSourceStage,
  type BroadcastSourceStageOptions,
  IPV4_DESTINATION_FIELD,
  IPV4_SOURCE_FIELD,
  isIcmpError,
  optionsCarryAddresses,
  pseudoHeaderChecksumOffset,
  type RewriteResult,
  rewriteIcmpQuotedAddress,
  rewriteIpv4Destination,
  rewriteIpv4Source,
} from './broadcast-rewrite.js';
export { BroadcastSubnet } from './broadcast-subnet.js';
export { AnonHostAgent, type AnonHostAgentOptions, type AnonHostPeer } from './host-agent.js';
export {
  ANON_MIN_SECRET_LENGTH,
  ANON_NONCE_SALT_LENGTH,
  type AnonAead,
  type AnonDirectionKeys,
  type AnonKeyOptions,
  type AnonKeys,
  type AnonRole,
  deriveAnonKeys,
  keysFor,
} from './keys.js';
export { AnonListener, type AnonListenerOptions } from './listener.js';
export {
  type AnonDelivery,
  type AnonEndpointOptions,
  type AnonReceiveDrop,
  AnonReceiver,
  type AnonReceiverOptions,
} from './receiver.js';
export {
  AnonResponderAgent,
  type AnonResponderAgentOptions,
  type AnonResponderPeer,
} from './responder-agent.js';
export {
  ANON_HEADROOM,
  ANON_OVERHEAD,
  ANON_TAILROOM,
  type AnonCipherOptions,
  type AnonOpenDrop,
  AnonOpener,
  type AnonOpenerOptions,
  AnonSealer,
  type AnonSealerOptions,
  type AnonSealRefusal,
} from './seal.js';
export {
  type AnonContactPoint,
  type AnonInitiatorOptions,
  type AnonResponderOptions,
  type AnonSendRefusal,
  AnonSession,
  type AnonSessionDrop,
  type AnonSessionEvent,
  type AnonSessionOptions,
  type AnonSessionRole,
  type AnonSessionState,
} from './session.js';
export { SessionNat } from './session-nat.js';
export {
  checkSid,
  type RandomSource,
  type Sid,
  SidGenerator,
  sidFromBytes,
  sidHex,
  sidHi,
  sidLo,
  sidOf,
} from './sid.js';
