/** Test helpers: sealing a packet from a session, and handing it to a host's receiver. */
import type { AnonReceiver } from '../../src/anonymity-layer/receiver.js';
import { ANON_HEADROOM, ANON_OVERHEAD } from '../../src/anonymity-layer/seal.js';
import type { AnonSession } from '../../src/anonymity-layer/session.js';
import { type Sid, sidFromBytes } from '../../src/anonymity-layer/sid.js';
import { junk } from '../helpers/bytes.js';

/** Seals `payload` from `s` into a fresh junk buffer; throws if the session refuses. */
export function send(s: AnonSession, payload: Buffer | string, now = 0n, protocol = 17): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const buf = junk(ANON_OVERHEAD + p.length);
  p.copy(buf, ANON_HEADROOM);
  const n = s.seal(buf, 0, p.length, protocol, now);
  if (typeof n !== 'number') throw new Error(`seal refused: ${n}`);
  return buf;
}

/** The clear current SID of a sealed packet. */
export function clearSid(pkt: Buffer): Sid {
  return sidFromBytes(pkt, 0);
}

export interface Received {
  session: AnonSession | null;
  protocol: number;
  payload: string;
}

/** Hands an anonymity-layer packet to a host: what it delivered, or the drop reason. */
export function receive(host: AnonReceiver, pkt: Buffer, now = 0n): Received | string {
  const r = host.receiveAnon(pkt, 0, pkt.length, now);
  if (typeof r === 'string') return r;
  const d = host.delivered;
  return {
    session: d.session,
    protocol: d.protocol,
    payload: d.buffer.toString('latin1', d.transportOffset, d.transportOffset + d.transportLength),
  };
}
