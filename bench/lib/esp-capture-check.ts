/**
 * Proof that an ESP-encapsulated capture is what it should be, so a broken encapsulation cannot pass for a
 * fast one: as many packets as went in, each an Ethernet frame carrying ESP with the SA's SPI and the next
 * sequence number, and each decapsulating (with a receiving SA of the same configuration) to exactly the
 * inner packet of the input frame in its place.
 */
import { ESP_PROTOCOL } from '../../src/codec/esp.js';
import { decapsulate, newDecapInfo } from '../../src/esp/decapsulate.js';
import { readU32 } from '../../src/esp/esp-format.js';
import { type SaConfig, SecurityAssociation } from '../../src/esp/sa.js';
import { SecurityAssociationDatabase } from '../../src/esp/sad.js';
import { readCapture } from '../../src/io/capture-file.js';
import { ETH_LENGTH } from './corpus.js';

/**
 * Reads `path` (the encapsulation of `packets` records cycling through `inputFrames`) and throws at the
 * first packet that is not right, or when the count differs.
 */
export async function checkEncapsulatedCapture(
  path: string,
  config: SaConfig,
  inputFrames: readonly Buffer[],
  packets: number,
): Promise<void> {
  const sad = new SecurityAssociationDatabase([new SecurityAssociation(config)]);
  const info = newDecapInfo();
  const inner = Buffer.alloc(65_535);
  let i = 0;
  for await (const pkt of readCapture(path)) {
    const frame = pkt.data;
    const input = inputFrames[i % inputFrames.length]!;
    const where = `${path}: packet ${i + 1}`;
    if (i >= packets) throw new Error(`${where}: more packets than the ${packets} that went in`);
    if (
      frame.length < ETH_LENGTH + 28 ||
      !frame.subarray(0, ETH_LENGTH).equals(input.subarray(0, ETH_LENGTH))
    )
      throw new Error(`${where}: not the input's Ethernet header in front of an IPv4 packet`);
    if (frame[ETH_LENGTH + 9] !== ESP_PROTOCOL) throw new Error(`${where}: IPv4 protocol is not ESP`);
    const espOff = ETH_LENGTH + (frame[ETH_LENGTH]! & 0x0f) * 4;
    if (readU32(frame, espOff) !== config.spi || readU32(frame, espOff + 4) !== i + 1)
      throw new Error(`${where}: SPI or sequence number is not the SA's next`);
    const n = decapsulate(sad, frame, ETH_LENGTH, frame.length - ETH_LENGTH, inner, 0, info);
    if (typeof n === 'string') throw new Error(`${where}: does not decapsulate (${n})`);
    if (!inner.subarray(0, n).equals(input.subarray(ETH_LENGTH)))
      throw new Error(`${where}: decapsulates to other bytes than the input's IPv4 packet`);
    i++;
  }
  if (i !== packets) throw new Error(`${path}: ${i} packets, but ${packets} went in`);
}
