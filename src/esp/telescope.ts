import { type EncapDrop, encapsulate } from './encapsulate.js';
import type { SecurityAssociation } from './sa.js';

/** Room for one IPv4 packet plus ESP's header, IV, padding and ICV. */
const LAYER_BUFFER_BYTES = 65_535 + 512;

/**
 * Wraps a packet in several SAs in one call, innermost first: a "telescope" whose outermost layer is for
 * the first overlay node, which removes it with an ordinary decapsulation and finds an ESP packet for the
 * next (IPpriv). Two buffers are reused alternately, so the chain allocates nothing per packet.
 */
export class TelescopeEncapsulator {
  private readonly buffers: [Buffer, Buffer];
  /** Where the last result starts in `result`: leaves `headroom` bytes in front for a link header. */
  readonly headroom: number;
  /** Buffer holding the last result. */
  result: Buffer;

  constructor(
    readonly sas: readonly SecurityAssociation[],
    headroom = 64,
  ) {
    if (sas.length === 0) throw new Error('a telescope needs at least one SA');
    this.headroom = headroom;
    this.buffers = [Buffer.alloc(headroom + LAYER_BUFFER_BYTES), Buffer.alloc(headroom + LAYER_BUFFER_BYTES)];
    this.result = this.buffers[0];
  }

  /**
   * Encapsulates the IP packet src[off, off+len) in every SA; returns the length of the result at
   * `result[headroom]`, or why a layer refused (then no SA after it used a sequence number). `tfcPadTo`
   * pads the original packet in the innermost SA (tunnel mode; default that SA's own setting).
   */
  wrap(src: Uint8Array, off: number, len: number, tfcPadTo = this.sas[0]!.tfcPadTo): number | EncapDrop {
    let from = src;
    let fromOff = off;
    let fromLen = len;
    for (let i = 0; i < this.sas.length; i++) {
      const out = this.buffers[i & 1]!;
      const sa = this.sas[i]!;
      const n = encapsulate(sa, from, fromOff, fromLen, out, this.headroom, i === 0 ? tfcPadTo : sa.tfcPadTo);
      if (typeof n === 'string') return n;
      from = out;
      fromOff = this.headroom;
      fromLen = n;
      this.result = out;
    }
    return fromLen;
  }
}
