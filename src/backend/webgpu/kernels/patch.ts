// Patch extraction, WGSL twin of assembly/patch.ts (spec: src/backend/reference/patch.ts).
//   patchify(x, y, B, C, H, W, P)     x [B, C, H, W] -> y [B, (H/P)*(W/P), C*P*P], columns (c, ky, kx)
//   unpatchify(y, x, B, C, H, W, P)   the adjoint: x = scatter of y (pixels no patch covers: 0)
// One thread per output element (a gather either way, so no write conflicts).
import { ELEMENT_ARGS as A, ELEMENT_HEAD as K, WG, perThread, type KernelSpec } from '../shader.js';

const idx = `let i = wgid(wid, nwg) * ${WG}u + li;`;

export const patchify: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  let gh = U.H / U.P; let gw = U.W / U.P; let KK = U.C * U.P * U.P;
  if (i >= U.B * gh * gw * KK) { return; }
  let col = i % KK; let tok = i / KK;
  let kx = col % U.P; let ky = (col / U.P) % U.P; let c = col / (U.P * U.P);
  let px = tok % gw; let py = (tok / gw) % gh; let b = tok / (gw * gh);
  H[U.y + i] = H[U.x + ((b * U.C + c) * U.H + py * U.P + ky) * U.W + px * U.P + kx];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * Math.floor(v.H / v.P) * Math.floor(v.W / v.P) * v.C * v.P * v.P) }],
};

export const unpatchify: KernelSpec = {
  wgsl: `${K} fn main(${A}) {
  ${idx}
  if (i >= U.B * U.C * U.H * U.W) { return; }
  let gh = U.H / U.P; let gw = U.W / U.P; let KK = U.C * U.P * U.P;
  let xx = i % U.W; let yy = (i / U.W) % U.H; let c = (i / (U.W * U.H)) % U.C; let b = i / (U.W * U.H * U.C);
  let px = xx / U.P; let py = yy / U.P;
  if (px >= gw || py >= gh) { st(U.x + i, 0.0); return; }
  let col = (c * U.P + yy % U.P) * U.P + xx % U.P;
  H[U.x + i] = H[U.y + ((b * gh + py) * gw + px) * KK + col];
}`,
  stages: [{ entry: 'main', groups: (v) => perThread(v.B * v.C * v.H * v.W) }],
};
