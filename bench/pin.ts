// Pin a one-thread benchmark to one CPU, so that every runner of it (the main
// thread and the peers' worker threads) runs on the same core.
//
// Why: on this project's shared 2-vCPU machines the two vCPUs are not equally
// fast, and which one a thread lands on is the scheduler's choice. Measured
// on an AMD EPYC host (2026-12-01, bench/vit.ts, DeiT-Tiny batch 1, one
// thread, `taskset -c 0` against `-c 1`, two runs each): caitjs int8 52.3 /
// 52.3 ms against 38.0 / 38.3 ms, onnxruntime-web int8 85.7 / 86.1 against
// 59.4 / 59.4, native onnxruntime-node float 18.9 / 18.9 against 17.1 / 17.3
// (WebAssembly lost 1.38x on the slow vCPU, native code 1.10x). Unpinned, the
// main thread and a worker could sit on different vCPUs for a whole run:
// five unpinned runs gave caitjs int8 / onnxruntime-web int8 from 0.45 to
// 0.88, pinned runs 0.61 and 0.64. A ratio is only a ratio on one core.
//
// How: Linux has no affinity call in Node, so the process re-runs itself
// under `taskset -c CPU` (util-linux) with the same arguments and exits with
// the child's status; CAITJS_BENCH_CPU marks the child. Where taskset is
// missing, or the run needs more than one thread, nothing is pinned and the
// JSON says so.
import { spawnSync } from 'node:child_process';
import { UsageError } from '../src/cli/args.js';

export interface Pinning { cpu: number | null; why: string }

/**
 * `flag`: a CPU number, 'none', or undefined (= CPU 0 when `threads` is 1).
 * Returns in the pinned child (or when nothing is pinned); in the parent that
 * re-ran itself it does not return.
 */
export function pinToOneCpu(flag: string | undefined, threads: number): Pinning {
  const mark = process.env.CAITJS_BENCH_CPU;
  if (mark !== undefined) return { cpu: Number(mark), why: `taskset -c ${mark}` };
  if (flag === 'none') return { cpu: null, why: '--cpu none' };
  if (threads > 1) {
    if (flag !== undefined) throw new UsageError(`--cpu ${flag}: a run with --threads ${threads} needs more than one CPU (use --cpu none or --threads 1)`);
    return { cpu: null, why: `${threads} threads: not pinned` };
  }
  const cpu = flag === undefined ? 0 : Number(flag);
  if (!Number.isInteger(cpu) || cpu < 0) throw new UsageError(`--cpu: expected a CPU number or 'none', got '${flag}'`);
  if (process.platform !== 'linux' || spawnSync('taskset', ['-V']).status !== 0) return { cpu: null, why: 'taskset not available: not pinned' };
  const r = spawnSync('taskset', ['-c', String(cpu), process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, CAITJS_BENCH_CPU: String(cpu) } });
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}
