// The CAIT structure the benches time: the one `cait compress --structure-only`
// chose for this preset and target (its search, recorded in
// bench/results/compress-structure.json by runs of that command), rebuilt with
// fitStructure; where that file has no entry, the analytic pickStructure.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { VitConfig } from '../src/nn/presets.js';
import { fitStructure, pickStructure, type PruneStyle, type Structure } from '../src/cait/structure.js';

const FILE = fileURLToPath(new URL('./results/compress-structure.json', import.meta.url));

export function chosenStructure(cfg: VitConfig, target: number): Structure & { source: string } {
  const rows: Array<{ model: string; target: number; merge: string; prune?: PruneStyle }> = existsSync(FILE) ? JSON.parse(readFileSync(FILE, 'utf8')).results : [];
  const r = rows.find((x) => x.model === cfg.name && x.target === target);
  if (r) return { ...fitStructure(cfg, target, r.merge, r.prune ?? 'uniform'), source: 'cait compress --structure-only search (bench/results/compress-structure.json)' };
  return { ...pickStructure(cfg, target), source: 'pickStructure (analytic)' };
}
