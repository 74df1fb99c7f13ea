/**
 * Sealing and opening anonymity-layer packets (DESIGN.md §6), one key and one direction per object:
 *
 *   current SID (8) | sequence (8) | sealed{ next SID (8) | protocol (1) | transport } | tag (16)
 *
 * AEAD: ChaCha20-Poly1305 (default) or AES-GCM with a 16-byte tag, on the ESP crypto backends (one
 * implementation: `keySuite` picks the fastest backend, or the one named). AAD = current SID ‖ sequence.
 * Nonce (12 bytes) = the key material's 4-byte salt ‖ the 64-bit sequence number big-endian — ESP's
 * salt ‖ IV with the sequence as the IV (RFC 4106 §4, RFC 7634 §2). The sequence counts per key and per
 * direction from 1 and never repeats or wraps: once the last number is used the sealer refuses to seal,
 * and only new keys (a new sealer) go on, so a nonce is never used twice under a key.
 *
 * The opener checks the sequence against its replay window before the tag, and moves the window only after
 * the tag verified: a forged packet costs one tag check and changes nothing.
 */

import {
  ANON_CLEAR_LENGTH,
  ANON_MIN_LENGTH,
  ANON_SEALED_HEADER_LENGTH,
  ANON_TAG_LENGTH,
} from '../codec/anon.js';
import type { BackendName } from '../esp/crypto/backend.js';
import { keySuite, type SuiteKeys } from '../esp/crypto/select.js';
import { readU32, view, writeU32 } from '../esp/esp-format.js';
import { ReplayWindow } from '../esp/replay-window.js';
import { SUITES } from '../esp/suites.js';
import { ViewCache } from '../esp/view-cache.js';
import type { AnonAead } from './keys.js';

/** Bytes the sealer writes in front of the transport bytes: clear part and sealed header (25). */
export const ANON_HEADROOM = ANON_CLEAR_LENGTH + ANON_SEALED_HEADER_LENGTH;
/** Bytes the sealer writes after the transport bytes: the tag (16). */
export const ANON_TAILROOM = ANON_TAG_LENGTH;
/** Everything the layer adds to a transport segment (41). */
export const ANON_OVERHEAD = ANON_MIN_LENGTH;

/** Why sealing was refused: the key's sequence numbers are used up; seal with new keys. */
export type AnonSealRefusal = 'sequence-exhausted';

/** Why an opener dropped a packet. */
export type AnonOpenDrop =
  /** Shorter than clear part + sealed header + tag (41 bytes). */
  | 'truncated'
  /** Sequence number already accepted (a duplicate or a replay). */
  | 'replayed'
  /** Sequence number 0, or left of the replay window. */
  | 'too-old'
  /** The tag does not verify: forged, corrupted, or sealed under another key. */
  | 'tag';

export interface AnonCipherOptions {
  /** AEAD key ‖ 4-byte nonce salt: 36 bytes for ChaCha20-Poly1305, 20/28/36 for AES-GCM (keys.ts). */
  keyMaterial: Uint8Array;
  /** Default 'chacha20-poly1305'. */
  aead?: AnonAead;
  /** Force a crypto backend; by default the fastest available one for the AEAD. */
  backend?: BackendName;
}

export interface AnonSealerOptions extends AnonCipherOptions {
  /** Sequence number of the first packet (default 1). */
  firstSequence?: bigint;
  /** The last sequence number this key may seal (default 2^64 − 1); past it seal() refuses. */
  lastSequence?: bigint;
}

export interface AnonOpenerOptions extends AnonCipherOptions {
  /** Anti-replay window in packets, 32 … 65536 (default 64). */
  replayWindow?: number;
}

const U64_MAX = (1n << 64n) - 1n;
const MAX_U32 = 0xffffffff;

/** Keys the AEAD once, with the configuration errors named after the anonymity layer. */
function keyAead(options: AnonCipherOptions, who: string): SuiteKeys {
  const aead = options.aead ?? 'chacha20-poly1305';
  if (aead !== 'chacha20-poly1305' && aead !== 'aes-gcm')
    throw new Error(`${who}: aead "${aead}" is not chacha20-poly1305 or aes-gcm`);
  const suite = SUITES[aead === 'aes-gcm' ? 'aes-gcm-16' : 'chacha20-poly1305'];
  try {
    return keySuite(suite, options.keyMaterial, new Uint8Array(0), options.backend);
  } catch (err) {
    throw new Error(`${who} (${aead}): keyMaterial: ${(err as Error).message}`);
  }
}

function checkSequence(who: string, what: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 1n || v > U64_MAX)
    throw new Error(`${who}: ${what} must be a bigint from 1 to 2^64 − 1, got ${String(v)}`);
  return v;
}

