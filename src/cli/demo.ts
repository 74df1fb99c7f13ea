import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, UsageError } from './command.js';
import { type InspectOutput, inspectFile, LineWriter } from './inspect.js';

/** The capture bundled with the package: real kernel traffic between two network namespaces. */
export const exampleCapture = fileURLToPath(new URL('../../examples/kernel-mix.pcap', import.meta.url));

const help = `Usage: pktveil demo [--out DIR]

The main job on an embedded default: decodes the bundled capture examples/kernel-mix.pcap (ARP, ICMP,
a TCP transfer, UDP with IP fragments, IPv6 neighbour discovery, from a real kernel) and prints every layer.

  --out DIR   also write the full JSON (one object per packet, as 'pktveil inspect --json') to DIR/inspect.jsonl
  -h, --help  this text`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'decode the bundled example capture (the main job on an embedded default)',
  help,
  options: { out: { type: 'string' } },
  async run(values, positionals) {
    if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    process.stdout.write(`Decoding ${exampleCapture}\n`);
    const outputs: InspectOutput[] = [{ json: false, out: new LineWriter(process.stdout) }];
    const out = values.out as string | undefined;
    let jsonFile: string | undefined;
    let stream: WriteStream | undefined;
    if (out) {
      mkdirSync(out, { recursive: true });
      jsonFile = join(out, 'inspect.jsonl');
      stream = createWriteStream(jsonFile);
      outputs.push({ json: true, out: new LineWriter(stream) });
    }
    const count = await inspectFile(exampleCapture, {}, outputs);
    if (stream) {
      await new Promise<void>((resolve, reject) =>
        stream.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
      process.stdout.write(`Wrote ${jsonFile}\n`);
    }
    process.stdout.write(`${count} packets decoded. Try: pktveil inspect ${exampleCapture} --json\n`);
    return 0;
  },
};
