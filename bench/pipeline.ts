/**
 * Per-iteration time of the FaceG2E pipeline minus network inference, per phase, at FaceG2E sizes on the ICT-FaceKit
 * head, ours (native/pipeline) against PyTorch + nvdiffrast doing the same work (bench/pipeline_torch.py) on the
 * same device, head, cameras and settings:
 *   geometry        224² grey/normal renders (alternating), 1 view, Adan on the 100 identity coefficients;
 *   texture/latent  64² render of a 4×64×64 latent UV texture (pooling codec: 4 latent channels like SD's VAE),
 *                   latent SDS + the texture prior on the latent UV map, AdamW;
 *   texture/rgb     512² renders of a 512² RGB texture through the image-space target (x̂0 → decode), the depth
 *                   ControlNet image and the texture prior on the UV map, AdamW, clamp.
 * The target denoiser stands in for the UNet on both sides (ε̂ = (x_t − √ᾱ·target)/√(1−ᾱ), CFG batch); its own
 * cost (ours: the profiled `pipeline/denoise`; torch: the same calls timed alone) is subtracted. Both sides also
 * render and encode the target head every iteration (the target denoiser's conditioning), which a network run would
 * not do (ours, with fixed cameras in the texture phase, renders and encodes the target once per camera when the
 * stage starts — the geometry is fixed there — and reads it back per iteration; that one-off work is inside our
 * phase time), so the numbers are upper bounds on the non-network work. Targets: ≤ 0.5 ms/iteration, ≥ 10x the
 * baseline. The per-op table is per iteration (profiled run: one sync per iteration; `iteration/*` is the GPU span
 * of a whole iteration, `host/*_enqueue` the host time to enqueue it).
 *
 *   node --import tsx bench/pipeline.ts [--device cuda] [--iterations 200] [--parts all|head] [--no-torch] [--keep]
 *   node --import tsx bench/pipeline.ts --write-inputs DIR [--iterations N] [--parts ...]   (only the baseline's inputs;
 *     then `python3 bench/pipeline_torch.py DIR` runs the baseline alone)
 *   (on the device: node .device/js/bench/pipeline.js ...)
 *
 * The model: $FACEG2E_SHARED_DIR/models/ict-facekit-light (else ../shared/...): generic_neutral_mesh.obj and
 * identity_deltas.npy (float16 [100, 26719, 3], centimetres). `--parts all` (default) keeps all 26,719 vertices;
 * `--parts head` keeps the face and head/neck (the first 11,248 vertices, the triangles among them).
 * The baseline runs `$PYTHON` (else python3) on bench/pipeline_torch.py with a temporary folder this script writes
 * (mesh, fp16 basis, target texture, settings.json with the exact cameras of our run: the Philox draws of
 * native/pipeline/camera.hpp, recomputed here); it needs torch and nvdiffrast importable. `--keep` keeps the folder.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readObj, triangulate } from '../lib/io/obj';
import { readNpy } from '../lib/io/npy';
import { uniform, RngStream } from '../lib/rng';
import { loadNative } from '../lib/native';
import { callNative, fromNative } from '../lib/errors';
// types only: lib/pipeline-native.ts imports sharp (its texture-prior helpers), which the device bundle must not need
import type { PipelineCamera, PipelineNativeInput, PipelineNativeResult } from '../lib/pipeline-native';
import { targetCoefficients, targetTexture } from './target';
import { BenchArgs } from './lib/args';

/** The addon's pipeline binding, called directly (what runPipelineNative/shPresets of lib/pipeline-native.ts do). */
interface NativePipeline {
  runPipeline(input: PipelineNativeInput): Promise<PipelineNativeResult>;
  pipelineShPresets(): { name: string; coefficients: number[] }[];
}
async function runPipelineNative(input: PipelineNativeInput): Promise<PipelineNativeResult> {
  const n = loadNative<NativePipeline>();
  try {
    return await callNative(() => n.runPipeline(input));
  } catch (e) {
    throw fromNative(e);
  }
}
const shPresets = () => callNative(() => loadNative<NativePipeline>().pipelineShPresets());

