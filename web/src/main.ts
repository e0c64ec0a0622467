// The demo page: inputs (test images, a drawing canvas, uploads), the models'
// predictions and latencies on WASM and WebGPU, and the ATME merge overlay.
// Inference runs in workers (worker.ts), one per backend.
//
// Three workers ("slots"): 'wasm', one thread, which makes the predictions
// and the merge maps; 'threads', the threaded WASM backend, timed beside it
// when the page is cross-origin isolated; 'webgpu' when the browser has an
// adapter. They run one after another, so their timings do not share cores.
//
// A new input comes first: its prediction is shown as soon as the one-thread
// worker has it (at most one timing round of the previous input later; the
// page asks for timings round by round), and the previous input's timing is
// dropped; the new input's timings follow.
//
// URL parameters: runs (timed predictions per model, default 20), warmup
// (default 3), threads (WASM threads, default min(cores, 4); 1 = no threaded
// column), gpu=0 (skip WebGPU).
//
// For tests (test/web.test.ts): document.body.dataset.state is loading |
// ready | busy | error, dataset.predicted counts inputs predicted and
// dataset.done inputs timed to the end, window.__cait holds the manifest,
// the backends, the last results and `events` ('predicted:SOURCE',
// 'timed:SOURCE', 'cancelled:SOURCE' in order).
import type { Manifest } from '../build.js';
import type { AddRequest, BackendInfo, InitRequest, ModelInfo, PredictRequest, PredictResult, Response, TimeRequest, TimeResult } from './protocol.js';
import { drawPanel } from './overlay.js';
import { latencyStats } from '../../src/util/timing.js';

interface Sample { file: string; label: number; className: string; testIndex: number }
interface Pixels { width: number; height: number; data: Uint8ClampedArray }

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const RUNS = Math.max(1, Number(params.get('runs') ?? 20) | 0);
const WARMUP = Math.max(0, Number(params.get('warmup') ?? 3) | 0);
const THREADS = Math.max(1, Number(params.get('threads') ?? Math.min(navigator.hardwareConcurrency || 1, 4)) | 0);
const USE_GPU = params.get('gpu') !== '0';

type Slot = 'wasm' | 'threads' | 'webgpu';

interface State {
  manifest: Manifest | null;
  samples: Sample[];
  backends: Partial<Record<Slot, BackendInfo>>;
  unavailable: Partial<Record<Slot, string>>;
  last: ({ source: string; truth: number | null } & Partial<Record<Slot, PredictResult>>) | null;
  predicted: number;
  done: number;
  events: string[];
  error: string | null;
}
const state: State = { manifest: null, samples: [], backends: {}, unavailable: {}, last: null, predicted: 0, done: 0, events: [], error: null };
(window as unknown as { __cait: unknown }).__cait = state;

function setState(s: 'loading' | 'ready' | 'busy' | 'error'): void { document.body.dataset.state = s; }
function status(msg: string, error = false): void {
  const el = $('status');
  el.textContent = msg;
  el.classList.toggle('error', error);
}
function fail(e: unknown): void {
  state.error = (e as Error)?.message ?? String(e);
  status(`Error: ${state.error}`, true);
  setState('error');
}

// ------------------------------------------------------------ workers

class Rpc {
  private next = 1;
  private waiting = new Map<number, (r: Response) => void>();
  readonly worker: Worker;
  constructor() {
    this.worker = new Worker('worker.js', { type: 'module' });
    this.worker.onmessage = (ev: MessageEvent<Response>) => { this.waiting.get(ev.data.id)?.(ev.data); this.waiting.delete(ev.data.id); };
    this.worker.onerror = (ev) => { for (const [, w] of this.waiting) w({ id: 0, ok: false, error: `worker failed: ${ev.message}` }); this.waiting.clear(); };
  }
  call(req: InitRequest | PredictRequest | TimeRequest | AddRequest, transfer: Transferable[] = []): Promise<Response> {
    const id = this.next++;
    return new Promise((ok) => { this.waiting.set(id, ok); this.worker.postMessage({ ...req, id }, transfer); });
  }
}
const workers: Partial<Record<Slot, Rpc>> = {};

