/** The CLI as a user meets it: bin/faceg2e-native.js over the compiled dist/. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { cli, ROOT } from '../helpers';
import { cudaAvailable } from '../../lib/device';


test('--help lists the commands', () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const c of ['run', 'doctor', 'render', 'models', 'engines']) assert.match(r.stdout, new RegExp(`faceg2e-native ${c}`));
});

test('no command / unknown command: usage error, exit 2, no stack trace', () => {
  for (const args of [[], ['frobnicate']]) {
    const r = cli(args);
    assert.equal(r.code, 2);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  }
});

test('doctor --json prints valid JSON with the documented fields, exit 1 without a GPU pipeline', () => {
  const r = cli(['doctor', '--json']);
  const j = JSON.parse(r.stdout);
  for (const k of ['gpus', 'cudaRuntime', 'driver', 'tensorrt', 'canRun', 'summary']) assert.ok(k in j, `missing ${k}`);
  assert.ok(Array.isArray(j.gpus));
  assert.equal(typeof j.tensorrt.found, 'boolean');
  if (!cudaAvailable()) {
    assert.deepEqual(j.gpus, []);
    assert.equal(r.code, 1);
  }
  assert.equal(r.code, j.canRun.gpuPipeline ? 0 : 1);
});

test('doctor (text) explains in plain words', () => {
  const r = cli(['doctor']);
  assert.match(r.stdout, /CPU ops/);
  assert.match(r.stdout, /GPU ops/);
  assert.match(r.stdout, /TensorRT/);
});

test('the package loads through require and import with the same exports', async () => {
  const cjs = require(ROOT);
  const esm = await import(path.join(ROOT, 'dist', 'index.mjs'));
  assert.equal(typeof cjs.cudaStatus, 'function');
  assert.equal(esm.cudaStatus, cjs.cudaStatus);
  assert.equal(esm.FaceG2EError, cjs.FaceG2EError);
});
