/**
 * The LIVES scenario's UDP payloads: each carries its flow id, a sequence number and a digest of the rest,
 * so the server can tell that every datagram arrived once and intact after the IP-TFS tunnel
 * (aggregation, fragmentation, encryption, reassembly).
 *
 *   0       1       4        8                         24
 *   | flow  | "LIV" | seq u32 | SHA-256(flow‖seq‖body)[0..16) | body (random) |
 */
import { createHash, randomFillSync } from 'node:crypto';

export const HEADER_LENGTH = 24;
const MAGIC = Buffer.from('LIV');

/** The flows of the scenario: a UDP port on the server each. */
export const FLOWS = [
  { id: 1, name: 'voip', port: 5004 },
  { id: 2, name: 'web', port: 8080 },
] as const;
export type FlowName = (typeof FLOWS)[number]['name'];

function digest(buf: Buffer): Buffer {
  return createHash('sha256')
    .update(buf.subarray(0, 1))
    .update(buf.subarray(4, 8))
    .update(buf.subarray(HEADER_LENGTH))
    .digest()
    .subarray(0, 16);
}

/** Fills `buf` (at least HEADER_LENGTH bytes) as datagram `seq` of flow `flowId`, with a random body. */
export function writeDatagram(buf: Buffer, flowId: number, seq: number): void {
  if (buf.length < HEADER_LENGTH) throw new RangeError(`datagram needs ${HEADER_LENGTH}+ bytes`);
  buf[0] = flowId;
  MAGIC.copy(buf, 1);
  buf.writeUInt32BE(seq >>> 0, 4);
  randomFillSync(buf, HEADER_LENGTH);
  digest(buf).copy(buf, 8);
}

/** The flow id and sequence number of an intact datagram, or why it is not one. */
export function readDatagram(buf: Buffer): { flowId: number; seq: number } | string {
  if (buf.length < HEADER_LENGTH) return 'short';
  if (!buf.subarray(1, 4).equals(MAGIC)) return 'bad-magic';
  if (!digest(buf).equals(buf.subarray(8, 24))) return 'bad-digest';
  return { flowId: buf[0]!, seq: buf.readUInt32BE(4) };
}