// ------------------------------------------------------------ environment badges

function renderEnv(): void {
  const env = $('env');
  env.textContent = '';
  const badge = (text: string, cls = '', title = '') => {
    const b = document.createElement('span');
    b.className = `badge ${cls}`; b.textContent = text; if (title) b.title = title;
    env.append(b);
  };
  const w = state.backends.wasm, t = state.backends.threads;
  if (w) badge(`WASM SIMD: ${w.name.replace(/^wasm-/, '')}`, 'on');
  else if (state.unavailable.wasm) badge(`WASM: ${state.unavailable.wasm}`, 'off');
  else badge('WASM: starting…');
  badge(crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated', crossOriginIsolated ? 'on' : 'off');
  if (t) badge(`threads: ${t.threads} (Web Workers, shared memory)`, 'on');
  else if (state.unavailable.threads) badge(`threads: off, ${visitorWhy('threads', state.unavailable.threads)}`, 'off', technical(state.unavailable.threads));
  else if (w) badge('threads: starting…');
  const g = state.backends.webgpu;
  if (g) badge(`WebGPU: ${g.name}`, 'on');
  else if (state.unavailable.webgpu) badge(`WebGPU: not available (${visitorWhy('webgpu', state.unavailable.webgpu)})`, 'off', technical(state.unavailable.webgpu));
  else if (USE_GPU) badge('WebGPU: starting…');
}

/** A backend's reason for the tooltip, without the hints meant for developers (Node APIs, browser flags). */
function technical(why: string): string {
  return why.replace(/;?\s*in Node use [^)]*/g, '').replace(/;?\s*headless Chromium needs [^)]*/g, '').replace(/\(\s*\)/g, '').trim();
}

/** What a visitor can act on, from a backend's technical reason (the tooltip keeps it, see technical()). */
function visitorWhy(slot: Slot, why: string): string {
  if (/turned off/.test(why)) return why;
  if (slot === 'threads') {
    if (/isolat|SharedArrayBuffer/i.test(why)) return 'this copy of the page is served without cross-origin isolation, which browsers require for shared memory between threads; one thread is used';
    return 'this browser could not start them; one thread is used';
  }
  if (/navigator\.gpu/.test(why)) return 'this browser does not offer WebGPU, or has it switched off';
  if (/requestAdapter|adapter/i.test(why)) return 'no usable graphics adapter was found';
  return 'it did not start in this browser';
}

// ------------------------------------------------------------ results

const pct = (p: number) => `${(100 * p).toFixed(1)}%`;
const ms = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(2) : v.toFixed(1)) + ' ms' : '—');