const args = new BenchArgs();
const arg = (name: string, def: string): string => args.str(`--${name}`, def);
const flag = (name: string) => args.flag(`--${name}`);

const HEAD_VERTICES = 11248; // ICT-FaceKit: face (0..9408) + head_neck (9409..11247)
const SEED = 42;

interface IctModel { template: Float32Array; tri: Int32Array; uv: Float32Array; uvTri: Int32Array; identityBasis: Uint16Array; Ki: number; V: number }

/** The ICT-FaceKit neutral mesh and identity basis from the shared folder (no mode_names.json needed). */
async function loadIct(parts: 'all' | 'head'): Promise<IctModel> {
  const dir = path.join(process.env.FACEG2E_SHARED_DIR ?? path.resolve(__dirname, '..', '..', 'shared'), 'models', 'ict-facekit-light');
  const mesh = triangulate(await readObj(path.join(dir, 'generic_neutral_mesh.obj')));
  const V0 = mesh.positions.length / 3;
  const npy = await readNpy(path.join(dir, 'identity_deltas.npy'));
  if (npy.dtype !== 'f2' || npy.shape.length !== 3 || npy.shape[1] !== V0 || npy.shape[2] !== 3) {
    throw new Error(`${dir}/identity_deltas.npy: expected float16 [K, ${V0}, 3], got ${npy.dtype} [${npy.shape.join(', ')}]`);
  }
  const Ki = npy.shape[0];
  const full = npy.data as Uint16Array;
  const V = parts === 'head' ? Math.min(HEAD_VERTICES, V0) : V0;
  const keep: number[] = [];
  for (let t = 0; t < mesh.tri.length / 3; t++) if (mesh.tri[3 * t] < V && mesh.tri[3 * t + 1] < V && mesh.tri[3 * t + 2] < V) keep.push(t);
  const tri = new Int32Array(keep.length * 3), uvTri = new Int32Array(keep.length * 3);
  keep.forEach((t, i) => {
    for (let k = 0; k < 3; k++) {
      tri[3 * i + k] = mesh.tri[3 * t + k];
      uvTri[3 * i + k] = mesh.uvTri[3 * t + k];
    }
  });
  let identityBasis = full;
  if (V !== V0) {
    identityBasis = new Uint16Array(Ki * V * 3);
    for (let k = 0; k < Ki; k++) identityBasis.set(full.subarray(k * V0 * 3, k * V0 * 3 + V * 3), k * V * 3);
  }
  return { template: mesh.positions.slice(0, V * 3), tri, uv: mesh.uvs, uvTri, identityBasis, Ki, V };
}

