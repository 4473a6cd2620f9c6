#!/usr/bin/env node
// Runs Node's built-in test runner over the TypeScript test files of one suite (test/cpu or test/gpu),
// through tsx. Node 20's --test takes no globs, so we list the files ourselves.
//   node tools/run-tests.js test/cpu [--only substring]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const args = process.argv.slice(2);
const dir = args[0] || 'test/cpu';
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : process.env.FACEG2E_TEST_ONLY;
const root = path.resolve(__dirname, '..');
const files = fs
  .readdirSync(path.join(root, dir), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.ts') && (!only || f.includes(only)))
  .sort()
  .map((f) => path.join(dir, f));
if (files.length === 0) {
  console.error(`run-tests: no *.test.ts files under ${dir}${only ? ` matching '${only}'` : ''}`);
  process.exit(1);
}
if (path.basename(dir) === 'gpu') {
  // Say it loudly, before anything runs: the GPU suite cannot pass without a GPU.
  let info;
  try {
    const override = process.env.FACEG2E_ADDON_PATH;
    const addon = override ? require(path.resolve(override)) : require('node-gyp-build')(root);
    info = addon.cudaInfo();
  } catch (e) {
    info = { gpus: [], error: `the native addon did not load: ${e.message}` };
  }
  if (!info.gpus.some((g) => g.supported)) {
    const bar = '#'.repeat(78);
    console.error(`\n${bar}\n# GPU SUITE NOT RUN: no usable GPU on this machine\n# ${info.error || 'no GPU supported by this build'}\n` +
      `# Run it on a GPU machine (see tools/device/README.md).\n${bar}\n`);
    process.exit(1);
  }
  for (const g of info.gpus) console.log(`GPU suite on [${g.index}] ${g.name} (compute ${g.computeCapability}), CUDA runtime ${info.runtimeVersion}, driver ${info.driverVersion}`);
}
const reporter = process.env.FACEG2E_TEST_REPORTER || 'spec';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FACEG2E_TEST_SUITE: path.basename(dir) },
});
process.exit(r.status === null ? 1 : r.status);
