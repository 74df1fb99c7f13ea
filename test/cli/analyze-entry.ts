/**
 * Test-only entry that runs `pktveil analyze` with the dispatch of src/cli/main.ts (help, usage errors exit
 * 2, other errors exit 1), for as long as main.ts does not register the command; analyze.test.ts switches
 * to the real CLI as soon as it does.
 */
import { analyzeCommand } from '../../src/cli/analyze.js';
import { parseCommandArgs, UsageError } from '../../src/cli/command.js';

async function run(argv: string[]): Promise<number> {
  try {
    const parsed = parseCommandArgs(analyzeCommand, argv);
    if (parsed === 'help') {
      process.stdout.write(`${analyzeCommand.help}\n`);
      return 0;
    }
    return await analyzeCommand.run(parsed.values, parsed.positionals);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pktveil analyze: ${err.message}\n\n${analyzeCommand.help}\n`);
      return 2;
    }
    process.stderr.write(`pktveil analyze: ${(err as Error).message}\n`);
    return 1;
  }
}

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