/** The benchmark's run: bench/pipeline-ict.ts's reconstruction settings at FaceG2E sizes, every setting explicit. */
function benchInput(m: IctModel, device: 'cpu' | 'cuda', iters: number): PipelineNativeInput {
  const target = targetCoefficients(m.Ki);
  const S = 512;
  const tex = targetTexture(S);
  const cams = [0, 45, -45, 90, -90].flatMap((azimuth) => [0, 20].map((elevation) => ({ elevation, azimuth, distance: 0.85 })));
  const fov = 12.593637;
  return {
    device, seed: SEED,
    model: { template: m.template, tri: m.tri, uv: m.uv, uvTri: m.uvTri, identityCount: m.Ki, identityBasis: m.identityBasis, metresPerUnit: 0.01 },
    diffusion: {
      denoiser: 'target', codec: 'pooling', poolingScale: 1, weighting: 'one-minus-alphabar', gradScale: 1, gradClamp: 0,
      scheduler: { numTrainTimesteps: 1000, betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, predictionType: 'epsilon' },
    },
    geometry: {
      iterations: iters, renderSize: 224, views: 1, inputs: ['grey', 'normal'], inputSchedule: 'alternate', albedo: 1, background: [0, 0, 0],
      camera: { elevation: { min: -20, max: 20 }, azimuth: { min: -45, max: 45 }, distance: { min: 0.7, max: 1.0 }, fovDegrees: fov },
      timestep: { schedule: 'linear', max: 0.98, min: 0.02, jitter: 0 }, guidanceScale: 100, learningRate: 0.05,
      optimizer: { type: 'adan', beta1: 0.98, beta2: 0.92, beta3: 0.99, eps: 1e-8, weightDecay: 0, maxGradNorm: 0 },
      lrDecay: { type: 'cosine', totalSteps: iters, minFactor: 0.02 }, regularization: { identity: 0 }, antialias: true,
    },
    texture: {
      iterations: iters, latent: { iterations: Math.round(iters / 4), textureSize: 64, renderSize: 64 }, rgb: { textureSize: S, renderSize: 512 },
      views: 1, guidanceScale: 100, timestep: { schedule: 'linear', max: 0.98, min: 0.02, jitter: 0 },
      controlNet: { enabled: true, scale: 1 }, prior: { enabled: true, weight: 3, guidanceScale: 1 }, background: [0, 0, 0],
      cameras: { mode: 'fixed', fixed: cams, fovDegrees: fov }, learningRate: 0.03,
      optimizer: { type: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-15, weightDecay: 0 },
      lrDecay: { type: 'step', stepEvery: Math.max(1, Math.round(iters / 4)), gamma: 0.6, minFactor: 0 }, antialias: true, clamp: true,
    },
    target: { coefficients: target, texture: tex, textureWidth: S, textureHeight: S },
    previews: { views: [] },
  };
}

type Phase = 'geometry' | 'texture/latent' | 'texture/rgb';
const PHASES: Phase[] = ['geometry', 'texture/latent', 'texture/rgb'];

function phaseInput(base: PipelineNativeInput, phase: Phase, iters: number): PipelineNativeInput {
  const g = base.geometry!, t = base.texture!;
  if (phase === 'geometry') return { ...base, geometry: { ...g, iterations: iters, lrDecay: { ...g.lrDecay, totalSteps: iters } }, texture: { ...t, enabled: false } };
  const latentIters = phase === 'texture/latent' ? iters : 0;
  return { ...base, geometry: { ...g, enabled: false }, texture: { ...t, iterations: iters, latent: { ...t.latent, iterations: latentIters } } };
}

