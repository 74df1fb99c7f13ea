import type { SecurityAssociation } from '../esp/sa.js';
import { IptfsDecapStage, IptfsEncapStage, type IptfsSendMode } from '../tfc/iptfs-stages.js';
import { type Command, integerOption, UsageError } from './command.js';
import { securityAssociationFromFile } from './esp.js';
import { runTransform, transformArgs } from './file-transform.js';

const help = `Usage: pktveil iptfs encap --sa FILE --packet-size BYTES (--rate BITS_PER_S | --on-demand)
                         [--max-delay-us N] [--dont-fragment] IN OUT [--stats json]
       pktveil iptfs decap --sa FILE [--reorder-window N] [--drop-time-us N] IN OUT [--stats json]

IP-TFS (RFC 9347) over a capture file: inner packets aggregated and fragmented into ESP packets of one
size (Next Header 144, AGGFRAG) with an SA of mode "iptfs"; OUT keeps IN's format and link type.

  encap   every IPv4/IPv6 packet of IN is queued; outer packets are exactly --packet-size bytes of IPv4.
          With --rate, time is virtual (the input timestamps): outer packets leave exactly every
          packet-size*8/rate seconds from the first input timestamp until every inner packet has been
          sent, all-pad payloads filling the gaps. --min-rate keeps that floor and adds a packet whenever
          a whole payload is queued. --on-demand sends only when a payload is full or the oldest queued
          packet has waited --max-delay-us (default 0: at once).
  decap   opens the ESP with the SA and writes the inner packets, in order, with the timestamp of the
          outer packet that completed them. Lost outer packets lose the inner packets they carried parts
          of; everything dropped is counted.

  --sa FILE             the SA file (JSON, mode "iptfs"; see the README and 'pktveil esp --help')
  --packet-size BYTES   outer IPv4 total length of every packet
  --rate BITS_PER_S     constant rate of outer IPv4 bytes (fixed-rate mode)
  --min-rate BITS_PER_S the same floor, with extra packets when the queue holds a full payload
  --on-demand           no padding-only packets
  --max-delay-us N      longest an inner packet waits: dropped beyond it with --rate/--min-rate, sent
                        padded at it with --on-demand
  --dont-fragment       never split an inner packet over two outer packets
  --congestion-control  send the congestion-control header (AGGFRAG sub-type 1)
  --reorder-window N    outer packets accepted out of order (default 3)
  --drop-time-us N      how long a missing outer packet is waited for before it counts as lost
  --stats json          print {"packetsIn","packetsOut","dropped":{reason:count},...} on stdout at the end
  -h, --help            this text`;

export const iptfsCommand: Command = {
  name: 'iptfs',
  summary: 'IP-TFS (RFC 9347): fixed-size, constant-rate ESP tunnel packets from a capture file, and back',
  help,
  options: {
    sa: { type: 'string' },
    'packet-size': { type: 'string' },
    rate: { type: 'string' },
    'min-rate': { type: 'string' },
    'on-demand': { type: 'boolean' },
    'max-delay-us': { type: 'string' },
    'dont-fragment': { type: 'boolean' },
    'congestion-control': { type: 'boolean' },
    'reorder-window': { type: 'string' },
    'drop-time-us': { type: 'string' },
    stats: { type: 'string' },
  },
  async run(values, positionals) {
    const args = transformArgs(values, positionals);
    const saFile = values.sa as string | undefined;
    if (saFile === undefined) throw new UsageError('give --sa FILE');
    const only = args.action === 'encap' ? DECAP_FLAGS : ENCAP_FLAGS;
    const misplaced = only.find((f) => values[f] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is not an option of iptfs ${args.action}`);

    const sa = securityAssociationFromFile(saFile);
    if (sa.mode !== 'iptfs') throw new Error(`SA file ${saFile}: mode is "${sa.mode}"; IP-TFS needs "iptfs"`);
    return runTransform(args, args.action === 'encap' ? encapStage(sa, values) : decapStage(sa, values));
  },
};

const ENCAP_FLAGS = [
  'packet-size',
  'rate',
  'min-rate',
  'on-demand',
  'max-delay-us',
  'dont-fragment',
  'congestion-control',
];
const DECAP_FLAGS = ['reorder-window', 'drop-time-us'];

function encapStage(sa: SecurityAssociation, values: Record<string, unknown>): IptfsEncapStage {
  const packetSize = integerOption(values, 'packet-size');
  if (packetSize === undefined) throw new UsageError('give --packet-size BYTES');
  const rate = integerOption(values, 'rate');
  const minRate = integerOption(values, 'min-rate');
  const onDemand = values['on-demand'] === true;
  if ([rate !== undefined, minRate !== undefined, onDemand].filter(Boolean).length !== 1)
    throw new UsageError('give exactly one of --rate BITS_PER_S, --min-rate BITS_PER_S, --on-demand');
  const mode: IptfsSendMode =
    rate !== undefined
      ? { kind: 'fixed-rate', bitsPerSecond: rate }
      : minRate !== undefined
        ? { kind: 'min-rate', bitsPerSecond: minRate }
        : { kind: 'on-demand' };
  const maxDelayUs = integerOption(values, 'max-delay-us');
  return new IptfsEncapStage(sa, {
    packetSize,
    mode,
    dontFragment: values['dont-fragment'] === true,
    congestionControl: values['congestion-control'] === true,
    ...(maxDelayUs !== undefined ? { maxDelayNs: BigInt(maxDelayUs) * 1000n } : {}),
  });
}

function decapStage(sa: SecurityAssociation, values: Record<string, unknown>): IptfsDecapStage {
  const reorderWindow = integerOption(values, 'reorder-window');
  const dropTimeUs = integerOption(values, 'drop-time-us');
  return new IptfsDecapStage([sa], {
    ...(reorderWindow !== undefined ? { reorderWindow } : {}),
    ...(dropTimeUs !== undefined ? { dropTimeNs: BigInt(dropTimeUs) * 1000n } : {}),
  });
}
