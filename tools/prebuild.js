#!/usr/bin/env node
// `npm run prebuild`: build the release addon (fat binary: sm_80/86/89/90 + PTX, static CUDA runtime) and
// place it where node-gyp-build looks first: prebuilds/<platform>-<arch>/node.napi.node. This is the
// prebuildify layout, produced with cmake-js instead of node-gyp (prebuildify only drives node-gyp).
// `npm pack` ships it (package.json "files"); git does not track it.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const root = path.resolve(__dirname, '..');
const outDir = process.env.FACEG2E_PREBUILD_BUILD_DIR || 'build-prebuild';
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'rebuild', '-l', 'warn', '-O', outDir, '-p', String(require('node:os').availableParallelism?.() ?? 2)], {
  cwd: root,
  stdio: 'inherit',
});
if (r.status !== 0) process.exit(r.status || 1);
const built = path.join(root, outDir, 'Release', 'faceg2e.node');
const dest = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dest, { recursive: true });
fs.copyFileSync(built, path.join(dest, 'node.napi.node'));
// check that node-gyp-build resolves to it
const resolved = require('node-gyp-build').resolve ? require('node-gyp-build').resolve(root) : null;
console.log(`prebuild: wrote ${path.relative(root, path.join(dest, 'node.napi.node'))}${resolved ? ` (node-gyp-build resolves ${path.relative(root, resolved)})` : ''}`);
