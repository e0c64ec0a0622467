// What every WGSL kernel shares, and how a kernel is described to the backend.
//
// Memory model: the backend's heap is ONE storage buffer bound as
// `H: array<u32>`; a float is `bitcast<f32>(H[i])`, an int32 index list
// element is `H[i]` itself. One u32 view (rather than an f32 and an i32 view of
// the same buffer) keeps int32 bit patterns exact whatever the device does with
// denormal floats, and binds the buffer once (WebGPU forbids aliasing writable
// bindings on some backends). Pointers (byte offsets, always multiples of 4
// here since the allocator aligns to 64 and ops offset by whole floats) reach
// the shader as ELEMENT indices: pointer >> 2. Pointer 0 stays 0 ("none").
//
// Arguments: each kernel's numeric arguments, in the order and with the names
// of the kernel table (src/backend/kernels.ts), become a uniform struct `U`
// generated from the table: 'p' pointer (u32 element index), 'i' integer
// (u32; negative values are refused on the host), 'f' f32. WGSL reserves
// `layout`, so that argument is `U.lay` in shaders (WGSL_RENAME).
//
// Dispatch: a kernel is one or more stages (entry points run in order, each
// a dispatch). A stage's `groups` gives the number of 64-thread workgroups,
// either a count (spread over x and y, the shader flattens it with `wgid`) or
// an explicit [x, y, z] (GEMM: tiles and batch).

import type { KernelArg } from '../kernels.js';

export interface Stage {
  entry: string;
  /** Workgroups for this call (0: skip). `v` holds the arguments by name (pointers as element indices). */
  groups(v: Record<string, number>): number | [number, number, number];
}

export interface KernelSpec {
  /** WGSL body: entry points and helpers (the prelude and struct U are prepended). */
  wgsl: string;
  stages: Stage[];
}

/** A WebGPU-only kernel, not in the kernel table: it carries its own argument list ('name:kind ...'). */
export interface ExtraKernelSpec extends KernelSpec { args: string }

/** Threads per workgroup in every 1-D kernel (within WebGPU's and compatibility mode's defaults). */
export const WG = 64;

export const PRELUDE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> H: array<u32>;
@group(0) @binding(1) var<uniform> U: Args;
fn ld(i: u32) -> f32 { return bitcast<f32>(H[i]); }
fn st(i: u32, v: f32) { H[i] = bitcast<u32>(v); }
// flattened workgroup index of a 1-D launch spread over x and y
fn wgid(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }
`;

/** Table argument names that WGSL reserves, and what shaders call them. */
export const WGSL_RENAME: Readonly<Record<string, string>> = { layout: 'lay' };

export function argsStruct(args: readonly KernelArg[]): string {
  return `struct Args {\n${args.map((a) => `  ${WGSL_RENAME[a.name] ?? a.name}: ${a.kind === 'f' ? 'f32' : 'u32'},`).join('\n')}\n}\n`;
}

/** The shader's full source: the argument struct (from the table or the extra's own list), the prelude, the body. */
export function kernelSource(spec: KernelSpec, args: readonly KernelArg[]): string {
  return argsStruct(args) + PRELUDE + spec.wgsl;
}

/** A 1-D kernel's entry point header: `i` is the global thread index. */
export const ELEMENT_HEAD = /* wgsl */ `@compute @workgroup_size(${WG})`;
export const ELEMENT_ARGS = /* wgsl */ `@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32`;

/** Workgroups for n threads of a 1-D kernel. */
export const perThread = (n: number): number => Math.ceil(n / WG);
