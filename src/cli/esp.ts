import { EspDecapStage, EspEncapStage } from '../esp/esp-stages.js';
import { SecurityAssociation } from '../esp/sa.js';
import { readSaFile } from '../esp/sa-file.js';
import type { StageStats } from '../stages/stage.js';
import { type Command, UsageError } from './command.js';
import { transformCaptureFile } from './file-transform.js';

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
    const [action, input, output, ...extra] = positionals;
    if (action !== 'encap' && action !== 'decap')
      throw new UsageError(action === undefined ? 'missing encap or decap' : `unknown action '${action}'`);
    if (!input || !output) throw new UsageError('missing IN and OUT capture files');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const saFiles = (values.sa as string[] | undefined) ?? [];
    if (saFiles.length === 0) throw new UsageError('give at least one --sa FILE');
    const statsFormat = values.stats as string | undefined;
    if (statsFormat !== undefined && statsFormat !== 'json')
      throw new UsageError(`--stats takes 'json', got '${statsFormat}'`);

    const sas = saFiles.map((file) => {
      const config = readSaFile(file);
      try {
        return new SecurityAssociation(config);
      } catch (err) {
        throw new Error(`SA file ${file}: ${(err as Error).message}`);
      }
    });
    const stage = action === 'encap' ? new EspEncapStage(sas) : new EspDecapStage(sas);
    const stats = await transformCaptureFile(input, output, stage);
    if (statsFormat === 'json') process.stdout.write(`${JSON.stringify(contractStats(stats))}\n`);
    return 0;
  },
};

/** The --stats json line of the contract, plus the stage's other counters after it. */
export function contractStats(stats: StageStats): Record<string, unknown> {
  const { packetsIn, packetsOut, dropped, ...rest } = stats;
  return { packetsIn, packetsOut, dropped, ...rest };
}
