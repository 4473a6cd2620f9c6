/**
 * The ICT-FaceKit reconstruction with the target denoiser on this machine's device (CPU by default): the settings
 * suggested for examples/reconstruct-ict.json, timed end to end. Usage:
 *   node --import tsx bench/pipeline-ict.ts [--device cuda] [--geometry 120] [--texture 120] [--size 128]
 */
import { importIct, ICT_PARTS } from '../lib/models/ict';
import { runPipelineNative, type PipelineNativeInput } from '../lib/pipeline-native';
import * as path from 'node:path';
import { targetCoefficients, targetTexture } from './target';
import { BenchArgs } from './lib/args';

const args = new BenchArgs();
const arg = (name: string, def: string): string => args.str(`--${name}`, def);

export async function ictInput(opts: { device: 'cpu' | 'cuda'; geometry: number; texture: number; size: number; texSize: number; parts?: string[] }): Promise<{ input: PipelineNativeInput; V: number }> {
  const dir = path.resolve(process.env.FACEG2E_SHARED_DIR ?? path.resolve(__dirname, '..', '..', 'shared'), 'models', 'ict-facekit-light');
  const m = await importIct(dir, { parts: opts.parts ?? (process.env.PARTS === 'default' ? undefined : ICT_PARTS.map((p) => p[0])) });
  const Ki = m.identityNames.length;
  const target = targetCoefficients(Ki);
  const S = opts.texSize;
  const tex = targetTexture(S);
  const cams = [0, 45, -45, 90, -90].flatMap((azimuth) => [0, 20].map((elevation) => ({ elevation, azimuth, distance: 0.85 })));
  const input: PipelineNativeInput = {
    device: opts.device,
    seed: 42,
    model: {
      template: m.template, tri: m.tri, uv: m.uv, uvTri: m.uvTri,
      identityCount: Ki, identityBasis: m.identityBasis,
      metresPerUnit: m.metresPerUnit,
    },
    diffusion: { denoiser: 'target', codec: 'identity' },
    geometry: {
      iterations: opts.geometry, renderSize: opts.size, views: Number(process.env.GV ?? 1), learningRate: Number(process.env.GLR ?? 0.05),
      camera: { elevation: { min: -20, max: 20 }, azimuth: { min: -Number(process.env.AZ ?? 45), max: Number(process.env.AZ ?? 45) }, distance: { min: 0.7, max: 1.0 } },
      optimizer: { type: 'adan', maxGradNorm: 0 }, lrDecay: { type: 'cosine', totalSteps: opts.geometry, minFactor: 0.02 },
      regularization: { identity: Number(process.env.REG ?? 0) },
    },
    texture: {
      iterations: opts.texture, latent: { iterations: Math.round(opts.texture / 4), textureSize: 64, renderSize: 64 },
      rgb: { textureSize: S, renderSize: opts.size }, views: 2, prior: { enabled: false },
      learningRate: 0.03, lrDecay: { type: 'step', stepEvery: Math.max(1, Math.round(opts.texture / 4)), gamma: 0.6 },
      optimizer: { type: 'adamw', weightDecay: 0 }, cameras: { mode: 'fixed', fixed: cams },
    },
    target: { coefficients: target, texture: tex, textureWidth: S, textureHeight: S },
    previews: { views: [{ elevation: 0, azimuth: 0, distance: 0.85 }, { elevation: 0, azimuth: 45, distance: 0.85 }], size: 256 },
  };
  return { input, V: m.vertexCount };
}

async function main() {
  const device = arg('device', 'cpu') as 'cpu' | 'cuda';
  const { input, V } = await ictInput({ device, geometry: Number(arg('geometry', '120')), texture: Number(arg('texture', '120')), size: Number(arg('size', '128')), texSize: Number(arg('tex', '256')) });
  const t0 = Date.now();
  const r = await runPipelineNative({ ...input, profile: arg('profile', '0') === '1' }, { onProgress: (p) => { if (p.iteration % 40 === 0) console.log(p.phase, p.iteration, p.loss, p.targetMse); } });
  console.log(`ICT V=${V} on ${device}: ${(Date.now() - t0) / 1000}s`, r.timings, r.metrics);
  if (r.profile) for (const [k, v] of Object.entries(r.profile)) console.log(k.padEnd(28), v.meanMs.toFixed(3), 'ms x', v.count);
}
// run only as the entry script (not when a bundled test imports ictInput from here)
if (require.main === module && /pipeline-ict(\.ts|\.js)?$/.test(process.argv[1] ?? '')) main().catch((e) => { console.error(e); process.exit(1); });
