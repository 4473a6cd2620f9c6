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
const reporter = process.env.FACEG2E_TEST_REPORTER || 'spec';
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FACEG2E_TEST_SUITE: path.basename(dir) },
});
process.exit(r.status === null ? 1 : r.status);
