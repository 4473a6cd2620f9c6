import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FaceG2EError } from '../../lib/errors';
import { DEFAULTS } from '../../lib/config/defaults';
import { resolveConfig, defaultConfig, viewPrompt } from '../../lib/config/validate';
import { configFromCliArgs, loadConfig, parseConfigText, readConfigFile, coerceCliValue } from '../../lib/config/load';
import { nodeAt } from '../../lib/config/schema-walk';
import { tmpDir } from '../helpers';

/** A folder with the files a valid config points at. */
function fixture() {
  const dir = tmpDir('fg-config-');
  fs.writeFileSync(path.join(dir, 'head.safetensors'), 'x');
  fs.mkdirSync(path.join(dir, 'engines'));
  fs.writeFileSync(path.join(dir, 'target.json'), '{}');
  fs.writeFileSync(path.join(dir, 'target.png'), 'x');
  return dir;
}

function configError(fn: () => unknown): FaceG2EError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FaceG2EError, `expected a FaceG2EError, got ${e}`);
    assert.equal(e.code, 'E_CONFIG', e.message);
    return e;
  }
  assert.fail('expected an E_CONFIG error');
}

function detail(e: FaceG2EError, p: string): string {
  const d = e.details.find((x) => x.path === p);
  assert.ok(d, `no detail for ${p}; got: ${e.details.map((x) => `${x.path}: ${x.message}`).join(' | ')}`);
  return d.message;
}

test('defaults fill every field and follow the reference implementation', () => {
  const dir = fixture();
  const cfg = resolveConfig({ prompt: 'a man', model: 'head.safetensors', diffusion: { engines: 'engines' } }, {}, { baseDir: dir });
  assert.equal(cfg.seed, 42);
  assert.equal(cfg.device, 'auto');
  assert.equal(cfg.geometry.iterations, 200);
  assert.equal(cfg.geometry.learningRate, 0.05);
  assert.equal(cfg.geometry.renderSize, 224);
  assert.equal(cfg.geometry.guidanceScale, 100);
  assert.deepEqual(cfg.geometry.timestep, { schedule: 'linear', max: 0.98, min: 0.02 });
  assert.equal(cfg.geometry.optimizer.type, 'adan');
  assert.deepEqual(cfg.geometry.camera.azimuth, { min: -45, max: 45 });
  assert.deepEqual(cfg.texture.latent, DEFAULTS.texture.latent);
  assert.equal(cfg.texture.rgb.textureSize, 512);
  assert.deepEqual(cfg.texture.lrDecay, { type: 'step', stepEvery: 100, gamma: 0.9, minFactor: 0.1 });
  assert.equal(cfg.texture.prior.type, 'canny');
  assert.equal(cfg.texture.prior.weight, 3);
  assert.equal(cfg.texture.optimizer.type, 'adamw');
  assert.equal(cfg.viewPrompts.front, ', front view');
  // the whole resolved config equals DEFAULTS plus the given fields (no default lives outside defaults.ts)
  const expected = structuredClone(DEFAULTS) as any;
  expected.prompt = 'a man';
  expected.model = path.join(dir, 'head.safetensors');
  expected.diffusion.engines = path.join(dir, 'engines');
  expected.output.dir = path.join(process.cwd(), 'faceg2e-out'); // defaulted paths: the working directory
  assert.deepEqual(cfg, expected);
});

test('resolved configs do not share default objects', () => {
  const a = defaultConfig({ prompt: 'a', model: 'm', diffusion: { engines: 'e' } });
  a.geometry.inputs.push('grey');
  a.texture.cameras.fixed.azimuths[0] = 99;
  const b = defaultConfig({ prompt: 'b', model: 'm', diffusion: { engines: 'e' } });
  assert.deepEqual(b.geometry.inputs, ['grey', 'normal']);
  assert.equal(b.texture.cameras.fixed.azimuths[0], 0);
  assert.deepEqual(DEFAULTS.geometry.inputs, ['grey', 'normal']);
});

