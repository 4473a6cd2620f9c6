#!/usr/bin/env node
// Bundle the GPU suite and the benchmarks into plain JavaScript under .device/js/ (esbuild, which tsx
// ships), so a GPU machine needs only `node` and the addon: no node_modules, no TypeScript.
//   node tools/device/bundle.mjs
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const out = path.join(root, '.device', 'js');
fs.rmSync(out, { recursive: true, force: true });
const list = (dir, re) =>
  fs.existsSync(path.join(root, dir)) ? fs.readdirSync(path.join(root, dir)).filter((f) => re.test(f)).map((f) => path.join(dir, f)) : [];
const entries = [...list('test/gpu', /\.test\.ts$/), ...list('bench', /\.ts$/)];
await build({
  entryPoints: entries.map((e) => path.join(root, e)),
  outdir: out,
  outbase: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'inline',
  external: ['sharp', '*.node'],
  logLevel: 'warning',
});
// the Python baselines the benchmarks spawn (path.join(__dirname, 'x.py'))
for (const f of list('bench', /\.py$/)) fs.copyFileSync(path.join(root, f), path.join(out, f));
console.log(`bundled ${entries.length} entries into ${path.relative(root, out)}`);
