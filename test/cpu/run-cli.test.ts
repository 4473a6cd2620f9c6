/**
 * The main job as a user runs it: `faceg2e-native run` on the example configs, over the compiled dist/.
 * - examples/reconstruct-ict.json (target denoiser, the real ICT-FaceKit model from ../shared) recovers the
 *   known head: vertex RMSE ratio < 0.05 and texture PSNR >= 30 dB, and writes every output;
 * - examples/head.json without engines fails fast with an explanation and no stack trace;
 * - an invalid config names each bad field;
 * - Ctrl-C writes a checkpoint and `--resume` finishes with the same result as an uninterrupted run.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { ROOT, cli, hasShared, tmpDir } from '../helpers';

const EXAMPLE = path.join(ROOT, 'examples', 'reconstruct-ict.json');

test('run examples/reconstruct-ict.json --device cpu: recovers the known head and writes every output', { skip: !hasShared && 'needs ../shared' }, async () => {
  const out = tmpDir('fg-rec-');
  const r = cli(['run', EXAMPLE, '--device', 'cpu', '--out', out, '--progress', 'json'], { timeoutMs: 170_000 });
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(events.some((e) => e.event === 'progress' && e.phase === 'geometry'));
  assert.ok(events.some((e) => e.event === 'progress' && e.phase === 'texture'));
  assert.equal(events[events.length - 1].event, 'done');
  for (const f of ['mesh.obj', 'mesh.mtl', 'texture.png', 'head.glb', 'coefficients.json', 'preview.png', 'turntable.webp', 'run.json'])
    assert.ok(fs.statSync(path.join(out, f)).size > 0, f);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.startsWith('.')), [], 'no temporary files left');
  const run = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
  assert.equal(run.status, 'ok');
  const m = run.extras.metrics;
  assert.ok(m.geometry.vertexRmseRatio < 0.05, `vertexRmseRatio ${m.geometry.vertexRmseRatio}`);
  assert.ok(m.texture.psnrDb >= 30, `psnrDb ${m.texture.psnrDb}`);
  assert.equal(run.config.seed, 7);
  const tt = await sharp(path.join(out, 'turntable.webp'), { animated: true }).metadata();
  assert.equal(tt.pages, 24);
  const glb = fs.readFileSync(path.join(out, 'head.glb'));
  assert.equal(glb.toString('ascii', 0, 4), 'glTF');
});

test('run examples/head.json without engines: non-zero exit, says what is missing and how to build it, no stack trace', () => {
  const r = cli(['run', path.join(ROOT, 'examples', 'head.json'), '--out', tmpDir()]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /engines/);
  assert.match(r.stderr, /engines build/);
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/);
});

test('an invalid config names each bad field', () => {
  const dir = tmpDir();
  const cfg = path.join(dir, 'bad.json');
  fs.writeFileSync(cfg, JSON.stringify({ prompt: 'x', model: 'nope.safetensors', seed: -1, geometry: { iterations: 0, renderSize: 'big' }, texture: { iteratons: 3 } }));
  const r = cli(['run', cfg]);
  assert.notEqual(r.code, 0);
  for (const field of ['seed', 'geometry.iterations', 'geometry.renderSize', 'texture.iteratons', 'model']) assert.match(r.stderr, new RegExp(field.replace('.', '\\.')), field);
  assert.match(r.stderr, /did you mean "iterations"/);
});

test('Ctrl-C writes a checkpoint; --resume finishes with the same head as an uninterrupted run', { skip: !hasShared && 'needs ../shared' }, async () => {
  const small = ['--device', 'cpu', '--progress', 'json', '--set', 'geometry.iterations=60', '--set', 'texture.iterations=40', '--set', 'texture.latent.iterations=20',
    '--set', 'output.files.turntable=false', '--set', 'output.files.glb=false', '--set', 'output.files.previews=false'];
  const full = tmpDir('fg-full-');
  assert.equal(cli(['run', EXAMPLE, '--out', full, ...small], { timeoutMs: 120_000 }).code, 0);
  const part = tmpDir('fg-part-');
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'faceg2e-native.js'), 'run', EXAMPLE, '--out', part, ...small], { cwd: ROOT });
    let sent = false;
    p.stdout.on('data', (d: Buffer) => {
      if (!sent && /"phase":"geometry","iteration":(1[5-9]|[2-9]\d)/.test(d.toString())) {
        sent = true;
        p.kill('SIGINT');
      }
    });
    p.on('exit', (c) => resolve(c));
  });
  assert.equal(code, 130);
  assert.ok(fs.existsSync(path.join(part, 'checkpoint.safetensors')), 'checkpoint written');
  assert.ok(!fs.existsSync(path.join(part, 'mesh.obj')), 'no outputs from the interrupted run');
  const r = cli(['run', EXAMPLE, '--out', part, '--resume', ...small], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!fs.existsSync(path.join(part, 'checkpoint.safetensors')), 'checkpoint removed after success');
  assert.equal(fs.readFileSync(path.join(part, 'coefficients.json'), 'utf8'), fs.readFileSync(path.join(full, 'coefficients.json'), 'utf8'));
  assert.ok(fs.readFileSync(path.join(part, 'texture.png')).equals(fs.readFileSync(path.join(full, 'texture.png'))), 'same texture');
});