function renderResults(): void {
  const table = $('results');
  const infos = state.backends.wasm?.models ?? [];
  const last = state.last;
  const nThreads = state.backends.threads?.threads;
  table.querySelector('thead')!.innerHTML = '<tr><th>model</th><th>MMACs</th><th>params</th><th>test acc.</th><th>prediction (WASM)</th>' +
    `<th>WASM, 1 thread</th><th>WASM, ${nThreads ? `${nThreads} threads` : 'threads'}</th><th>WebGPU prediction</th><th>WebGPU latency</th></tr>`;
  const tbody = table.querySelector('tbody')!;
  tbody.textContent = '';
  $('truth').textContent = last ? `${last.source}${last.truth !== null ? ` · true class: ${infos[0]?.classes[last.truth] ?? last.truth}` : ''}` : '';
  const na = (why: string | undefined) => (why ? `<span class="na" title="${esc(technical(why))}">n/a</span>` : last ? '<span class="na">…</span>' : '<span class="na">—</span>');
  // header text per column: the phone layout shows each row as a card with these as labels
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent ?? '');
  infos.forEach((info, i) => {
    const tr = document.createElement('tr');
    tr.dataset.model = info.label;
    const td = (html: string, cls = '') => { const c = document.createElement('td'); if (cls) c.className = cls; c.innerHTML = html; tr.append(c); return c; };
    const prediction = (slot: Slot) => {
      const r = last?.[slot]?.models[i];
      if (!r) return td(na(state.unavailable[slot]));
      const order = r.probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
      // by name: a visitor's model has classes of its own (none of them may be the test image's)
      const truth = last!.truth === null ? null : infos[0]?.classes[last!.truth];
      const ok = truth == null || !info.classes.includes(truth) ? '' : info.classes[r.top] === truth ? 'ok' : 'bad';
      const c = td(`<span class="pred ${ok}" data-class="${r.top}">${esc(info.classes[r.top])}</span> <span class="num">${pct(r.probs[r.top])}</span>` +
        `<span class="alt">${order.slice(1, 3).map(([p, k]) => `${esc(info.classes[k])} ${pct(p)}`).join(' · ')}</span>`);
      c.dataset.slot = slot;
      return c;
    };
    const latency = (slot: Slot) => {
      const r = last?.[slot]?.models[i];
      if (!r) return td(na(state.unavailable[slot]), 'num');
      if (!Number.isFinite(r.median_ms)) return td('<span class="na">timing…</span>', 'num');
      const base = last![slot]!.models[0]?.median_ms;
      const speed = i > 0 && base && Number.isFinite(r.median_ms) ? `<span class="alt">${(base / r.median_ms).toFixed(2)}x vs ${esc(infos[0].label)}</span>` : '';
      const c = td(`${ms(r.median_ms)}${speed}`, 'num');
      c.dataset.slot = slot;
      return c;
    };
    const acc = state.manifest?.models[i]?.accuracy;
    td(`<strong>${esc(info.label)}</strong><span class="alt">${esc(info.merge ? `merge ${info.merge}` : 'no merging')}${info.compact ? ' · pruned widths' : ''}${info.int8 ? ' · int8' : ''}</span>`);
    td((info.macs / 1e6).toFixed(2), 'num');
    td(`${(info.params / 1e3).toFixed(0)}k`, 'num');
    td(acc !== undefined ? pct(acc) : '<span class="na" title="not measured for this model file (the page shows the committed models\' results, bench/results/demo.json)">—</span>', 'num');
    prediction('wasm'); latency('wasm'); latency('threads'); prediction('webgpu'); latency('webgpu');
    [...tr.children].forEach((c, k) => { if (k > 0) (c as HTMLElement).dataset.label = heads[k] ?? ''; });
    tbody.append(tr);
  });
  if (!infos.length && state.manifest && !state.manifest.models.length) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="9">No models were built into this page: train one (<code>cait train --preset vit_fmnist --data fashion-mnist --out runs/fmnist</code>), copy it to <code>models/fmnist-dense.safetensors</code> and run <code>npm run web</code> again.</td>';
    tbody.append(tr);
  }
}

function renderPreview(r: PredictResult): void {
  const c = $<HTMLCanvasElement>('preview');
  drawPanel(c, { input: r.input, size: r.inputSize, patch: 1, grid: [1, 1], map: null, scale: Math.floor(160 / r.inputSize), lines: false });
  $('preview-caption').textContent = `model input (${r.inputSize}×${r.inputSize})`;
}

