#!/usr/bin/env node
// cait: the command line. Each subcommand prints human-readable text and, with
// --json, one JSON object as the last line of stdout (scripts read that line).
import { UsageError } from './args.js';
import { trainCommand } from './train.js';
import { evalCommand, forwardCommand, predictCommand } from './infer.js';
import { benchCommand, macsCommand } from './bench.js';
import { exportCommand } from './export.js';
import { demoCommand } from './demo.js';
import { compressCommand } from './compress.js';
import { plotCommand } from './plot.js';
import { segmentCommand } from './segment.js';

const COMMANDS: Record<string, [(argv: string[]) => void | Promise<void>, string]> = {
  train: [trainCommand, 'train --preset NAME | --model FILE --data fashion-mnist --epochs N --out DIR [--merge SCHEDULE] [--resume FILE] [--batch B --lr LR --crop-pad P ...] [--task segment [--scenes N] [--test-scenes N]]'],
  eval: [evalCommand, 'eval --model FILE --data fashion-mnist [--merge SCHEDULE] [--json] [--task segment [--test-scenes N]]'],
  segment: [segmentCommand, 'segment --model FILE --image FILE.png|jpg | --scene I --out MASK.png [--scale S] [--merge SCHEDULE] [--json]  (coloured mask with a legend)'],
  predict: [predictCommand, 'predict --model FILE --image FILE.png|jpg [--merge SCHEDULE] [--json]'],
  forward: [forwardCommand, 'forward --model FILE [--preset NAME] --input IN.safetensors --out OUT.safetensors [--merge SCHEDULE]'],
  demo: [demoCommand, 'demo [--limit N] [--runs R]  (evaluate the committed Fashion-MNIST models and compare them)'],
  compress: [compressCommand, 'compress --model FILE --data fashion-mnist --target-macs RATIO [--merge SCHEDULE] [--search-epochs N] [--finetune-epochs N] [--task segment] --out FILE [--json] | --preset NAME --structure-only --target-macs RATIO [--merge SCHEDULE] [--prune search|uniform|mlp] [--search-runs N] [--runs N] --out FILE [--json]'],
  macs: [macsCommand, 'macs --preset NAME | --model FILE [--merge SCHEDULE] [--json]'],
  bench: [benchCommand, 'bench --preset NAME | --model FILE [--merge SCHEDULE] [--compare] [--threads N] [--batch B] [--runs R] [--warmup W] [--eager] [--baseline FILE] [--json]'],
  plot: [plotCommand, 'plot --log RUN/log.jsonl[,RUN2/log.jsonl] [--metrics loss,lr,...] [--x epoch|step] --out curves.svg | --tradeoff results.json [--x latency|macs] --out tradeoff.svg  (results.json: `cait demo --json` output)'],
  export: [exportCommand, 'export --model FILE [--preset NAME] | --preset NAME [--seed S] --onnx OUT.onnx [--batch B|dynamic] [--merge SCHEDULE] [--json]'],
};

function usage(): string {
  return 'usage: cait <command> [flags]\n\n' + Object.values(COMMANDS).map(([, u]) => '  cait ' + u).join('\n') +
    '\n\nSCHEDULE: ATME token merging, e.g. h@3,v@6 (halve the columns in block 3, the rows in block 6; 0-based), none to turn a saved one off;' +
    '\n  with it: --similarity keys|features|fixed (default keys), --no-prop-attn';
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