test('precedence: defaults < file < command line, objects merge field by field', () => {
  const dir = fixture();
  const file = { prompt: 'from file', model: 'head.safetensors', seed: 1, geometry: { iterations: 50, camera: { fovDegrees: 20 } }, diffusion: { engines: 'engines' } };
  const cli = configFromCliArgs({ seed: '7', set: ['geometry.camera.fovDegrees=30', 'texture.iterations=10', 'texture.latent.iterations=5'] });
  const cfg = resolveConfig(file, cli, { baseDir: dir });
  assert.equal(cfg.prompt, 'from file');
  assert.equal(cfg.seed, 7); // CLI over file
  assert.equal(cfg.geometry.iterations, 50); // file over default
  assert.equal(cfg.geometry.camera.fovDegrees, 30); // CLI over file, deep
  assert.deepEqual(cfg.geometry.camera.elevation, { min: -20, max: 20 }); // sibling default kept
  assert.equal(cfg.texture.iterations, 10);
  assert.equal(cfg.geometry.learningRate, 0.05); // default
});

test('relative paths: file values against the config folder, CLI values against the working directory', () => {
  const dir = fixture();
  const cwd = tmpDir('fg-cwd-');
  fs.writeFileSync(path.join(cwd, 'other.safetensors'), 'x');
  const cfg = resolveConfig({ prompt: 'p', model: 'head.safetensors', diffusion: { engines: './engines' }, output: { dir: 'out' } }, { output: { dir: 'cli-out' } }, { baseDir: dir, cliBaseDir: cwd });
  assert.equal(cfg.model, path.join(dir, 'head.safetensors'));
  assert.equal(cfg.diffusion.engines, path.join(dir, 'engines'));
  assert.equal(cfg.output.dir, path.join(cwd, 'cli-out'));
  const cfg2 = resolveConfig({ prompt: 'p', model: 'head.safetensors', diffusion: { engines: 'engines' } }, { model: 'other.safetensors' }, { baseDir: dir, cliBaseDir: cwd });
  assert.equal(cfg2.model, path.join(cwd, 'other.safetensors'));
});

test('a config with several bad fields reports each one by path, with what was expected', () => {
  const dir = fixture();
  const e = configError(() =>
    resolveConfig(
      {
        prompt: 'p',
        model: 'head.safetensors',
        diffusion: { engines: 'engines', codec: 'pooling' },
        geometry: { iterations: -3, learningRate: 0, iteratons: 5, camera: { elevation: { min: 30, max: -10 } }, inputs: [] },
        texture: { prior: { type: 'cany' }, latent: { iterations: 900 }, rgb: { textureSize: 512.5 } },
        output: { files: { glb: 'yes' } },
        devise: 'cuda',
      },
      { seed: -1 },
      { baseDir: dir },
    ),
  );
  assert.match(detail(e, 'geometry.iterations'), /expected an integer in \[1, 1e7\], got -3/);
  assert.match(detail(e, 'geometry.learningRate'), /expected a number in \(0, 1000\], got 0/);
  assert.match(detail(e, 'geometry.iteratons'), /unknown key "iteratons"; did you mean "iterations"\?/);
  assert.match(detail(e, 'devise'), /did you mean "device"/);
  assert.match(detail(e, 'geometry.camera.elevation'), /min <= max/);
  assert.match(detail(e, 'geometry.inputs'), /at least 1/);
  assert.match(detail(e, 'texture.prior.type'), /one of "canny", "unet", "none", got "cany"/);
  assert.match(detail(e, 'texture.rgb.textureSize'), /expected an integer .* got 512.5/);
  assert.match(detail(e, 'texture.latent.iterations'), /at most texture.iterations \(400\), got 900/);
  assert.match(detail(e, 'output.files.glb'), /expected true or false, got "yes"/);
  assert.match(detail(e, 'diffusion.codec'), /expected "vae" with diffusion.backend 'tensorrt'/);
  assert.match(detail(e, 'seed'), /got -1 \(from the command line\)/);
  assert.equal(e.details.length, 12, e.details.map((d) => `${d.path}: ${d.message}`).join('\n'));
  assert.match(e.message, /and 11 more problems/);
});