function renderOverlays(r: PredictResult): void {
  const root = $('overlays');
  root.textContent = '';
  const infos = state.backends.wasm?.models ?? [];
  const merged = r.models.map((m, i) => ({ m, info: infos[i] })).filter(({ m }) => m.steps.length);
  if (!merged.length) {
    root.innerHTML = '<p class="note">None of the loaded models merges tokens.</p>';
    return;
  }
  for (const { m, info } of merged) {
    const row = document.createElement('div');
    row.className = 'overlay-row';
    row.dataset.model = m.label;
    row.innerHTML = `<h3>${esc(m.label)} <small class="alt" style="display:inline">schedule ${esc(info.merge)}</small></h3>`;
    const scale = Math.max(2, Math.floor(160 / info.imgSize));
    const panel = (map: number[] | null, caption: string) => {
      const fig = document.createElement('figure'), c = document.createElement('canvas'), cap = document.createElement('figcaption');
      drawPanel(c, { input: r.input, size: info.imgSize, patch: info.patchSize, grid: info.grid, map, scale });
      cap.textContent = caption;
      fig.append(c, cap);
      row.append(fig);
    };
    const [gh, gw] = info.grid;
    panel(null, `patches ${gh}×${gw} = ${gh * gw} tokens`);
    for (const s of m.steps) panel(s.map, `block ${s.block}, ${s.axis}: ${s.newGrid[0]}×${s.newGrid[1]} = ${s.newGrid[0] * s.newGrid[1]} tokens`);
    root.append(row);
  }
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// ------------------------------------------------------------ predicting

/** Increases with every input: a run whose generation is no longer current stops at its next round. */
let generation = 0;
let pending = 0;   // runs still between their start and their end (for dataset.state)

function event(e: string): void { state.events.push(e); }

/** The last input, predicted again when a model is added. */
let lastInput: { px: Pixels; source: string; truth: number | null } | null = null;

async function predict(px: Pixels, source: string, truth: number | null): Promise<void> {
  if (!workers.wasm || !state.backends.wasm) return;
  lastInput = { px, source, truth };
  const gen = ++generation, current = () => gen === generation;
  const prev = state.last;
  if (prev && pending > 0) event(`cancelled:${prev.source}`);
  pending++;
  setState('busy');
  state.last = { source, truth };
  renderResults();
  status(prev && pending > 1 ? `New input, ${source}: predicting it first (the timing of the previous input is stopped) …` : `Predicting ${source} …`);
  const call = async (slot: Slot, req: PredictRequest | TimeRequest, transfer: Transferable[] = []) => {
    const res = await workers[slot]!.call(req, transfer);
    if (!res.ok) throw new Error(`${slot}: ${res.error}`);
    return res;
  };
  const predictOn = async (slot: Slot, overlay: boolean) => {
    const data = new Uint8ClampedArray(px.data);   // each worker gets its own copy (transferred)
    return ((await call(slot, { op: 'predict', image: { width: px.width, height: px.height, data }, overlay }, [data.buffer])) as { result: PredictResult }).result;
  };
  try {
    // 1. the prediction (one thread): shown at once
    const w = await predictOn('wasm', true);
    if (!current()) return;
    const last = state.last!;
    last.wasm = w;
    renderPreview(w); renderOverlays(w); renderResults();
    state.predicted++;
    document.body.dataset.predicted = String(state.predicted);
    event(`predicted:${source}`);
    // 2. the timings, one backend at a time so that they do not share the CPU, round by round
    for (const slot of ['wasm', 'threads', 'webgpu'] as const) {
      if (!state.backends[slot]) continue;
      const name = slot === 'wasm' ? 'WASM, 1 thread' : slot === 'threads' ? 'WASM threads' : 'WebGPU';
      try {
        const r = slot === 'wasm' ? w : await predictOn(slot, false);
        if (!current()) return;
        last[slot] = r;   // its prediction now, its latency when the rounds are done
        renderResults();
        const times = r.models.map(() => [] as number[]);
        for (let round = 0; round < WARMUP + RUNS; round++) {
          status(`${source}: predicted; timing on ${name} (${round < WARMUP ? 'warm-up' : `run ${round - WARMUP + 1} of ${RUNS}`}) …`);
          const t = ((await call(slot, { op: 'time', round })) as { timed: TimeResult }).timed;
          if (!current()) return;
          if (round >= WARMUP) t.ms.forEach((v, k) => times[k].push(v));
        }
        times.forEach((t, k) => {
          const st = latencyStats(t);
          Object.assign(r.models[k], { median_ms: st.median_ms, p10_ms: st.p10_ms, p90_ms: st.p90_ms, runs: st.runs });
        });
      } catch (e) {
        if (slot === 'wasm') throw e;
        state.unavailable[slot] = (e as Error).message; delete state.backends[slot]; renderEnv();
      }
      renderResults();
    }
    state.done++;
    document.body.dataset.done = String(state.done);
    event(`timed:${source}`);
    status(`${source}: done (${RUNS} timed runs per model and backend).`);
  } catch (e) { if (current()) fail(e); } finally {
    pending--;
    if (current() && state.error === null) setState('ready');
  }
}

// ------------------------------------------------------------ inputs

const draw = $<HTMLCanvasElement>('draw');
const dctx = draw.getContext('2d', { willReadFrequently: true })!;
function clearDrawing(): void { dctx.fillStyle = '#000'; dctx.fillRect(0, 0, draw.width, draw.height); }

function canvasPixels(): Pixels {
  const d = dctx.getImageData(0, 0, draw.width, draw.height);
  return { width: d.width, height: d.height, data: d.data };
}

/** Pixels of an image file or URL, exactly as stored (no colour conversion, no premultiplying). */
async function decode(blob: Blob, maxSide = 512): Promise<Pixels> {
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const k = Math.min(1, maxSide / Math.max(bmp.width, bmp.height));
  const w = Math.max(1, Math.round(bmp.width * k)), h = Math.max(1, Math.round(bmp.height * k));
  const c = new OffscreenCanvas(w, h), ctx = c.getContext('2d', { willReadFrequently: true })!;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bmp, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h);
  return { width: w, height: h, data: d.data };
}

