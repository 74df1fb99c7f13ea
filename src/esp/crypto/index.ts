/** The ESP crypto backends (libsodium, node:crypto, pure JavaScript) and how an SA picks one. */
export type { AeadKey, BackendName, CbcKey, CryptoBackend, MacKey } from './backend.js';
export { nobleBackend } from './noble-backend.js';
export { nodeBackend } from './node-backend.js';
export { availableBackends, getBackend, keySuite, type SuiteKeys } from './select.js';
export { loadSodiumBackend } from './sodium-backend.js';
