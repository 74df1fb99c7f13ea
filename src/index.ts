/** pktveil: packet processing for privacy on the wire. Subpaths: pktveil/codec, pktveil/esp, pktveil/io, pktveil/stages. */
export * from './codec/index.js';
export * from './esp/index.js';
export * from './io/index.js';
export * from './packet.js';
export * from './stages/index.js';
