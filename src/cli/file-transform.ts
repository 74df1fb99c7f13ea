import { openCaptureWriter, readCapture } from '../io/capture-file.js';
import { LinkType, type Packet } from '../packet.js';
import { runStage } from '../stages/run.js';
import type { Stage, StageStats } from '../stages/stage.js';

/**
 * Runs a capture file through a stage into another capture file of the same format (pcap stays pcap, pcapng
 * stays pcapng) and link type, in virtual time. Returns the stage's stats, where `packetsOut` counts the
 * packets written and a packet the file cannot hold (e.g. an IPv6 packet out of a tunnel in a
 * LINKTYPE_IPV4 file) is counted as `dropped['link-type']`.
 */
export async function transformCaptureFile(input: string, output: string, stage: Stage): Promise<StageStats> {
  const reader = readCapture(input);
  const it = reader[Symbol.asyncIterator]();
  // The output's link type is the input's: read the first packet before opening the writer.
  let first: IteratorResult<Packet, undefined> | null = await it.next();
  const link = first.done ? (inputLink(reader) ?? LinkType.ETHERNET) : first.value.link;
  const writer = await openCaptureWriter(output, { format: reader.format ?? 'pcap', link });
  const source: AsyncIterable<Packet> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        if (first === null) return it.next();
        const r = first;
        first = null;
        return Promise.resolve(r);
      },
      return: () => it.return?.() ?? Promise.resolve({ done: true, value: undefined }),
    }),
  };
  let unwritable = 0;
  const sink = (pkt: Packet) => {
    if (writer.acceptsLink(pkt.link)) writer.write(pkt);
    else unwritable++;
  };
  try {
    await runStage(source, stage, sink, { drain: writer });
  } finally {
    await writer.close();
  }
  const stats = stage.stats();
  if (unwritable === 0) return stats;
  return {
    ...stats,
    packetsOut: stats.packetsOut - unwritable,
    dropped: { ...stats.dropped, 'link-type': (stats.dropped['link-type'] ?? 0) + unwritable },
  };
}

function inputLink(reader: ReturnType<typeof readCapture>): number | undefined {
  const inner = reader.parser.inner;
  if (!inner) return undefined;
  return 'header' in inner ? inner.header?.link : inner.interfaces[0]?.link;
}