test('required fields, cross-field rules and missing files', () => {
  const dir = fixture();
  const e = configError(() => resolveConfig({}, {}, { baseDir: dir }));
  assert.match(detail(e, 'prompt'), /is required: expected a non-empty string/);
  assert.match(detail(e, 'model'), /is required/);
  assert.match(detail(e, 'diffusion.engines'), /is required with diffusion.backend 'tensorrt'/);

  const e2 = configError(() => resolveConfig({ prompt: 'p', model: 'nope.safetensors', device: 'cpu', diffusion: { engines: 'engines' }, geometry: { enabled: false } }, {}, { baseDir: dir }));
  assert.match(detail(e2, 'model'), /(file|file or folder) not found: .*nope\.safetensors/);
  assert.match(detail(e2, 'device'), /TensorRT runs on the GPU/);
  assert.match(detail(e2, 'texture.coefficients'), /is required when geometry.enabled is false/);

  const e3 = configError(() => resolveConfig({ prompt: 'p', model: 'head.safetensors', diffusion: { backend: 'target', codec: 'identity', engines: 'head.safetensors' } }, {}, { baseDir: dir }));
  assert.match(detail(e3, 'diffusion.target.head'), /is required with diffusion.backend 'target'/);
  assert.match(detail(e3, 'diffusion.target.texture'), /is required/);
  assert.match(detail(e3, 'diffusion.engines'), /expected a folder, got a file/);

  // the target denoiser on the CPU: a complete, valid config
  const ok = resolveConfig(
    { prompt: 'p', model: 'head.safetensors', device: 'cpu', diffusion: { backend: 'target', codec: 'pooling', target: { head: 'target.json', texture: 'target.png' } }, texture: { prior: { type: 'none' }, controlNet: { enabled: false } } },
    {},
    { baseDir: dir },
  );
  assert.equal(ok.diffusion.target.head, path.join(dir, 'target.json'));
  assert.equal(ok.diffusion.engines, null);

  // checkFiles: false skips existence checks
  assert.doesNotThrow(() => resolveConfig({ prompt: 'p', model: 'nope', diffusion: { engines: 'nope' } }, {}, { baseDir: dir, checkFiles: false }));
  // a non-object config
  const e4 = configError(() => resolveConfig([1, 2], {}, {}));
  assert.match(e4.message, /expected a JSON object at the top level, got an array/);
});

test('lighting presets accept 9 or 27 coefficients per light', () => {
  const base = { prompt: 'p', model: 'm', diffusion: { engines: 'e' } };
  const ok = resolveConfig({ ...base, geometry: { lighting: { presets: [new Array(9).fill(0.1), new Array(27).fill(0)] } } }, {}, { checkFiles: false });
  assert.equal((ok.geometry.lighting.presets as number[][]).length, 2);
  const e = configError(() => resolveConfig({ ...base, geometry: { lighting: { presets: [[1, 2, 3]] } } }, {}, { checkFiles: false }));
  assert.match(detail(e, 'geometry.lighting.presets'), /"builtin", or an array of at least 1 items \(each an array of 9 numbers, or an array of 27 numbers\), got \[\[1,2,3\]\]/);
});

