// Segmentation transfer results (issue #7): the committed dense and
// CAIT-compressed segmentation models, measured by the commands a user runs.
//   cait eval --task segment --model M --json        (each model, all 2,000 test scenes)
//   cait bench --model CAIT --baseline DENSE --json  (batch 1, one thread; the two
//                                                    models alternate within every round)
// Their JSON lines are stored as they came, beside the environment stamp.
//
// Usage: node --import tsx bench/segment.ts [dense] [compressed] [runs=300]
//        writes bench/results/segment.json
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { scriptArgs } from './args.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { environment } from '../src/util/timing.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const cli = scriptArgs(process.argv.slice(2), {}, `node --import tsx bench/segment.ts [dense] [compressed] [runs=300]
  Writes bench/results/segment.json (the committed file). dense, compressed: segmentation model files (default models/seg-dense and seg-cait).`);
if (cli.rest.length > 3) cli.fail(`at most three arguments (dense, compressed, runs), got ${cli.rest.length}`);
const dense = cli.rest[0] ?? 'models/seg-dense.safetensors', compressed = cli.rest[1] ?? 'models/seg-cait.safetensors';
const runs = cli.rest[2] ?? '300';
if (!/^[1-9]\d*$/.test(runs)) cli.fail(`runs: a positive integer, got '${runs}'`);
for (const f of [dense, compressed]) if (!existsSync(f)) cli.fail(`no model file '${f}'`);

function cait(...args: string[]): Record<string, any> {
  console.log(`$ cait ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cait ${args[0]} failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

const env = environment();
const ev = (m: string) => cait('eval', '--task', 'segment', '--model', m, '--json');
const d = ev(dense), c = ev(compressed);
const bench = cait('bench', '--model', compressed, '--baseline', dense, '--batch', '1', '--threads', '1', '--runs', runs, '--warmup', '30', '--json');
const out = {
  what: 'segmentation on 64x64 Fashion-MNIST scenes: cait eval --task segment --json (2,000 test scenes) per model; cait bench --model CAIT --baseline DENSE (batch 1, one thread, interleaved, medians)',
  env,
  dense: { file: dense, ...d, median_ms: bench.baseline.median_ms, macs: bench.baseline.macs, params: bench.baseline.params },
  compressed: { file: compressed, ...c, median_ms: bench.median_ms, macs: bench.macs, params: bench.params },
  speedup: bench.speedup,
  mac_ratio: bench.mac_ratio,
  miou_drop_points: +(100 * (d.miou - c.miou)).toFixed(3),
  bench,
};
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(join(ROOT, 'bench/results/segment.json'), JSON.stringify(out, null, 2) + '\n');
console.log(`dense mIoU ${(100 * d.miou).toFixed(2)}, compressed ${(100 * c.miou).toFixed(2)} (${out.miou_drop_points} points lost); ` +
  `${bench.baseline.median_ms} -> ${bench.median_ms} ms, ${bench.speedup}x faster (MACs ${bench.mac_ratio}x fewer); wrote bench/results/segment.json`);
