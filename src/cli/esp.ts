import { EspDecapStage, EspEncapStage } from '../esp/esp-stages.js';
import { SecurityAssociation } from '../esp/sa.js';
import { readSaFile } from '../esp/sa-file.js';
import { type Command, UsageError } from './command.js';
import { runTransform, transformArgs } from './file-transform.js';

const help = `Usage: pktveil esp encap --sa FILE [--sa FILE ...] IN OUT [--stats json]
       pktveil esp decap --sa FILE [--sa FILE ...] IN OUT [--stats json]

ESP (RFC 4303) over a capture file; OUT keeps IN's format (pcap or pcapng) and link type.

  encap   wraps every IPv4 packet: the first --sa wraps the original packet, each following --sa
          wraps the result (a telescope S->A->B->C is --sa S-C --sa S-B --sa S-A). Frames without
          IPv4 pass unchanged.
  decap   the --sa files form the SA database; ESP layers are removed while the outermost SPI is
          known. Failures (unknown-spi, replayed, too-old, icv, bad-padding, truncated, malformed,
          ...) and dummy packets (Next Header 59) are dropped and counted. Other frames pass unchanged.

  --sa FILE        an SA file (JSON; see the README): spi, mode, suite, encKey, authKey, esn, seq,
                   iv, replayWindow, tunnel, tfcPadTo, natt
  --stats json     print {"packetsIn","packetsOut","dropped":{reason:count}} on stdout at the end
  -h, --help       this text`;

export const espCommand: Command = {
  name: 'esp',
  summary: 'ESP encapsulation and decapsulation of a capture file (tunnel, transport, telescopes, NAT-T)',
  help,
  options: {
    sa: { type: 'string', multiple: true },
    stats: { type: 'string' },
  },
  async run(values, positionals) {
    const args = transformArgs(values, positionals);
    const saFiles = (values.sa as string[] | undefined) ?? [];
    if (saFiles.length === 0) throw new UsageError('give at least one --sa FILE');
    const sas = saFiles.map(securityAssociationFromFile);
    return runTransform(args, args.action === 'encap' ? new EspEncapStage(sas) : new EspDecapStage(sas));
  },
};

/** The SA an SA file describes; a mistake in it is reported with the file's name. */
export function securityAssociationFromFile(file: string): SecurityAssociation {
  const config = readSaFile(file);
  try {
    return new SecurityAssociation(config);
  } catch (err) {
    throw new Error(`SA file ${file}: ${(err as Error).message}`);
  }
}