/** Show pixels in the drawing canvas (scaled to fit, black around), so the user can draw on top. */
function paint(px: Pixels, smooth: boolean): void {
  clearDrawing();
  const c = new OffscreenCanvas(px.width, px.height);
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(px.data), px.width, px.height), 0, 0);
  const k = Math.min(draw.width / px.width, draw.height / px.height), w = px.width * k, h = px.height * k;
  dctx.imageSmoothingEnabled = smooth;
  dctx.drawImage(c, (draw.width - w) / 2, (draw.height - h) / 2, w, h);
}

/** Fashion-MNIST is light on dark: invert photos on a light background (auto: when the border is mostly light). */
function maybeInvert(px: Pixels, mode: string): Pixels {
  const { width: w, height: h, data } = px;
  let sum = 0, n = 0;
  for (let x = 0; x < w; x++) for (const y of [0, h - 1]) { const i = 4 * (y * w + x); sum += (data[i] + data[i + 1] + data[i + 2]) / 765; n++; }
  for (let y = 0; y < h; y++) for (const x of [0, w - 1]) { const i = 4 * (y * w + x); sum += (data[i] + data[i + 1] + data[i + 2]) / 765; n++; }
  if (!(mode === 'on' || (mode === 'auto' && sum / n > 0.5))) return px;
  const out = new Uint8ClampedArray(data);
  for (let i = 0; i < out.length; i += 4) { out[i] = 255 - out[i]; out[i + 1] = 255 - out[i + 1]; out[i + 2] = 255 - out[i + 2]; out[i + 3] = 255; }
  return { width: w, height: h, data: out };
}

async function pickSample(i: number): Promise<void> {
  const s = state.samples[i];
  document.querySelectorAll<HTMLElement>('.samples button').forEach((b) => b.classList.toggle('selected', b.dataset.index === String(i)));
  const px = await decode(await (await fetch(`samples/${s.file}`)).blob());
  paint(px, false);
  await predict(px, `test image #${s.testIndex}`, s.label);
}

