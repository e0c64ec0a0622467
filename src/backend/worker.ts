// The worker side of ThreadedWasmBackend (./threads.ts): the mailbox layout
// both sides agree on, and the worker's source as a string.
//
// Why a string: the same code must start as a Node worker_threads Worker and
// as a browser Web Worker, from the compiled package (dist/) and from the
// TypeScript sources run by tsx alike. A file next to this one would need a
// loader in the worker under tsx (the .js path does not exist there), and a
// function turned into a string by Function.prototype.toString picks up the
// transpiler's helpers. So the worker is plain ES2020 here, started with
// `eval: true` (Node) or from a Blob URL (browsers).
//
// The worker instantiates the shared-memory build over the one shared
// WebAssembly.Memory (it owns no heap: kernels hold no runtime globals, and
// their only static data, read-only constant tables, are written with the
// same bytes by every instance, so instances do not step on each other),
// then loops:
//   wait until SEQ changes (spin SPIN polls, then Atomics.wait);
//   KERNEL QUIT: quit; else claim the job (CLAIM 0 -> 1; the caller sets it to
//   2 when it gave up on this worker and ran the part itself: then skip it),
//   call kernel KERNEL with NARGS float64 arguments, or for KERNEL PROGRAM
//   run the program at byte offset arg 0, arg 1 float64s long (below);
//   on a throw, write the message and set ERROR;  DONE = SEQ; notify DONE.
// The main thread writes the arguments and KERNEL before it bumps SEQ
// (Atomics.store orders them), so the worker never reads a half-written job.

/** Bytes of one worker's mailbox; each on its own cache lines. */
export const BOX_BYTES = 512;
/** Int32 slots of a mailbox. */
export const SEQ = 0, KERNEL = 1, NARGS = 2, DONE = 3, ERROR = 4, READY = 5, CLAIM = 6;
/** Int32 slot: polls a worker spins after a job before it sleeps; 0: workerData's spin. The pool sets it after calibrating (./threads.ts). */
export const SPIN = 7;
/**
 * Int32 slots: the worker is (about to be) asleep on SEQ / the caller on DONE.
 * A side notifies only when the other one sleeps (Firefox's Atomics.notify is
 * not free even with nobody waiting). No wake-up is lost: each sleeper sets
 * its flag, then re-reads the word before Atomics.wait, and each waker writes
 * the word, then reads the flag (sequentially consistent atomics: one of the
 * two sees the other's write).
 */
export const SLEEPING = 8, WAITING = 9;
/** KERNEL values that are not kernel ids: leave the loop; run a program. */
export const QUIT = -1, PROGRAM = -2;
/**
 * A program: one planned forward's steps for a worker to run alone (src/plan.ts
 * runs a batch's slices at once, ThreadedWasmBackend.prepareParallel encodes
 * them), float64s in the heap, each step [op, n, n arguments]: op >= 0 calls
 * kernel op; PROG_COPY (dst, src, bytes) copies heap bytes (a plan's
 * constants); PROG_LOGF (x, y, n) is WasmBackend.logf (Math.log rounded to f32).
 */
export const PROG_COPY = -1, PROG_LOGF = -2;
/** Float64 slot where the arguments start, and how many fit. */
export const ARGS_F64 = 8, MAX_ARGS = 24;
/** Byte offset and length (UTF-16 units) of the error message. */
export const MSG_BYTE = 256, MSG_CHARS = 120;
/** READY values. */
export const READY_OK = 1, READY_FAILED = 2;

/**
 * workerData / first message: { module, memory, box, kernels, spin }.
 * box: byte offset of this worker's mailbox; kernels: export names by index.
 */