/** Seals the packets of one direction under one key; the sequence counter lives here. */
export class AnonSealer {
  readonly aead: AnonAead;
  /** The crypto backend the key lives on. */
  readonly backend: BackendName;
  /** Sequence number of the next packet, as (hi, lo). */
  seqHi: number;
  seqLo: number;
  private readonly lastHi: number;
  private readonly lastLo: number;
  private done = false;
  private readonly keys: SuiteKeys;
  private readonly nonce = new Uint8Array(12);
  private readonly aad = new Uint8Array(ANON_CLEAR_LENGTH);
  /** Views of the sealed part and tag in the caller's buffer, reused while it seals into one buffer. */
  private readonly views = new ViewCache();

  constructor(options: AnonSealerOptions) {
    this.aead = options.aead ?? 'chacha20-poly1305';
    this.keys = keyAead(options, 'anonymity-layer sealer');
    this.backend = this.keys.backend;
    this.nonce.set(this.keys.salt, 0);
    const first = checkSequence('anonymity-layer sealer', 'firstSequence', options.firstSequence ?? 1n);
    const last = checkSequence('anonymity-layer sealer', 'lastSequence', options.lastSequence ?? U64_MAX);
    if (last < first)
      throw new Error(`anonymity-layer sealer: lastSequence ${last} is below firstSequence ${first}`);
    this.seqHi = Number(first >> 32n);
    this.seqLo = Number(first & 0xffffffffn);
    this.lastHi = Number(last >> 32n);
    this.lastLo = Number(last & 0xffffffffn);
  }

  /** True once the last sequence number was used: seal() refuses until new keys replace this sealer. */
  get exhausted(): boolean {
    return this.done;
  }

  /** The next sequence number as a bigint (for display and tests). */
  get nextSequence(): bigint {
    return (BigInt(this.seqHi) << 32n) | BigInt(this.seqLo);
  }

  /**
   * Seals one packet in place. The caller has put the transport bytes at
   * buf[off + ANON_HEADROOM, off + ANON_HEADROOM + transportLength); seal writes the clear part and the
   * sealed header in front (25 bytes of headroom) and the tag behind (16 bytes of tailroom), encrypting
   * next SID, protocol and transport. Returns the packet length (transportLength + 41), or
   * 'sequence-exhausted' without touching buf. A buffer without that room is a programmer error: it throws.
   */
  seal(
    buf: Uint8Array,
    off: number,
    transportLength: number,
    protocol: number,
    currentHi: number,
    currentLo: number,
    nextHi: number,
    nextLo: number,
  ): number | AnonSealRefusal {
    if (this.done) return 'sequence-exhausted';
    const end = off + ANON_OVERHEAD + transportLength;
    if (!(off >= 0 && transportLength >= 0 && end <= buf.length))
      throw new RangeError(
        `anonymity-layer seal: ${transportLength} transport bytes at offset ${off} need ${ANON_OVERHEAD} bytes ` +
          `of head- and tailroom, ${end} in all; the buffer has ${buf.length}`,
      );
    if ((protocol & 0xff) !== protocol)
      throw new RangeError(`anonymity-layer seal: protocol ${protocol} is not 0..255`);
    const seqHi = this.seqHi;
    const seqLo = this.seqLo;
    writeU32(buf, off, currentHi);
    writeU32(buf, off + 4, currentLo);
    writeU32(buf, off + 8, seqHi);
    writeU32(buf, off + 12, seqLo);
    writeU32(buf, off + 16, nextHi);
    writeU32(buf, off + 20, nextLo);
    buf[off + 24] = protocol;
    const nonce = this.nonce;
    writeU32(nonce, 4, seqHi);
    writeU32(nonce, 8, seqLo);
    const aad = this.aad;
    for (let i = 0; i < ANON_CLEAR_LENGTH; i++) aad[i] = buf[off + i]!;
    const tagOff = end - ANON_TAG_LENGTH;
    const views = this.views;
    this.keys.aead!.seal(
      nonce,
      aad,
      views.view(buf, off + ANON_CLEAR_LENGTH, tagOff - off - ANON_CLEAR_LENGTH),
      views.view(buf, tagOff, ANON_TAG_LENGTH),
    );
    if (seqHi === this.lastHi && seqLo === this.lastLo) this.done = true;
    else if (seqLo === MAX_U32) {
      this.seqHi = seqHi + 1;
      this.seqLo = 0;
    } else this.seqLo = seqLo + 1;
    return end - off;
  }
}