/**
 * The order of the sample buttons (data-index stays the samples.json index):
 * first the sneaker, which every demo model classifies right, so the page
 * opens on a fair example; the coat, which all four models take for a shirt,
 * is kept but shown last.
 */
const LEAD = 'Sneaker', LAST = 'Coat';
function sampleOrder(): number[] {
  const rank = (s: Sample) => (s.className === LEAD ? -1 : s.className === LAST ? 1 : 0);
  return state.samples.map((_, i) => i).sort((a, b) => rank(state.samples[a]) - rank(state.samples[b]) || a - b);
}

function setupInputs(): void {
  const box = $('samples');
  sampleOrder().forEach((i) => {
    const s = state.samples[i];
    const b = document.createElement('button');
    b.type = 'button'; b.title = `Fashion-MNIST test image #${s.testIndex}: ${s.className}`;
    b.dataset.index = String(i);
    b.innerHTML = `<img src="samples/${esc(s.file)}" alt="${esc(s.className)}"><span>${esc(s.className)}</span>`;
    b.onclick = () => { void pickSample(i); };
    box.append(b);
  });
  clearDrawing();
  let drawing = false, lx = 0, ly = 0;
  const pos = (e: PointerEvent) => { const r = draw.getBoundingClientRect(); return [(e.clientX - r.left) * draw.width / r.width, (e.clientY - r.top) * draw.height / r.height]; };
  draw.addEventListener('pointerdown', (e) => {
    drawing = true; [lx, ly] = pos(e); draw.setPointerCapture(e.pointerId);
    document.querySelectorAll('.samples button').forEach((b) => b.classList.remove('selected'));
    dctx.fillStyle = '#fff'; dctx.beginPath(); dctx.arc(lx, ly, 11, 0, 2 * Math.PI); dctx.fill();
  });
  draw.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    const [x, y] = pos(e);
    dctx.strokeStyle = '#fff'; dctx.lineWidth = 22; dctx.lineCap = 'round'; dctx.lineJoin = 'round';
    dctx.beginPath(); dctx.moveTo(lx, ly); dctx.lineTo(x, y); dctx.stroke();
    [lx, ly] = [x, y];
  });
  const end = () => { if (!drawing) return; drawing = false; void predict(canvasPixels(), 'your drawing', null); };
  draw.addEventListener('pointerup', end);
  draw.addEventListener('pointercancel', end);
  $('clear').onclick = () => { clearDrawing(); document.querySelectorAll('.samples button').forEach((b) => b.classList.remove('selected')); };
  const file = $<HTMLInputElement>('file');
  file.onchange = async () => {
    const f = file.files?.[0];
    if (!f) return;
    try {
      const px = maybeInvert(await decode(f), $<HTMLSelectElement>('invert').value);
      paint(px, true);
      document.querySelectorAll('.samples button').forEach((b) => b.classList.remove('selected'));
      await predict(px, f.name, null);
    } catch (e) { status(`${f.name}: ${(e as Error).message}`, true); }
    file.value = '';
  };
}

// ------------------------------------------------------------ the visitor's own model

/**
 * Loads a model file the visitor picked on every running backend, after the
 * demo models, then predicts the current input again. The timing still
 * running is stopped first (the workers' model lists change). A file a
 * worker refuses (not a model, a config it cannot run) is reported in the
 * status line and changes nothing: the one-thread worker, which makes the
 * predictions, reads it first; a backend that then fails on it is dropped.
 */
