#!/usr/bin/env node
import { agentCommand } from './agent.js';
import { analyzeCommand } from './analyze.js';
import { captureCommand } from './capture.js';
import { type Command, parseCommandArgs, UsageError } from './command.js';
import { demoCommand } from './demo.js';
import { espCommand } from './esp.js';
import { inspectCommand } from './inspect.js';
import { iptfsCommand } from './iptfs.js';

const commands: Command[] = [
  inspectCommand,
  captureCommand,
  espCommand,
  iptfsCommand,
  analyzeCommand,
  demoCommand,
  agentCommand,
];

function topLevelHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: pktveil <command> [options]',
    '',
    'Packet processing for privacy on the wire.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Run 'pktveil <command> --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${topLevelHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`pktveil: unknown command '${name}'\n\n${topLevelHelp()}\n`);
    return 2;
  }
  try {
    const parsed = parseCommandArgs(command, rest);
    if (parsed === 'help') {
      process.stdout.write(`${command.help}\n`);
      return 0;
    }
    return await command.run(parsed.values, parsed.positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pktveil ${command.name}: ${err.message}\n\n${command.help}\n`);
      return 2;
    }
    process.stderr.write(`pktveil ${command.name}: ${(err as Error).message}\n`);
    return 1;
  }
}

// stdout closed early (`pktveil inspect … | head`) is a normal way to stop, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
