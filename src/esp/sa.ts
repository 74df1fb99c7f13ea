import { randomFillSync } from 'node:crypto';
import { parseIpv4 } from '../codec/ip-address.js';
import type { BackendName } from './crypto/backend.js';
import { keySuite, type SuiteKeys } from './crypto/select.js';
import { writeU32 } from './esp-format.js';
import { ReplayWindow } from './replay-window.js';
import { isSuiteName, SUITES, type Suite, type SuiteName } from './suites.js';
import { ViewCache } from './view-cache.js';

export type EspMode = 'tunnel' | 'transport' | 'iptfs';
/** What the outer header's DF bit becomes in tunnel mode: copied from the inner IPv4 header, set or clear. */
export type DfPolicy = 'copy' | 'set' | 'clear';

export interface TunnelConfig {
  /** Outer IPv4 source and destination. */
  src: string;
  dst: string;
  /** Outer TTL (default 64). */
  ttl?: number;
  /** Default 'copy' (RFC 4301 §8.1). */
  df?: DfPolicy;
}

export interface NattConfig {
  srcPort: number;
  dstPort: number;
}

/** A limit that raises an event once when `soft` is reached and stops the SA at `hard`. */
export interface LifetimeLimit {
  soft?: number;
  hard?: number;
}

export interface SaConfig {
  spi: number;
  mode: EspMode;
  suite: SuiteName;
  /** AEAD: key ‖ 4-byte salt (RFC 4106 §8.1, RFC 7634 §2). CBC: the AES key. Null suites: empty. */
  encKey: Uint8Array;
  /** HMAC key of cbc-hmac and null-hmac suites. */
  authKey?: Uint8Array;
  /** 64-bit extended sequence numbers (RFC 4303 §2.2.1). */
  esn?: boolean;
  /** Sequence number of the next packet sent (default 1). Above 2^32 only with ESN. */
  seq?: bigint | number;
  /** Explicit IV of the first packet sent: 8 bytes for AEAD (then +1 per packet), 16 for CBC (then random). */
  iv?: Uint8Array;
  /** Anti-replay window in packets; 0 turns anti-replay off (default 64). */
  replayWindow?: number;
  /** Outer header of tunnel and iptfs modes. */
  tunnel?: TunnelConfig | null;
  /** Classic TFC padding (RFC 4303 §2.7): tunnel-mode payloads are padded to this many bytes; 0 = off. */
  tfcPadTo?: number;
  /** UDP encapsulation (RFC 3948), or null. */
  natt?: NattConfig | null;
  lifetime?: { packets?: LifetimeLimit; bytes?: LifetimeLimit };
  /** Force a crypto backend; by default the fastest available one for the suite. */
  backend?: BackendName;
}

export type SaEvent =
  | { type: 'soft-lifetime' | 'hard-lifetime'; limit: 'packets' | 'bytes'; sa: SecurityAssociation }
  /** The next sequence number would wrap: the SA refuses to send and needs rekeying. */
  | { type: 'sequence-exhausted'; sa: SecurityAssociation };

const MAX_U32 = 0xffffffff;
const IV_POOL_BYTES = 4096;

/**
 * One ESP security association: keys expanded once, the outbound sequence counter (and AEAD IV counter),
 * the inbound replay window, lifetimes, and the outer header of tunnel mode. 64-bit counters are kept as
 * (hi, lo) uint32 pairs so the per-packet path needs no BigInt.
 */
export class SecurityAssociation {
  readonly spi: number;
  readonly mode: EspMode;
  readonly suite: Suite;
  readonly keys: SuiteKeys;
  readonly esn: boolean;
  /** Null when anti-replay is off. */
  readonly replay: ReplayWindow | null;
  readonly tunnelSrc: number;
  readonly tunnelDst: number;
  readonly ttl: number;
  readonly df: DfPolicy;
  readonly tfcPadTo: number;
  readonly natt: NattConfig | null;
  /** Called for lifetime and sequence events; set it to react (rekey, log). */
  onEvent: ((event: SaEvent) => void) | null = null;

  /** Next outbound sequence number. */
  seqHi: number;
  seqLo: number;
  /** Identification of the next outer IPv4 header (tunnel mode). */
  ipId = 0;
  packets = 0;
  bytes = 0;
  /** Set at a hard lifetime or sequence exhaustion: the SA no longer sends or accepts. */
  expired = false;