export const WORKER_SOURCE = `'use strict';
const QUIT = ${QUIT}, PROGRAM = ${PROGRAM}, PROG_COPY = ${PROG_COPY}, PROG_LOGF = ${PROG_LOGF};
const SEQ = ${SEQ}, KERNEL = ${KERNEL}, NARGS = ${NARGS}, DONE = ${DONE}, ERROR = ${ERROR}, READY = ${READY}, CLAIM = ${CLAIM}, SPIN = ${SPIN}, SLEEPING = ${SLEEPING}, WAITING = ${WAITING};
const ARGS_F64 = ${ARGS_F64}, MSG_BYTE = ${MSG_BYTE}, MSG_CHARS = ${MSG_CHARS};
function fail(d, i32, e) {
  const msg = String((e && e.message) || e).slice(0, MSG_CHARS);
  const u16 = new Uint16Array(d.memory.buffer, d.box + MSG_BYTE, MSG_CHARS + 1);
  for (let i = 0; i < msg.length; i++) u16[i] = msg.charCodeAt(i);
  u16[msg.length] = 0;
  Atomics.store(i32, ERROR, 1);
}
function runProgram(d, fns, ptr, len) {
  // views made here: the heap may have grown since the last program
  const p = new Float64Array(d.memory.buffer, ptr, len), a = [];
  for (let i = 0; i < len;) {
    const op = p[i], n = p[i + 1];
    i += 2;
    if (op >= 0) {
      a.length = n;
      for (let k = 0; k < n; k++) a[k] = p[i + k];
      fns[op].apply(null, a);
    } else if (op === PROG_COPY) {
      new Uint8Array(d.memory.buffer).copyWithin(p[i], p[i + 1], p[i + 1] + p[i + 2]);
    } else if (op === PROG_LOGF) {
      const f = new Float32Array(d.memory.buffer), x = p[i] >> 2, y = p[i + 1] >> 2;
      for (let k = 0, m = p[i + 2]; k < m; k++) f[y + k] = Math.log(f[x + k]);
    } else throw new Error('bad program step ' + op);
    i += n;
  }
}
function start(d) {
  const i32 = new Int32Array(d.memory.buffer, d.box, ${BOX_BYTES / 4});
  const f64 = new Float64Array(d.memory.buffer, d.box, ${BOX_BYTES / 8});
  let fns;
  try {
    const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory,
      abort: (_m, _f, line, col) => { throw new Error('wasm abort at ' + line + ':' + col); } } });
    fns = d.kernels.map((k) => inst.exports[k]);
  } catch (e) {
    fail(d, i32, e);
    Atomics.store(i32, READY, ${READY_FAILED});
    Atomics.notify(i32, READY);
    Atomics.notify(i32, DONE);
    return;
  }
  Atomics.store(i32, READY, ${READY_OK});
  Atomics.notify(i32, READY);
  // jobs may have been posted before this worker started: SEQ was 0 at spawn
  let seen = 0;
  const args = [];
  for (;;) {
    let s = Atomics.load(i32, SEQ);
    for (let n = Atomics.load(i32, SPIN) || d.spin; s === seen && n > 0; n--) s = Atomics.load(i32, SEQ);
    while (s === seen) {
      Atomics.store(i32, SLEEPING, 1);
      if (Atomics.load(i32, SEQ) === seen) Atomics.wait(i32, SEQ, seen);
      Atomics.store(i32, SLEEPING, 0);
      s = Atomics.load(i32, SEQ);
    }
    seen = s;
    const k = i32[KERNEL];
    if (k === QUIT) { Atomics.store(i32, DONE, s); Atomics.notify(i32, DONE); return; }
    if (Atomics.compareExchange(i32, CLAIM, 0, 1) !== 0) { Atomics.store(i32, DONE, s); Atomics.notify(i32, DONE); continue; }
    const n = i32[NARGS];
    args.length = n;
    for (let i = 0; i < n; i++) args[i] = f64[ARGS_F64 + i];
    try {
      if (k === PROGRAM) runProgram(d, fns, args[0], args[1]);
      else fns[k].apply(null, args);
    } catch (e) { fail(d, i32, e); }
    Atomics.store(i32, DONE, s);
    if (Atomics.load(i32, WAITING)) Atomics.notify(i32, DONE);
  }
}
if (typeof process !== 'undefined' && process.versions && process.versions.node) {
  const wt = require('node:worker_threads');
  start(wt.workerData);
} else {
  self.onmessage = (ev) => { self.onmessage = null; start(ev.data); self.close(); };
}
`;