async function oursTimes(base: PipelineNativeInput, iters: number) {
  const out: Record<Phase, { msPerIter: number; denoiseMs: number; profile: Record<string, [number, number]> }> = {} as never;
  for (const phase of PHASES) {
    await runPipelineNative(phaseInput(base, phase, Math.min(5, iters))); // warm-up
    const input = phaseInput(base, phase, iters);
    const r = await runPipelineNative(input);
    const ms = phase === 'geometry' ? r.timings.geometryMs : r.timings.textureMs;
    const p = await runPipelineNative({ ...input, profile: true });
    // per iteration: total ms / iterations and calls / iteration
    const prof = Object.fromEntries(Object.entries(p.profile ?? {}).map(([k, v]) => [k, [v.totalMs / iters, v.count / iters] as [number, number]]));
    const denoise = (p.profile?.['pipeline/denoise']?.totalMs ?? 0) / iters;
    out[phase] = { msPerIter: ms / iters, denoiseMs: denoise, profile: prof };
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ the baseline's inputs
/** The cameras, SH picks and per-view poses our run uses (native/pipeline/camera.hpp: Philox streams 3 and 4). */
function geometryDraws(base: PipelineNativeInput, iters: number) {
  const g = base.geometry!, c = g.camera!;
  const n = g.views!;
  const u = uniform(iters * 64, { seed: SEED, stream: RngStream.camera, offset: 0 });
  const presets = shPresets();
  const nL = presets.length;
  const l = uniform(iters * 16, { seed: SEED, stream: RngStream.lighting, offset: 0 });
  const poses: number[][] = [], lights: number[] = [];
  for (let i = 0; i < iters; i++)
    for (let v = 0; v < n; v++) {
      const k = (i * 16 + v) * 4;
      poses.push([
        c.elevation!.min + (c.elevation!.max - c.elevation!.min) * u[k],
        c.azimuth!.min + (c.azimuth!.max - c.azimuth!.min) * u[k + 1],
        c.distance!.min + (c.distance!.max - c.distance!.min) * u[k + 2],
      ]);
      lights.push(Math.min(nL - 1, Math.floor(l[i * 16 + v] * nL)));
    }
  return { poses, lights, shPresets: presets.map((p) => p.coefficients) };
}

function textureDraws(base: PipelineNativeInput, iters: number) {
  const t = base.texture!;
  const n = t.views!, fixed: PipelineCamera[] = t.cameras!.fixed!;
  const key0 = 2 ** 32; // kTexturePhaseKey
  const u = uniform(iters * 64, { seed: SEED, stream: RngStream.camera, offset: key0 * 64 });
  const poses: number[][] = [];
  for (let i = 0; i < iters; i++)
    for (let v = 0; v < n; v++) {
      const pick = Math.min(fixed.length - 1, Math.floor(u[(i * 16 + v) * 4] * fixed.length));
      const p = fixed[pick];
      poses.push([p.elevation, p.azimuth, p.distance]);
    }
  return { poses };
}

function writeTorchInputs(work: string, m: IctModel, base: PipelineNativeInput, iters: number) {
  const dump = (name: string, a: ArrayBufferView) => fs.writeFileSync(path.join(work, name), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  dump('template.f32', m.template);
  dump('tri.i32', m.tri);
  dump('uv.f32', m.uv);
  dump('uvTri.i32', m.uvTri);
  dump('identity.f16', m.identityBasis);
  dump('target_texture.f32', base.target!.texture!);
  const geo = geometryDraws(base, iters), tex = textureDraws(base, iters);
  const g = phaseInput(base, 'geometry', iters).geometry!;
  const settings = {
    iterations: iters, warmup: 20, seed: SEED, phases: PHASES,
    model: { V: m.V, T: m.tri.length / 3, U: m.uv.length / 2, Ki: m.Ki, metresPerUnit: base.model.metresPerUnit },
    target: { coefficients: Array.from(base.target!.coefficients), textureSize: base.target!.textureWidth },
    diffusion: base.diffusion,
    shPresets: geo.shPresets,
    geometry: { ...g, poses: geo.poses, lights: geo.lights },
    texture: { ...base.texture, iterations: iters, poses: tex.poses },
  };
  fs.writeFileSync(path.join(work, 'settings.json'), JSON.stringify(settings));
}

interface TorchPhase { msPerIter: number; denoiseMs: number; iterations: number; kernelsPerIter: number | null }
interface TorchResult { torch: string; nvdiffrast: string; device: string; vertices: number; triangles: number; phases: Record<string, TorchPhase>; error?: string }

function runTorch(work: string): TorchResult | string {
  const py = process.env.PYTHON ?? 'python3';
  const r = spawnSync(py, [path.join(__dirname, 'pipeline_torch.py'), work], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const j = JSON.parse(line) as TorchResult;
    if (j.error) return j.error;
    if (r.status === 0) return j;
  } catch { /* reported below */ }
  return `${py} ${r.error ? String(r.error) : `exited ${r.status}`}: ${(r.stderr || r.stdout || '').trim().split('\n').slice(-6).join(' | ')}`;
}

// ------------------------------------------------------------------------------------------------ main
async function main() {
  const device = arg('device', 'cuda') as 'cpu' | 'cuda';
  const iters = Number(arg('iterations', device === 'cuda' ? '200' : '10'));
  const parts = arg('parts', 'all');
  if (parts !== 'all' && parts !== 'head') throw new Error(`--parts: expected 'all' or 'head', got '${parts}'`);
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`--iterations: expected a positive integer, got '${arg('iterations', '')}'`);
  const m = await loadIct(parts);
  const base = benchInput(m, device, iters);
  const inputsDir = arg('write-inputs', '');
  if (inputsDir) {
    fs.mkdirSync(inputsDir, { recursive: true });
    writeTorchInputs(inputsDir, m, base, iters);
    console.log(`baseline inputs written to ${inputsDir}; run: ${process.env.PYTHON ?? 'python3'} ${path.join(__dirname, 'pipeline_torch.py')} ${inputsDir}`);
    return;
  }
  const ours = await oursTimes(base, iters);

  let torch: TorchResult | undefined;
  let why = '';
  if (flag('no-torch')) why = 'skipped (--no-torch)';
  else if (device !== 'cuda') why = 'skipped (ours on the CPU)';
  else {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-pipeline-bench-'));
    try {
      writeTorchInputs(work, m, base, iters);
      const r = runTorch(work);
      if (typeof r === 'string') why = r;
      else torch = r;
    } finally {
      if (flag('keep')) console.log(`baseline inputs kept in ${work}`);
      else fs.rmSync(work, { recursive: true, force: true });
    }
  }

  console.log(`faceg2e-native pipeline, ICT head (${m.V} vertices, ${m.tri.length / 3} triangles), ${device}, ${iters} iterations per phase`);
  if (torch) console.log(`baseline: PyTorch ${torch.torch} + nvdiffrast ${torch.nvdiffrast} on ${torch.device}`);
  else console.log(`baseline: not run — ${why}`);
  const rows: string[][] = [['phase', 'ours ms/it', 'torch+nvdiffrast ms/it', 'speed-up', 'target ≤ 0.5 ms']];
  let metMs = 0, metX = 0;
  for (const phase of PHASES) {
    const o = ours[phase], t = torch?.phases[phase];
    const oMs = o.msPerIter - o.denoiseMs;
    const tMs = t ? t.msPerIter - t.denoiseMs : undefined;
    const x = tMs !== undefined ? tMs / oMs : undefined;
    if (oMs <= 0.5) metMs++;
    if (x !== undefined && x >= 10) metX++;
    rows.push([phase, oMs.toFixed(3), tMs !== undefined ? tMs.toFixed(3) : '-', x !== undefined ? `${x.toFixed(1)}x` : '-', oMs <= 0.5 ? 'met' : 'NOT met']);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join(' | '));
  console.log('(both without the target denoiser stand-in; with it:');
  for (const phase of PHASES) {
    const o = ours[phase], t = torch?.phases[phase];
    console.log(`  ${phase.padEnd(15)} ours ${o.msPerIter.toFixed(3)} ms/it (denoiser ${o.denoiseMs.toFixed(3)})` +
      (t ? `, torch ${t.msPerIter.toFixed(3)} ms/it (denoiser ${t.denoiseMs.toFixed(3)}${t.kernelsPerIter != null ? `, ${t.kernelsPerIter.toFixed(0)} CUDA kernels/it` : ''})` : ''));
  }
  console.log(`targets: ≤ 0.5 ms/it met in ${metMs}/3 phases; ≥ 10x torch+nvdiffrast ${torch ? `met in ${metX}/3 phases` : 'not measured'}`);
  for (const phase of PHASES) {
    console.log(`\n${phase} per-op ms per iteration (calls per iteration), ours (profiled run, one sync per iteration):`);
    const entries = Object.entries(ours[phase].profile).sort((a, b) => b[1][0] - a[1][0]);
    for (const [k, [ms, calls]] of entries) console.log(`  ${k.padEnd(30)} ${ms.toFixed(4)} (${calls.toFixed(2)})`);
    const opSum = entries.filter(([k]) => k.startsWith('pipeline/')).reduce((a, [, [ms]]) => a + ms, 0);
    console.log(`  sum of pipeline/* ops ${opSum.toFixed(4)} ms/it; unprofiled ${ours[phase].msPerIter.toFixed(4)} ms/it (with the denoiser)`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
