// ATME latency: DeiT-Tiny (random weights; latency does not depend on them),
// batch 1, one thread, dense against h@3 and h@3,v@6 on the same weights and
// input, in one process. The three models alternate within every round (the
// order rotating), after discarded warm-up rounds, so drift and the odd
// preempted run on a shared machine hit all of them; medians are compared.
// Each model runs its planned forward (src/plan.ts), as `cait bench` times it.
//
// Usage: node --import tsx bench/atme.ts [--runs 40] [--warmup 5] [--out bench/results/atme.json]
//        (npm run bench:atme) writes --out ({env, models, results})
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tensor, setBackend, getBackend } from '../src/tensor.js';
import { loadWasmSync } from '../src/backend/wasm.js';
import { createModel } from '../src/nn/model.js';
import { getPreset } from '../src/nn/presets.js';
import { Rng } from '../src/util/rng.js';
import { CaitModel } from '../src/cait/wrap.js';
import { countMacs } from '../src/cait/macs.js';
import { timeRunners, latencyStats, environment } from '../src/cli/bench.js';
import { scriptArgs } from './args.js';

const cli = scriptArgs(process.argv.slice(2), { runs: 'number', warmup: 'number', out: 'string' },
  `node --import tsx bench/atme.ts [--runs 40] [--warmup 5] [--out bench/results/atme.json]   (npm run bench:atme)
  Writes --out (by default over the committed bench/results/atme.json).`);
if (cli.rest.length) cli.fail(`unexpected argument '${cli.rest[0]}': rounds and warm-up rounds are --runs N --warmup N`);
const runs = cli.int('runs', 40, 1), warmup = cli.int('warmup', 5, 0);
const out = resolve((cli.flags.out as string | undefined) ?? fileURLToPath(new URL('./results/atme.json', import.meta.url)));
const PRESET = 'deit_tiny_patch16_224', SCHEDULES = ['', 'h@3', 'h@3,v@6'], BATCH = 1;

setBackend(loadWasmSync('auto'));
const cfg = getPreset(PRESET), vit = createModel(cfg, 0);
const rng = new Rng(1), data = new Float32Array(BATCH * 3 * 224 * 224);
for (let i = 0; i < data.length; i++) data[i] = rng.normal();
const x = Tensor.from(data, [BATCH, 3, 224, 224]);
const runners = SCHEDULES.map((m) => (m ? new CaitModel(vit, { merge: m }) : vit));

const env: Record<string, string | number> = { ...environment(), backend: getBackend().name, threads: 1 };
console.log(`node ${env.node}, V8 ${env.v8}, ${env.cpu} (${env.cores} cores, load ${env.loadavg}), ${env.backend}; ` +
  `${PRESET} batch ${BATCH}, ${runs} rounds after ${warmup} warm-up`);
const times = timeRunners(runners, x, runs, warmup, { planned: true });
const dense = latencyStats(times[0]);
const results = SCHEDULES.map((merge, i) => {
  const s = latencyStats(times[i]), macs = countMacs(cfg, merge).total;
  return { merge: merge || 'none', path: times.paths[i], ...s, gmacs: +(macs / 1e9).toFixed(4), speedup: +(dense.median_ms / s.median_ms).toFixed(3), mac_ratio: +(countMacs(cfg, '').total / macs).toFixed(3) };
});
for (const r of results)
  console.log(`  ${r.merge.padEnd(8)} ${r.gmacs.toFixed(3)} GMACs  median ${r.median_ms.toFixed(2)} ms  (min ${r.min_ms.toFixed(2)}, p90 ${r.p90_ms.toFixed(2)}, MAD ${r.mad_ms.toFixed(2)})  ` +
    `speedup ${r.speedup.toFixed(2)}x (MACs ${r.mac_ratio.toFixed(2)}x)`);

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ env: { ...env, loadavgAfter: environment().loadavg }, model: PRESET, batch: BATCH, runs, warmup, results, samples_ms: Object.fromEntries(SCHEDULES.map((m, i) => [m || 'none', times[i].map((t) => +t.toFixed(3))])) }, null, 2) + '\n');
console.log(`wrote ${out}`);
