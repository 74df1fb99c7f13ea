import { openCaptureWriter, readCapture } from '../io/capture-file.js';
import { LinkType, type Packet } from '../packet.js';
import { runStage } from '../stages/run.js';
import type { Stage, StageStats } from '../stages/stage.js';
import { UsageError } from './command.js';

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

/** What every `pktveil <command> encap|decap IN OUT [--stats json]` takes, checked (usage errors name the mistake). */
export interface TransformArgs {
  action: 'encap' | 'decap';
  input: string;
  output: string;
  statsJson: boolean;
}

export function transformArgs(values: Record<string, unknown>, positionals: string[]): TransformArgs {
  const [action, input, output, ...extra] = positionals;
  if (action !== 'encap' && action !== 'decap')
    throw new UsageError(action === undefined ? 'missing encap or decap' : `unknown action '${action}'`);
  if (!input || !output) throw new UsageError('missing IN and OUT capture files');
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const statsFormat = values.stats as string | undefined;
  if (statsFormat !== undefined && statsFormat !== 'json')
    throw new UsageError(`--stats takes 'json', got '${statsFormat}'`);
  return { action, input, output, statsJson: statsFormat === 'json' };
}

/** Runs the transform of `args` through `stage`; with --stats json prints the contract's line. */
export async function runTransform(args: TransformArgs, stage: Stage): Promise<number> {
  const stats = await transformCaptureFile(args.input, args.output, stage);
  if (args.statsJson) process.stdout.write(`${JSON.stringify(contractStats(stats))}\n`);
  return 0;
}

/** The --stats json line of the contract, plus the stage's other counters after it. */
function contractStats(stats: StageStats): Record<string, unknown> {
  const { packetsIn, packetsOut, dropped, ...rest } = stats;
  return { packetsIn, packetsOut, dropped, ...rest };
}
