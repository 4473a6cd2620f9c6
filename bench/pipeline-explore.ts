import { runPipelineNative } from '../lib/pipeline-native';
import { syntheticHead } from '../test/cpu/pipeline-fixture';
async function main() {
  const h = syntheticHead();
  const t0 = Date.now();
  const gi = Number(process.env.GI ?? 80), ti = Number(process.env.TI ?? 0);
  const r = await runPipelineNative({
    device: 'cpu', seed: 7, profile: true,
    model: h.model,
    diffusion: { denoiser: 'target', codec: (process.env.CODEC as any) ?? 'identity' },
    geometry: { iterations: gi, renderSize: 64, views: 2, learningRate: Number(process.env.LR ?? 0.05),
      camera: { elevation: { min: -20, max: 20 }, azimuth: { min: -60, max: 60 }, distance: { min: 1.3, max: 1.5 } },
      optimizer: { maxGradNorm: 0 }, regularization: { identity: 0 }, lrDecay: process.env.DECAY ? { type: 'cosine', totalSteps: gi, minFactor: 0.02 } : undefined, inputs: process.env.INPUTS ? (process.env.INPUTS.split(',') as any) : undefined },
    texture: { enabled: ti > 0, iterations: ti, coefficients: h.targetCoefficients, latent: { iterations: Math.floor(ti / 5), textureSize: 32, renderSize: 32 },
      rgb: { textureSize: 64, renderSize: Number(process.env.RR ?? 64) }, views: Number(process.env.TV ?? 3), prior: { enabled: process.env.PRIOR === '1' }, controlNet: { enabled: true },
      learningRate: Number(process.env.TLR ?? 0.03), lrDecay: { type: 'step', stepEvery: Number(process.env.STEP ?? 40), gamma: 0.6 }, optimizer: { weightDecay: 0 },
      cameras: { mode: 'fixed', fixed: [0, 60, -60, 120, -120, 180].flatMap((a) => (process.env.ELEV ?? '0,35').split(',').map(Number).map((e) => ({ elevation: e, azimuth: a, distance: 1.4 }))) } },
    target: { coefficients: h.targetCoefficients, texture: h.texture, textureWidth: 64, textureHeight: 64 },
    previews: { views: [{ elevation: 0, azimuth: 30, distance: 1.4 }], size: 64 },
  });
  console.log('ms', Date.now() - t0, r.status, r.metrics, Array.from(r.coefficients!).map((x) => x.toFixed(3)).join(' '));
  const c = r.curves!;
  for (let i = 0; i < c.geometry.length; i += 4 * 10) console.log('g', c.geometry[i], c.geometry[i + 1], c.geometry[i + 2].toExponential(2), c.geometry[i + 3].toExponential(2));
  for (let i = 0; i < c.texture.length; i += 4 * 10) console.log('t', c.texture[i], c.texture[i + 1], c.texture[i + 2].toExponential(2), c.texture[i + 3].toExponential(2));
  console.log(r.timings, Object.fromEntries(Object.entries(r.profile ?? {}).map(([k, v]) => [k, v.meanMs.toFixed(3)])));
}
main().catch((e) => { console.error(e); process.exit(1); });
