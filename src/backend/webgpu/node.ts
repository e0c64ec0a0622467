// WebGPU in Node: dawn through the optional `webgpu` package, with routes to a
// software adapter where there is no GPU (CI). Tried in this order until one
// gives a device that passes a smoke test (a fill read back):
//
//   native       dawn's default choice: a real GPU through Vulkan (or Metal, D3D).
//                Not tried on Linux without a GPU device node (/dev/dri, ...).
//   opengles     OpenGL ES 3.1+ on Mesa's llvmpipe (CPU) through EGL without a
//                display: create(['backend=opengles']), featureLevel 'compatibility',
//                EGL_PLATFORM=surfaceless, libEGL (Debian: libegl1 + libegl-mesa0;
//                libegl-dev provides the unversioned libEGL.so dawn opens).
//                Before SwiftShader because it is 4-5x faster here (DeiT-Tiny,
//                batch 1: ~2.3 s against ~10 s a forward on 2 cores); its heap
//                ceiling is 128 MiB (maxStorageBufferBindingSize).
//   swiftshader  Vulkan on SwiftShader (CPU). Debian's `chromium` package ships
//                the driver: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json,
//                plus the Vulkan loader (libvulkan1). Set here, before the dawn
//                instance is created, when the file exists and the variable is unset.
//                Heap ceiling 1 GiB.
//
// (Debian's lavapipe Vulkan driver does not work with dawn: it lacks required
// dynamic-indexing features.) scripts/setup-webgpu.sh installs both software routes.
// CAIT_WEBGPU=native|swiftshader|opengles picks one route (and only it);
// CAIT_WEBGPU_ICD names another SwiftShader ICD file.
import { existsSync } from 'node:fs';
import type { Gpu, GpuAdapter, GpuDevice, GpuRequestAdapterOptions } from './gpu.js';
import { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';
import { call } from '../kernels.js';

export type WebGpuRoute = 'native' | 'swiftshader' | 'opengles';
export const ROUTES: readonly WebGpuRoute[] = ['native', 'opengles', 'swiftshader'];

export const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/chromium-browser/vk_swiftshader_icd.json',
  '/opt/google/chrome/vk_swiftshader_icd.json',
];

export interface NodeWebGpu {
  backend: WebGpuBackend;
  route: WebGpuRoute;
  /** Adapter description, e.g. "llvmpipe-llvm-15-0-6-256-bits- / OpenGL version OpenGL ES 3.2 Mesa 22.3.6 via opengles". */
  adapter: string;
  /** Why earlier routes were passed over. */
  skipped: string[];
}

/** What to do when no route gives a device (the last line of NoWebGpuError's message). */
export const NO_WEBGPU_HELP = "to get one: the optional npm package 'webgpu' (npm install webgpu), and without a GPU a software adapter " +
  '(Debian: apt-get install libegl1 libegl-mesa0 libegl-dev libgl1-mesa-dri for OpenGL ES on llvmpipe, or chromium libvulkan1 for SwiftShader Vulkan; ' +
  "a clone's scripts/setup-webgpu.sh installs both); or leave WebGPU out and run on the default WASM backend";

export class NoWebGpuError extends Error {
  constructor(readonly reasons: string[]) {
    super(`no WebGPU adapter could be created:\n  ${reasons.join('\n  ')}\n${NO_WEBGPU_HELP}`);
  }
}

/** Why a route may give no adapter. */
const ROUTE_NEEDS: Record<WebGpuRoute, string> = {
  native: ' (no GPU driver found)',
  opengles: " (it needs Mesa's EGL and llvmpipe: libEGL.so, Debian libegl1 libegl-mesa0 libegl-dev libgl1-mesa-dri)",
  swiftshader: ' (it needs the Vulkan loader: libvulkan.so.1, Debian libvulkan1)',
};

/** Device nodes of Linux GPU drivers (DRM, NVIDIA, WSL, AMD compute). */
const GPU_NODES = ['/dev/dri', '/dev/nvidia0', '/dev/dxg', '/dev/kfd'];

/** False only where a GPU is surely absent (Linux without any GPU device node): skips dawn's noisy failing probe. */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux' || process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  return GPU_NODES.some((f) => existsSync(f));
}

type DawnModule = { create(args: string[]): Gpu; globals: Record<string, unknown> };

