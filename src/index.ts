/**
 * pktveil: packet processing for privacy on the wire. Subpaths: pktveil/codec, pktveil/esp, pktveil/io,
 * pktveil/stages, pktveil/tfc, pktveil/anonymity-layer, pktveil/filter.
 */
export * from './anonymity-layer/index.js';
export * from './codec/index.js';
export * from './esp/index.js';
export * from './filter/index.js';
export * from './io/index.js';
export * from './packet.js';
export * from './stages/index.js';
export * from './tfc/index.js';