/** Opens the packets of one direction under one key, with that direction's replay window. */
export class AnonOpener {
  readonly aead: AnonAead;
  readonly backend: BackendName;
  readonly window: ReplayWindow;
  /** Sequence number of the last packet opened, as (hi, lo). */
  seqHi = 0;
  seqLo = 0;
  private readonly keys: SuiteKeys;
  private readonly nonce = new Uint8Array(12);
  private readonly aad = new Uint8Array(ANON_CLEAR_LENGTH);
  /** Views of the plaintext and tag in `out`, reused while the caller opens into one buffer. */
  private readonly views = new ViewCache();

  constructor(options: AnonOpenerOptions) {
    this.aead = options.aead ?? 'chacha20-poly1305';
    this.keys = keyAead(options, 'anonymity-layer opener');
    this.backend = this.keys.backend;
    this.nonce.set(this.keys.salt, 0);
    try {
      this.window = new ReplayWindow(options.replayWindow ?? 64, true);
    } catch (err) {
      throw new Error(`anonymity-layer opener: replayWindow: ${(err as Error).message}`);
    }
  }

  /**
   * Judges the sequence number of the packet at src[off, off + len) against the replay window without
   * changing anything (the first step of open(), for callers that try several openers on one packet).
   */
  check(src: Uint8Array, off: number, len: number): 'ok' | AnonOpenDrop {
    if (len < ANON_MIN_LENGTH) return 'truncated';
    return this.window.checkExact(readU32(src, off + 8), readU32(src, off + 12));
  }

  /**
   * True when the packet's tag verifies under this key, whatever the replay window says; nothing changes
   * except `scratch`, which receives the plaintext (or unusable bytes on failure). For telling a replay
   * from a forgery where several keys could own a packet (a listen SID's waiting sessions).
   */
  authentic(src: Uint8Array, off: number, len: number, scratch: Uint8Array, scratchOff: number): boolean {
    if (len < ANON_MIN_LENGTH) return false;
    return this.decrypt(src, off, len, scratch, scratchOff, readU32(src, off + 8), readU32(src, off + 12));
  }

  /**
   * Opens the anonymity-layer packet at src[off, off + len) (clear part to tag). The plaintext — next SID
   * (8) | protocol (1) | transport — goes to out[outOff, outOff + len − 32) and its length is returned; or
   * the reason the packet was dropped. The tag is checked in the 16 bytes behind it, which `out` needs room
   * for. Order: length, replay check, tag, then the window moves. src is never modified, except when out
   * is src and outOff is off + 16 (decrypting in place; a packet that fails is then lost, libsodium zeroes
   * it). Never throws on packet bytes; `out` too small for the packet is a programmer error and throws.
   */
  open(src: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): number | AnonOpenDrop {
    if (len < ANON_MIN_LENGTH) return 'truncated';
    const seqHi = readU32(src, off + 8);
    const seqLo = readU32(src, off + 12);
    const verdict = this.window.checkExact(seqHi, seqLo);
    if (verdict !== 'ok') return verdict;
    if (!this.decrypt(src, off, len, out, outOff, seqHi, seqLo)) return 'tag';
    this.window.update(seqHi, seqLo);
    this.seqHi = seqHi;
    this.seqLo = seqLo;
    return len - ANON_CLEAR_LENGTH - ANON_TAG_LENGTH;
  }

  /** Copies sealed part and tag to out[outOff] (unless in place) and decrypts there if the tag verifies. */
  private decrypt(
    src: Uint8Array,
    off: number,
    len: number,
    out: Uint8Array,
    outOff: number,
    seqHi: number,
    seqLo: number,
  ): boolean {
    const plainLength = len - ANON_CLEAR_LENGTH - ANON_TAG_LENGTH;
    if (outOff < 0 || outOff + plainLength + ANON_TAG_LENGTH > out.length)
      throw new RangeError(
        `anonymity-layer open: ${plainLength} plaintext bytes and the ${ANON_TAG_LENGTH}-byte tag behind them at offset ${outOff} do not fit a ${out.length}-byte buffer`,
      );
    const sealedOff = off + ANON_CLEAR_LENGTH;
    // Sealed part and tag go to `out` in one copy; the AEAD then takes views of `out`, which are reused.
    if (out !== src || outOff !== sealedOff) out.set(view(src, sealedOff, off + len), outOff);
    const nonce = this.nonce;
    writeU32(nonce, 4, seqHi);
    writeU32(nonce, 8, seqLo);
    const aad = this.aad;
    for (let i = 0; i < ANON_CLEAR_LENGTH; i++) aad[i] = src[off + i]!;
    const views = this.views;
    const tag = views.view(out, outOff + plainLength, ANON_TAG_LENGTH);
    return this.keys.aead!.open(nonce, aad, views.view(out, outOff, plainLength), tag);
  }
}