let dawn: DawnModule | null = null;
async function loadDawn(): Promise<DawnModule> {
  if (dawn) return dawn;
  try {
    const spec = 'webgpu';   // a variable: bundlers and tsc leave the optional dependency alone
    dawn = (await import(spec)) as DawnModule;
    return dawn;
  } catch (e) {
    throw new NoWebGpuError([`the optional npm package 'webgpu' (dawn.node) is not installed or does not load here: ${(e as Error).message.split('\n')[0]}`]);
  }
}

function describe(a: GpuAdapter): string {
  const i = a.info ?? {};
  return [...new Set([i.device, i.description, i.vendor, i.architecture].filter(Boolean))].join(' / ') || 'unknown adapter';
}

/** Limits worth raising above WebGPU's defaults when the adapter allows (the heap is one storage binding). */
function wantedLimits(a: GpuAdapter): Record<string, number> {
  const l = a.limits, out: Record<string, number> = {};
  for (const k of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupsPerDimension'])
    if (typeof l[k] === 'number') out[k] = l[k] as number;
  return out;
}

async function smoke(be: WebGpuBackend): Promise<void> {
  const p = be.alloc(4);
  call(be, 'fill', { y: p, n: 4, v: 1.5 });
  const got = await be.readAsync(p, 4);
  be.free(p);
  if (!got.every((v) => v === 1.5)) throw new Error(`smoke test read back [${Array.from(got)}] instead of 1.5s`);
}

async function tryRoute(mod: DawnModule, route: WebGpuRoute, o: WebGpuBackendOptions): Promise<NodeWebGpu | string> {
  let args: string[] = [];
  let request: GpuRequestAdapterOptions | undefined;
  if (route === 'swiftshader') {
    const icd = process.env.CAIT_WEBGPU_ICD ?? process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICDS.find((f) => existsSync(f));
    if (!icd) return `swiftshader: no SwiftShader Vulkan driver (looked for ${SWIFTSHADER_ICDS.join(', ')}; Debian: apt-get install chromium libvulkan1)`;
    if (!existsSync(icd)) return `swiftshader: ICD file ${icd} does not exist`;
    process.env.VK_ICD_FILENAMES = icd;
    args = ['backend=vulkan'];
  } else if (route === 'opengles') {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    args = ['backend=opengles'];
    request = { featureLevel: 'compatibility' };
  }
  let device: GpuDevice | null = null;
  try {
    const gpu = mod.create(args);
    const adapter = await gpu.requestAdapter(request);
    if (!adapter) return `${route}: no adapter${ROUTE_NEEDS[route]}`;
    const name = `${describe(adapter)} via ${route}`;
    device = await adapter.requestDevice({ requiredLimits: wantedLimits(adapter), label: 'cait' });
    const be = new WebGpuBackend(device, { ...o, info: name });
    // keep the instance alive as long as the backend (dawn.node frees it with its last reference)
    (be as unknown as { gpuInstance: Gpu }).gpuInstance = gpu;
    try { await smoke(be); } catch (e) { be.destroy(); device = null; return `${route} (${name}): ${(e as Error).message}`; }
    return { backend: be, route, adapter: name, skipped: [] };
  } catch (e) {
    try { device?.destroy(); } catch { /* already gone */ }
    return `${route}: ${(e as Error).message.split('\n')[0]}`;
  }
}

/**
 * A WebGPU backend in Node on the first route that works (or `route` /
 * $CAIT_WEBGPU only). Throws NoWebGpuError listing why each route failed.
 */
export async function createNodeWebGpu(o: WebGpuBackendOptions & { route?: WebGpuRoute } = {}): Promise<NodeWebGpu> {
  const mod = await loadDawn();
  const pick = o.route ?? (process.env.CAIT_WEBGPU as WebGpuRoute | undefined);
  if (pick && !ROUTES.includes(pick)) throw new NoWebGpuError([`CAIT_WEBGPU=${pick}: expected one of ${ROUTES.join(', ')}`]);
  const reasons: string[] = [];
  for (const route of pick ? [pick] : ROUTES) {
    if (route === 'native' && !pick && !mayHaveGpu()) { reasons.push(`native: no GPU device node (${GPU_NODES.join(', ')}); not tried`); continue; }
    const r = await tryRoute(mod, route, o);
    if (typeof r !== 'string') return { ...r, skipped: reasons };
    reasons.push(r);
  }
  throw new NoWebGpuError(reasons);
}