async function addVisitorModel(f: File): Promise<void> {
  if (!workers.wasm || !state.backends.wasm) throw new Error('the page has not finished loading');
  const taken = new Set(state.backends.wasm.models.map((m) => m.label));
  const base = f.name.replace(/\.safetensors$/i, '') || 'model';
  let label = base;
  for (let k = 2; taken.has(label); k++) label = `${base} (${k})`;
  status(`Loading ${f.name} …`);
  const bytes = await f.arrayBuffer();
  generation++;   // stop the timing in progress at its next round
  while (pending > 0) await new Promise((ok) => setTimeout(ok, 10));
  for (const slot of ['wasm', 'threads', 'webgpu'] as const) {
    const rpc = workers[slot], info = state.backends[slot];
    if (!rpc || !info) continue;
    const copy = bytes.slice(0);
    const res = await rpc.call({ op: 'add', label, file: f.name, bytes: copy }, [copy]);
    if (res.ok) { info.models.push((res as { added: ModelInfo }).added); continue; }
    if (slot === 'wasm') throw new Error(res.error);
    state.unavailable[slot] = `${f.name}: ${res.error}`; delete state.backends[slot]; rpc.worker.terminate(); delete workers[slot];
  }
  renderEnv(); renderResults();
  event(`added:${label}`);
  if (lastInput) await predict(lastInput.px, lastInput.source, lastInput.truth);
  else { status(`${label} added.`); setState('ready'); }
}

function setupModelPicker(): void {
  const input = $<HTMLInputElement>('model-file');
  input.onchange = async () => {
    const f = input.files?.[0];
    input.value = '';
    if (!f) return;
    try { await addVisitorModel(f); } catch (e) {
      const msg = (e as Error).message;   // the loader's errors name the file already
      status(msg.startsWith(f.name) ? msg : `${f.name}: ${msg}`, true);
      event(`refused:${f.name}`);
      if (pending === 0 && state.error === null) setState('ready');
    }
  };
}

// ------------------------------------------------------------ start

async function start(): Promise<void> {
  $('runs').textContent = String(RUNS);
  renderEnv();
  const [manifest, samples] = await Promise.all([
    fetch('manifest.json').then((r) => { if (!r.ok) throw new Error(`manifest.json: HTTP ${r.status}`); return r.json() as Promise<Manifest>; }),
    fetch('samples/samples.json').then((r) => (r.ok ? (r.json() as Promise<Sample[]>) : [])),
  ]);
  state.manifest = manifest; state.samples = samples;
  setupInputs();
  setupModelPicker();
  if (!manifest.models.length) { renderResults(); renderEnv(); status('No models in this build.'); setState('ready'); return; }
  const models = manifest.models.map((m) => ({ label: m.label, url: new URL(`models/${m.file}`, location.href).href }));
  const wasmBase = new URL('wasm/', location.href).href;
  const init = async (slot: Slot, threads: number) => {
    const rpc = new Rpc();
    workers[slot] = rpc;
    const res = await rpc.call({ op: 'init', kind: slot === 'webgpu' ? 'webgpu' : 'wasm', wasmBase, models, threads });
    if (res.ok && slot === 'threads' && (res as { info: BackendInfo }).info.threads < 2) {
      state.unavailable.threads = (res as { info: BackendInfo }).info.note ?? 'the threaded backend did not start';
      rpc.worker.terminate(); delete workers[slot];
    } else if (res.ok) state.backends[slot] = (res as { info: BackendInfo }).info;
    else { state.unavailable[slot] = res.error.replace(/^WebGPU:\s*/, ''); rpc.worker.terminate(); delete workers[slot]; }
    renderEnv();
    return res;
  };
  status('Loading the kernels and models …');
  const wasm = await init('wasm', 1);
  if (!wasm.ok) throw new Error(`WASM backend: ${wasm.error}`);
  renderResults();
  if (THREADS < 2) state.unavailable.threads = 'turned off (threads=1)';
  else if (!crossOriginIsolated) state.unavailable.threads = 'not cross-origin isolated (no SharedArrayBuffer): the server must send COOP/COEP headers, as `npm run web` does';
  else { status('Starting the WASM thread pool …'); await init('threads', THREADS); }
  if (USE_GPU) { status('Starting WebGPU …'); await init('webgpu', 1); } else state.unavailable.webgpu = 'turned off (gpu=0)';
  renderEnv();
  setState('ready');
  if (samples.length) await pickSample(sampleOrder()[0]);
}

start().catch(fail);
