/**
 * The responder's session-NAT: every client session gets its own virtual IPv4 address from a pool, which
 * the server's stack sees as the client's address. All hosts of a subnet share one source address (the
 * broadcast address), and two of them may pick the same source port; without this the server's stack
 * would merge their conversations. The pool is routed to the responder (a dummy interface on the server),
 * so the server's replies to a virtual address come back to it, and the address names the session to
 * seal them into.
 *
 * Addresses are handed out lowest first and reused only after every other free one (a FIFO of freed
 * addresses), so a late packet of an ended session rarely reaches a new one. Lookups by address are an
 * array index: no allocation per packet.
 */
import { ipv4String } from '../codec/ip-address.js';
import { BroadcastSubnet } from './broadcast-subnet.js';

/** lookup(): the address is in the pool but no session holds it, or it is outside the pool. */
export const NAT_NO_SESSION = -1;

export class SessionNat {
  readonly pool: BroadcastSubnet;
  /** Session index per host number (address − network − 1); NAT_NO_SESSION when free. */
  private readonly owners: Int32Array;
  /** Host number per session index (−1: none), grown on demand. */
  private byIndex: Int32Array = new Int32Array(16).fill(-1);
  /** Free host numbers, in the order they are handed out. */
  private readonly free: number[] = [];
  private freeHead = 0;

  /** `pool`: "198.18.99.0/24"; its host addresses (not network, not broadcast) are handed out. */
  constructor(pool: string | BroadcastSubnet) {
    this.pool = BroadcastSubnet.from(pool);
    const hosts = 2 ** (32 - this.pool.prefixLength) - 2;
    if (hosts > 65_534)
      throw new Error(`session-NAT pool ${this.pool} is larger than a /16; give a /16 … /30`);
    this.owners = new Int32Array(hosts).fill(NAT_NO_SESSION);
    for (let i = 0; i < hosts; i++) this.free.push(i);
  }

  /** Addresses not held by a session. */
  get available(): number {
    return this.free.length - this.freeHead;
  }

  /**
   * The virtual address of session `index`, assigning the next free one on first use. Returns -1 when the
   * pool is exhausted (the caller drops the session's packets and counts it).
   */
  assign(index: number): number {
    const held = this.addressOf(index);
    if (held !== -1) return held;
    if (this.freeHead === this.free.length) return -1;
    const host = this.free[this.freeHead++]!;
    if (this.freeHead > 1024 && this.freeHead * 2 > this.free.length) {
      this.free.splice(0, this.freeHead);
      this.freeHead = 0;
    }
    this.owners[host] = index;
    if (index >= this.byIndex.length) {
      const grown = new Int32Array(Math.max(index + 1, this.byIndex.length * 2)).fill(-1);
      grown.set(this.byIndex);
      this.byIndex = grown;
    }
    this.byIndex[index] = host;
    return this.hostAddress(host);
  }

  /** The virtual address session `index` holds, or -1. */
  addressOf(index: number): number {
    if (index < 0 || index >= this.byIndex.length) return -1;
    const host = this.byIndex[index]!;
    return host < 0 ? -1 : this.hostAddress(host);
  }

  /** The session index holding `address`, or NAT_NO_SESSION. */
  lookup(address: number): number {
    const host = (address >>> 0) - this.pool.network - 1;
    if (host < 0 || host >= this.owners.length) return NAT_NO_SESSION;
    return this.owners[host]!;
  }

  /** Gives session `index`'s address back to the pool (at the end of the queue). False if it held none. */
  release(index: number): boolean {
    if (index < 0 || index >= this.byIndex.length) return false;
    const host = this.byIndex[index]!;
    if (host < 0) return false;
    this.byIndex[index] = -1;
    this.owners[host] = NAT_NO_SESSION;
    this.free.push(host);
    return true;
  }

  /** "198.18.99.3" for a session, for logs and stats (allocates). */
  describe(index: number): string {
    const a = this.addressOf(index);
    return a === -1 ? 'none' : ipv4String(a);
  }

  private hostAddress(host: number): number {
    return (this.pool.network + 1 + host) >>> 0;
  }
}
