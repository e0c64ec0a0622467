#!/usr/bin/env node
// cait: the command line. Each subcommand prints human-readable text and, with
// --json, one JSON object as the last line of stdout (scripts read that line).
import { UsageError } from './args.js';
import { trainCommand } from './train.js';
import { evalCommand, forwardCommand, predictCommand } from './infer.js';

const COMMANDS: Record<string, [(argv: string[]) => void | Promise<void>, string]> = {
  train: [trainCommand, 'train --preset NAME --data fashion-mnist --epochs N --out DIR [--resume FILE] [--batch B --lr LR ...]'],
  eval: [evalCommand, 'eval --model FILE --data fashion-mnist [--json]'],
  predict: [predictCommand, 'predict --model FILE --image FILE.png|jpg [--json]'],
  forward: [forwardCommand, 'forward --model FILE [--preset NAME] --input IN.safetensors --out OUT.safetensors'],
};

function usage(): string {
  return 'usage: cait <command> [flags]\n\n' + Object.values(COMMANDS).map(([, u]) => '  cait ' + u).join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { console.log(usage()); return cmd ? 0 : 1; }
  const entry = COMMANDS[cmd];
  if (!entry) { console.error(`cait: unknown command '${cmd}'\n\n${usage()}`); return 2; }
  try {
    await entry[0](rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) { console.error(`cait ${cmd}: ${e.message}\nusage: cait ${entry[1]}`); return 2; }
    console.error(`cait ${cmd}: ${(e as Error).message}`);
    if (process.env.CAIT_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