test('--set values are typed by the schema; unknown paths suggest the right key', () => {
  const o = configFromCliArgs({
    set: [
      'geometry.iterations=300',
      'geometry.optimizeExpression=yes',
      'texture.prior.template=null',
      'texture.cameras.fixed.azimuths=0,90,-90',
      'geometry.camera.azimuth={"min":-30,"max":30}',
      'negativePrompt=blurry, low quality',
      'geometry.identityComponents=null',
      'geometry.inputs=normal',
    ],
    device: 'cuda',
    out: 'o',
    prompt: 'hi',
  }) as any;
  assert.equal(o.geometry.iterations, 300);
  assert.equal(o.geometry.optimizeExpression, true);
  assert.equal(o.texture.prior.template, null);
  assert.deepEqual(o.texture.cameras.fixed.azimuths, [0, 90, -90]);
  assert.deepEqual(o.geometry.camera.azimuth, { min: -30, max: 30 });
  assert.equal(o.negativePrompt, 'blurry, low quality');
  assert.equal(o.geometry.identityComponents, null);
  assert.deepEqual(o.geometry.inputs, ['normal']);
  assert.equal(o.device, 'cuda');
  assert.equal(o.output.dir, 'o');
  assert.equal(o.prompt, 'hi');

  const e = configError(() => configFromCliArgs({ set: ['geometry.iteratoins=3', 'geomtry.iterations=3', 'noequals', 'geometry.iterations.x=1'] }));
  assert.match(detail(e, 'geometry.iteratoins'), /did you mean "iterations"\?.*from --set/);
  assert.match(detail(e, 'geomtry'), /did you mean "geometry"/);
  assert.match(detail(e, '--set'), /expected path=value/);
  assert.match(detail(e, 'geometry.iterations.x'), /has no fields/);

  // a value of the wrong type is left as text and reported by validation, marked as from the command line
  const e2 = configError(() => resolveConfig({ prompt: 'p', model: 'm', diffusion: { engines: 'e' } }, configFromCliArgs({ set: ['geometry.iterations=many'] }), { checkFiles: false }));
  assert.match(detail(e2, 'geometry.iterations'), /expected an integer in \[1, 1e7\], got "many" \(from the command line\)/);
  assert.equal(coerceCliValue(nodeAt(['seed']), '12'), 12);
});

test('config files: JSON with comments; syntax errors give file:line:column; missing files are E_IO', () => {
  const dir = fixture();
  const f = path.join(dir, 'run.json');
  fs.writeFileSync(f, '{\n  // a comment\n  "prompt": "p",\n  "model": "head.safetensors",\n  "diffusion": { "engines": "engines" }\n}\n');
  const r = readConfigFile(f);
  assert.equal(r.baseDir, dir);
  const cfg = loadConfig({ configPath: f, cli: { seed: 3 } });
  assert.equal(cfg.seed, 3);
  assert.equal(cfg.model, path.join(dir, 'head.safetensors'));

  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, '{\n  "prompt": "p",\n  "seed": 1,,\n}\n');
  const e = configError(() => readConfigFile(bad));
  assert.match(e.details[0].path, /bad\.json:3:\d+$/);
  assert.match(e.message, /bad\.json:3:\d+: JSON syntax error/);

  assert.throws(() => readConfigFile(path.join(dir, 'missing.json')), (x: unknown) => x instanceof FaceG2EError && x.code === 'E_IO' && /missing\.json: no such file/.test(x.message));
  assert.throws(() => parseConfigText('', 'empty.json'), (x: unknown) => x instanceof FaceG2EError && x.code === 'E_CONFIG' && /empty\.json:1:1/.test(x.message));

  // validation errors name the file
  fs.writeFileSync(f, JSON.stringify({ prompt: 'p', model: 'head.safetensors', diffusion: { engines: 'engines' }, geometry: { iterations: 0 } }));
  const e2 = configError(() => loadConfig({ configPath: f }));
  assert.match(e2.message, new RegExp(`in ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: geometry.iterations`));
});

test('view-dependent prompts follow the azimuth sectors', () => {
  const cfg = defaultConfig({ prompt: 'a man', model: 'm', diffusion: { engines: 'e' } });
  assert.equal(viewPrompt(cfg, 0), 'a man, front view');
  assert.equal(viewPrompt(cfg, 45), 'a man, front view');
  assert.equal(viewPrompt(cfg, -46), 'a man, side view');
  assert.equal(viewPrompt(cfg, 135), 'a man, side view');
  assert.equal(viewPrompt(cfg, 136), 'a man, back view');
  assert.equal(viewPrompt(cfg, 180), 'a man, back view');
  assert.equal(viewPrompt(cfg, 300), 'a man, side view'); // 300 = -60
  assert.equal(viewPrompt(cfg, 330), 'a man, front view'); // 330 = -30
  assert.equal(viewPrompt(cfg, -180), 'a man, back view');
  cfg.viewPrompts.enabled = false;
  assert.equal(viewPrompt(cfg, 90), 'a man');
});