  /** AEAD nonce (salt ‖ IV) and AAD (SPI ‖ [SeqHi ‖] SeqLo), rewritten per packet. */
  readonly nonce = new Uint8Array(12);
  readonly aad: Uint8Array;
  /** SeqHi as the HMAC suites append it after the trailer (RFC 4303 §2.2.1), or empty without ESN. */
  readonly macExtra: Uint8Array;
  /** Views of the packet regions the crypto calls take, reused while a stage writes into one buffer. */
  readonly views = new ViewCache();
  /** The next AEAD IV (8 bytes, big-endian counter) or the first CBC IV. */
  private readonly nextIv: Uint8Array;
  private firstCbcIvPending: boolean;
  private readonly lifetime: { packets: LifetimeLimit; bytes: LifetimeLimit };
  private readonly hasLifetime: boolean;
  /**
   * Random bytes for CBC IVs, refilled 4 KiB at a time: one randomFillSync per packet cost about 1.6 µs,
   * most of a small packet's encapsulation. Every byte is used once.
   */
  private ivPool: Uint8Array | null = null;
  private ivPoolUsed = 0;
  private softRaised = { packets: false, bytes: false };

  constructor(config: SaConfig) {
    if (!Number.isInteger(config.spi) || config.spi < 1 || config.spi > MAX_U32)
      throw new Error(`SA spi ${config.spi}: give an integer 1..0xffffffff (0 is reserved)`);
    if (!isSuiteName(config.suite))
      throw new Error(
        `SA ${hexSpi(config.spi)}: unknown suite "${config.suite}"; use one of ${Object.keys(SUITES).join(', ')}`,
      );
    if (config.mode !== 'tunnel' && config.mode !== 'transport' && config.mode !== 'iptfs')
      throw new Error(`SA ${hexSpi(config.spi)}: mode "${config.mode}" is not tunnel, transport or iptfs`);
    this.spi = config.spi;
    this.mode = config.mode;
    this.suite = SUITES[config.suite];
    this.esn = config.esn ?? false;
    const where = `SA ${hexSpi(config.spi)}`;
    this.keys = about(where, 'encKey/authKey', () =>
      keySuite(this.suite, config.encKey, config.authKey ?? new Uint8Array(0), config.backend),
    );
    this.nonce.set(this.keys.salt, 0);
    this.aad = new Uint8Array(this.esn ? 12 : 8);
    writeU32(this.aad, 0, this.spi);
    this.macExtra = new Uint8Array(this.esn ? 4 : 0);

    const seq = BigInt(config.seq ?? 1);
    const maxSeq = this.esn ? (1n << 64n) - 1n : BigInt(MAX_U32);
    if (seq < 1n || seq > maxSeq)
      throw new Error(
        `SA ${hexSpi(this.spi)}: seq ${seq} out of range 1..${maxSeq}${this.esn ? '' : ' (enable esn for more)'}`,
      );
    this.seqHi = Number(seq >> 32n);
    this.seqLo = Number(seq & 0xffffffffn);

    this.nextIv = new Uint8Array(Math.max(this.suite.ivLength, 8));
    this.firstCbcIvPending = false;
    if (config.iv && config.iv.length > 0) {
      if (config.iv.length !== this.suite.ivLength)
        throw new Error(
          `SA ${hexSpi(this.spi)}: iv has ${config.iv.length} bytes; ${this.suite.name} uses ${this.suite.ivLength}`,
        );
      this.nextIv.set(config.iv);
      this.firstCbcIvPending = this.suite.ivLength === 16;
    } else if (this.suite.kind === 'aead') {
      // Without an explicit start the IV counter starts at the sequence number: unique per packet for as long
      // as the sequence counter is, which the SA already guarantees (RFC 4106 §3.1).
      writeU32(this.nextIv, 0, this.seqHi);
      writeU32(this.nextIv, 4, this.seqLo);
    }

    const window = config.replayWindow ?? 64;
    // The receiver infers SeqHi from the window (RFC 4303 Appendix A), so ESN needs one.
    if (window === 0 && this.esn)
      throw new Error(
        `SA ${hexSpi(this.spi)}: esn needs anti-replay (replayWindow > 0) to infer the high half`,
      );
    this.replay =
      window === 0 ? null : about(where, 'replayWindow', () => new ReplayWindow(window, this.esn));

    const tunnel = config.tunnel ?? null;
    if ((this.mode === 'tunnel' || this.mode === 'iptfs') && !tunnel)
      throw new Error(`SA ${hexSpi(this.spi)}: ${this.mode} mode needs "tunnel": {"src","dst"}`);
    this.tunnelSrc = tunnel ? about(where, 'tunnel.src', () => parseIpv4(tunnel.src)) : 0;
    this.tunnelDst = tunnel ? about(where, 'tunnel.dst', () => parseIpv4(tunnel.dst)) : 0;
    this.ttl = tunnel?.ttl ?? 64;
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 255)
      throw new Error(`SA ${hexSpi(this.spi)}: tunnel ttl ${this.ttl} must be 1..255`);
    this.df = tunnel?.df ?? 'copy';
    this.tfcPadTo = config.tfcPadTo ?? 0;
    if (this.tfcPadTo !== 0 && this.mode !== 'tunnel')
      throw new Error(
        `SA ${hexSpi(this.spi)}: tfcPadTo needs tunnel mode (the receiver strips it by the inner IP length)`,
      );
    if (!Number.isInteger(this.tfcPadTo) || this.tfcPadTo < 0 || this.tfcPadTo > 65000)
      throw new Error(`SA ${hexSpi(this.spi)}: tfcPadTo ${this.tfcPadTo} must be 0..65000`);
    this.natt = config.natt ?? null;
    if (this.natt)
      for (const port of [this.natt.srcPort, this.natt.dstPort])
        if (!Number.isInteger(port) || port < 1 || port > 65535)
          throw new Error(`SA ${hexSpi(this.spi)}: natt port ${port} must be 1..65535`);
    this.lifetime = { packets: config.lifetime?.packets ?? {}, bytes: config.lifetime?.bytes ?? {} };
    const { packets, bytes } = this.lifetime;
    this.hasLifetime = [packets.soft, packets.hard, bytes.soft, bytes.hard].some((v) => v !== undefined);
  }

  /** Next outbound sequence number as a bigint (for display and tests; the hot path uses seqHi/seqLo). */
  get nextSeq(): bigint {
    return (BigInt(this.seqHi) << 32n) | BigInt(this.seqLo);
  }

  /** Moves the outbound counter past the packet just sent; marks the SA exhausted when it would wrap. */
  advanceSeq(): void {
    if (this.seqLo !== MAX_U32) {
      this.seqLo++;
      return;
    }
    if (this.esn && this.seqHi !== MAX_U32) {
      this.seqHi++;
      this.seqLo = 0;
      return;
    }
    if (this.replay === null && !this.esn) {
      // Without anti-replay the sender may cycle (RFC 4303 §3.3.3); 0 is still never sent.
      this.seqLo = 1;
      return;
    }
    this.expired = true;
    this.onEvent?.({ type: 'sequence-exhausted', sa: this });
  }

  /** Writes the IV of the packet being built at dst[off] and prepares the AEAD nonce. */
  writeIv(dst: Uint8Array, off: number): void {
    const len = this.suite.ivLength;
    if (len === 0) return;
    if (this.suite.kind === 'aead') {
      const iv = this.nextIv;
      const nonce = this.nonce;
      for (let i = 0; i < 8; i++) {
        dst[off + i] = iv[i]!;
        nonce[4 + i] = iv[i]!;
      }
      incrementBe64(iv);
    } else if (this.firstCbcIvPending) {
      dst.set(this.nextIv.subarray(0, len), off);
      this.firstCbcIvPending = false;
    } else {
      let pool = this.ivPool;
      if (pool === null || this.ivPoolUsed + len > pool.length) {
        pool ??= this.ivPool = new Uint8Array(IV_POOL_BYTES);
        randomFillSync(pool);
        this.ivPoolUsed = 0;
      }
      for (let i = 0; i < len; i++) dst[off + i] = pool[this.ivPoolUsed + i]!;
      this.ivPoolUsed += len;
    }
  }

  /** Fills the AAD / MAC extra with the given sequence number (outbound, or inbound after inference). */
  setSequence(hi: number, lo: number): void {
    if (this.esn) {
      writeU32(this.aad, 4, hi);
      writeU32(this.aad, 8, lo);
      writeU32(this.macExtra, 0, hi);
    } else {
      writeU32(this.aad, 4, lo);
    }
  }

  /** Counts a packet sent or accepted against the lifetimes; the SA expires once a hard limit is reached. */
  account(bytes: number): void {
    this.packets++;
    this.bytes += bytes;
    if (!this.hasLifetime) return;
    this.checkLimit('packets', this.packets);
    this.checkLimit('bytes', this.bytes);
  }

  private checkLimit(limit: 'packets' | 'bytes', value: number): void {
    const { soft, hard } = this.lifetime[limit];
    if (soft !== undefined && !this.softRaised[limit] && value >= soft) {
      this.softRaised[limit] = true;
      this.onEvent?.({ type: 'soft-lifetime', limit, sa: this });
    }
    if (hard !== undefined && !this.expired && value >= hard) {
      this.expired = true;
      this.onEvent?.({ type: 'hard-lifetime', limit, sa: this });
    }
  }
}

/** Runs a piece of configuration checking and names the field in whatever it throws. */
function about<T>(where: string, field: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new Error(`${where}: ${field}: ${(err as Error).message}`);
  }
}

export function hexSpi(spi: number): string {
  return `0x${spi.toString(16).padStart(8, '0')}`;
}

function incrementBe64(buf: Uint8Array): void {
  for (let i = 7; i >= 0; i--) {
    buf[i] = (buf[i]! + 1) & 0xff;
    if (buf[i] !== 0) return;
  }
}
