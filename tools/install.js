#!/usr/bin/env node
// `npm install` hook: use a matching prebuild (prebuilds/<platform>-<arch>/) or an existing build when one
// loads, else build from source with cmake-js (nvcc from PATH or /usr/local/cuda; CPU-only without it).
// cmake-js downloads nothing: Node-API headers come from the node-api-headers package.
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const root = path.resolve(__dirname, '..');

if (!process.env.FACEG2E_BUILD_FROM_SOURCE) {
  try {
    require('node-gyp-build')(root);
    process.exit(0);
  } catch (_) {
    /* no usable binary: build */
  }
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const parallel = String(Math.max(1, require('node:os').availableParallelism?.() ?? 2));
console.log('faceg2e-native: building the native addon from source (cmake-js); set FACEG2E_CUDA_ARCHS to limit GPU targets');
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '-l', 'warn', '-p', parallel], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\nfaceg2e-native: the native build failed. It needs cmake >= 3.18 and a C++17 compiler; for GPU support, the CUDA toolkit (nvcc) ' +
      'in PATH or /usr/local/cuda. Set FACEG2E_WITH_CUDA=0 to build the CPU-only addon.',
  );
  process.exit(r.status || 1);
}
