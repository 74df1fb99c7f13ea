import { describeLayers, formatTimestamp, type LayerJson, type PacketJson } from '../codec/describe.js';
import { PacketParser } from '../codec/parser.js';
import { LayerRegistry } from '../codec/registry.js';
import { readCapture } from '../io/capture-file.js';
import { wireLength } from '../packet.js';
import { type Command, integerOption, UsageError } from './command.js';

const help = `Usage: pktveil inspect FILE [--json] [--limit N] [--anon-protocol P]

Decodes every packet of a capture (pcap or pcapng; Ethernet, raw IP, Linux cooked) and prints its layers.

  --json             one JSON object per packet (the contract in contracts/cli.md): index, ts, caplen,
                     len, layers with every header field and checksum verdicts, and error when decoding
                     stopped early
  --limit N          stop after N packets
  --anon-protocol P  IP protocol number of the anonymity layer (default 253)
  -h, --help         this text`;

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'decode a capture file and print every layer of every packet',
  help,
  options: {
    json: { type: 'boolean' },
    limit: { type: 'string' },
    'anon-protocol': { type: 'string' },
  },
  async run(values, positionals) {
    const [file, ...extra] = positionals;
    if (!file) throw new UsageError('missing FILE');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const limit = integerOption(values, 'limit') ?? Number.POSITIVE_INFINITY;
    const anonProtocol = integerOption(values, 'anon-protocol');
    if (anonProtocol !== undefined && anonProtocol > 255)
      throw new UsageError('--anon-protocol must be 0-255');
    await inspectFile(file, { limit, anonProtocol }, [
      { json: Boolean(values.json), out: new LineWriter(process.stdout) },
    ]);
    return 0;
  },
};

export interface InspectOptions {
  limit?: number;
  anonProtocol?: number;
}

/** Where inspect's lines go: contract JSON or the one-line summary. */
export interface InspectOutput {
  json: boolean;
  out: LineWriter;
}

/**
 * Decodes every packet of `file` once and writes one line per packet to each output (JSON or a
 * summary). Returns the number of packets.
 */
export async function inspectFile(
  file: string,
  options: InspectOptions,
  outputs: InspectOutput[],
): Promise<number> {
  const parser = new PacketParser(LayerRegistry.defaults(options.anonProtocol));
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  let index = 0;
  for await (const pkt of readCapture(file)) {
    if (index >= limit) break;
    parser.parsePacket(pkt);
    const json: PacketJson = {
      index,
      ts: formatTimestamp(pkt.ts),
      caplen: pkt.data.length,
      len: wireLength(pkt),
      layers: describeLayers(parser),
    };
    if (parser.error) json.error = parser.error;
    for (const { json: asJson, out } of outputs)
      await out.write(asJson ? JSON.stringify(json) : summaryLine(json));
    index++;
  }
  for (const { out } of outputs) await out.end();
  return index;
}

/** One tcpdump-like line: time, lengths, then the key fields of each layer. */
function summaryLine(pkt: PacketJson): string {
  const parts = pkt.layers.map(layerSummary);
  if (pkt.error)
    parts.push(`[${pkt.error.layer} ${pkt.error.kind} at ${pkt.error.offset}: ${pkt.error.detail}]`);
  return `${pkt.index} ${pkt.ts} ${pkt.caplen}/${pkt.len} ${parts.join(' | ')}`;
}

const tcpFlagLetters = 'NCEUAPRSF'; // bit 8 (NS) down to bit 0 (FIN)

function layerSummary(l: LayerJson): string {
  const bad = l.checksumOk === false ? ' [bad checksum]' : '';
  switch (l.layer) {
    case 'eth': {
      const tags = l.vlan as { id: number }[];
      return `eth ${l.src} > ${l.dst}${tags.length ? ` vlan ${tags.map((t) => t.id).join('.')}` : ''}`;
    }
    case 'ipv4': {
      const frag =
        (l.flags as number) & 1 || l.fragOffset ? ` frag id ${l.id} off ${(l.fragOffset as number) * 8}` : '';
      return `ipv4 ${l.src} > ${l.dst} ttl ${l.ttl}${frag}${bad}`;
    }
    case 'ipv6':
      return `ipv6 ${l.src} > ${l.dst} hlim ${l.hopLimit}`;
    case 'tcp': {
      const flags = [...tcpFlagLetters].filter((_, i) => (l.flags as number) & (1 << (8 - i))).join('');
      return `tcp ${l.srcPort} > ${l.dstPort} [${flags}] seq ${l.seq} len ${l.payloadLength}${bad}`;
    }
    case 'udp':
      return `udp ${l.srcPort} > ${l.dstPort} len ${l.payloadLength}${bad}`;
    case 'icmp':
    case 'icmpv6':
      return `${l.layer} type ${l.type} code ${l.code}${bad}`;
    case 'arp':
      return `arp ${l.oper === 1 ? 'request' : l.oper === 2 ? 'reply' : `op ${l.oper}`}`;
    case 'esp':
      return `esp spi 0x${(l.spi as number).toString(16).padStart(8, '0')} seq ${l.seq} len ${l.payloadLength}`;
    case 'natt':
      return `natt ${l.kind}`;
    case 'anon':
      return `anon sid ${l.currentSid} seq ${l.sequence}`;
    default:
      return l.layer;
  }
}

/** Buffers output lines into large writes and waits for the stream to drain (backpressure). */
export class LineWriter {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  async write(line: string): Promise<void> {
    this.chunks.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= 1 << 16) await this.flush();
  }

  async end(): Promise<void> {
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.size === 0) return;
    const text = this.chunks.join('');
    this.chunks = [];
    this.size = 0;
    if (!this.stream.write(text)) await new Promise<void>((resolve) => this.stream.once('drain', resolve));
  }
}
