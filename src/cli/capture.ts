import { openCaptureWriter } from '../io/capture-file.js';
import { type Command, integerOption, numberOption, UsageError } from './command.js';

const help = `Usage: pktveil capture -i IFACE [-w FILE] [-c COUNT] [--duration SECONDS] [--filter EXPR]
                       [--snaplen N] [--no-promisc] [--buffer-size BYTES] [--format pcap|pcapng]

Captures packets from a live interface into a capture file (needs root or CAP_NET_RAW, and the optional
'cap' addon built against libpcap).

  -i, --interface IFACE   interface to capture on (see 'ip link')
  -w, --write FILE        output file (required)
  -c, --count N           stop after N packets
  --duration SECONDS      stop after this long
  --filter EXPR           BPF filter expression, as for tcpdump (e.g. 'udp port 4500')
  --snaplen N             keep at most N bytes of each packet (the wire length is still recorded)
  --no-promisc            only frames to or from this interface's address, broadcast and multicast
  --buffer-size BYTES     kernel capture buffer size (default 32 MiB: libpcap immediate mode
                          uses one 64 KiB slot per packet when offloads are on)
  --format pcap|pcapng    output format (default: from the file extension, else pcapng)
  -h, --help              this text

Stops at the first of --count, --duration, or Ctrl-C, and prints how many packets it wrote to stderr.`;

export const captureCommand: Command = {
  name: 'capture',
  summary: 'capture live packets from an interface into a pcap/pcapng file',
  help,
  options: {
    interface: { type: 'string', short: 'i' },
    write: { type: 'string', short: 'w' },
    count: { type: 'string', short: 'c' },
    duration: { type: 'string' },
    filter: { type: 'string' },
    snaplen: { type: 'string' },
    'no-promisc': { type: 'boolean' },
    'buffer-size': { type: 'string' },
    format: { type: 'string' },
  },
  async run(values, positionals) {
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const iface = values.interface as string | undefined;
    const file = values.write as string | undefined;
    if (!iface) throw new UsageError('missing -i IFACE');
    if (!file) throw new UsageError('missing -w FILE');
    const format = (values.format as string | undefined) ?? (file.endsWith('.pcap') ? 'pcap' : 'pcapng');
    if (format !== 'pcap' && format !== 'pcapng')
      throw new UsageError(`--format must be pcap or pcapng, got '${format}'`);
    const count = integerOption(values, 'count') ?? Number.POSITIVE_INFINITY;
    const durationS = numberOption(values, 'duration');
    const snapLength = integerOption(values, 'snaplen');

    // Loaded on use: live capture pulls in the optional native addon, which inspect and demo never need.
    const { LiveCapture } = await import('../io/live-capture.js');
    const capture = new LiveCapture({
      interface: iface,
      filter: (values.filter as string | undefined) ?? '',
      snapLength,
      promiscuous: !values['no-promisc'],
      bufferSize: integerOption(values, 'buffer-size'),
    });
    // Like tcpdump: say when the capture is live, so whoever drives us knows when to start sending.
    process.stderr.write(
      `listening on ${iface}, link-type ${capture.linkName}, writing ${format} to ${file}\n`,
    );
    const writer = await openCaptureWriter(file, { format, link: capture.link, snaplen: snapLength });

    const stop = () => capture.close();
    const timer = durationS === undefined ? undefined : setTimeout(stop, durationS * 1000);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let written = 0;
    try {
      for await (const pkt of capture) {
        await writer.writePacket(pkt);
        if (++written >= count) break;
      }
    } finally {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      capture.close();
      await writer.close();
    }
    process.stderr.write(`${written} packets captured on ${iface} to ${file}\n`);
    return 0;
  },
};
