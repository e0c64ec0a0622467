// Structure choice for `cait compress --structure-only` (src/cait/structure.ts):
// every candidate meets the MAC target and lands near it, the two pruning
// styles prune what they say, and the analytic default is unchanged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getPreset, blockWidths } from '../src/nn/presets.js';
import { countMacs } from '../src/cait/macs.js';
import { candidateSchedules, fitStructure, pickStructure, structureCandidates } from '../src/cait/structure.js';

const tiny = getPreset('deit_tiny_patch16_224'), small = getPreset('deit_small_patch16_224');

test('every candidate meets the target, within 1% of it, and its MACs are what countMacs says', () => {
  for (const [cfg, r] of [[tiny, 1.7], [small, 1.9], [tiny, 1.3], [small, 2.5]] as const) {
    const cs = structureCandidates(cfg, r);
    assert.ok(cs.length >= 4, `${cfg.name} ${r}: ${cs.length} candidates`);
    for (const s of cs) {
      const tag = `${cfg.name} ${r}x: ${s.merge || 'none'} ${s.prune}`;
      assert.ok(s.ratio >= r * (1 - 1e-12), `${tag}: ${s.ratio}x is short of ${r}x`);
      assert.ok(s.ratio <= r * 1.01 + 1e-9, `${tag}: ${s.ratio}x overshoots ${r}x by more than 1%`);
      assert.is(countMacs({ ...cfg, widths: s.widths }, s.merge).total, s.macs, tag);
    }
    const keys = cs.map((s) => `${s.merge}|${JSON.stringify(s.widths)}`);
    assert.is(new Set(keys).size, keys.length, 'no candidate twice');
  }
});

test('mlp style keeps every head channel; uniform rounds heads to 4 and MLPs to 8', () => {
  for (const s of structureCandidates(small, 1.9)) {
    s.widths.forEach((w, i) => {
      const full = blockWidths(small, i);
      if (s.prune === 'mlp') { assert.is(w.qk, full.qk); assert.is(w.v, full.v); }
      assert.is(w.qk % 4, 0); assert.is(w.v % 4, 0); assert.is(w.mlp % 8, 0);
      assert.ok(w.mlp <= full.mlp && w.qk <= full.qk && w.v <= full.v);
    });
  }
});

test('the rounding slack goes back to the MLPs: no 8 more MLP channels would still meet the target', () => {
  const s = fitStructure(small, 1.9, 'h@1,v@11', 'uniform'), target = countMacs(small, '').total / 1.9;
  assert.ok(s.widths[0].qk < 64, 'heads are pruned at this target');
  const wider = s.widths.map((w, i) => ({ ...w, mlp: Math.min(blockWidths(small, i).mlp, w.mlp + 8) }));
  if (wider.some((w, i) => w.mlp !== s.widths[i].mlp)) assert.ok(countMacs({ ...small, widths: wider }, s.merge).total > target);
});

test('pickStructure: the most aggressive schedule not past the target, then pruning; a fixed schedule is kept', () => {
  const s = pickStructure(tiny, 1.7), target = countMacs(tiny, '').total / 1.7;
  const under = candidateSchedules(tiny).filter((c) => countMacs(tiny, c).total >= target);
  assert.is(s.merge, under[under.length - 1]);
  assert.is(pickStructure(tiny, 1.7, 'h@3').merge, 'h@3');
  assert.ok(pickStructure(tiny, 1.7, 'h@3', 'mlp').ratio >= 1.7);
  assert.throws(() => fitStructure(tiny, 1.7, 'h@3', 'heads' as never), /pruning style/);
  assert.throws(() => pickStructure(tiny, 0.5), /ratio/);
});

test.run();
