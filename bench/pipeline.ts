/**
 * Per-iteration time of the FaceG2E pipeline minus network inference, per phase, at FaceG2E sizes on the ICT-FaceKit
 * head (26.7k vertices): geometry = 224² grey/normal renders, 1 view; texture latent stage = 64² render of a
 * 4×64×64 latent texture (pooling codec: 4 latent channels like SD's VAE); texture RGB stage = 512² renders of a
 * 512² texture through the image-space target, depth ControlNet image and the texture prior. The target denoiser
 * stands in for the UNet (its cost, `pipeline/denoise`, is reported and subtracted). Target: <= 0.5 ms/iteration.
 *
 *   node --import tsx bench/pipeline.ts [--device cuda] [--iterations 200]
 *
 * No baseline is timed here yet (a PyTorch + nvdiffrast script of the same iteration is future work); the script
 * prints ours against the 0.5 ms target instead.
 */
import { ictInput } from './pipeline-ict';
import { runPipelineNative, type PipelineNativeInput } from '../lib/pipeline-native';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function phaseTimes(base: PipelineNativeInput, iters: number) {
  const geo: PipelineNativeInput = { ...base, geometry: { ...base.geometry, iterations: iters }, texture: { ...base.texture, enabled: false }, previews: { views: [] } };
  const lat: PipelineNativeInput = { ...base, geometry: { ...base.geometry, enabled: false }, texture: { ...base.texture, iterations: iters, latent: { iterations: iters, textureSize: 64, renderSize: 64 } }, previews: { views: [] } };
  const rgb: PipelineNativeInput = { ...base, geometry: { ...base.geometry, enabled: false }, texture: { ...base.texture, iterations: iters, latent: { iterations: 0, textureSize: 64, renderSize: 64 } }, previews: { views: [] } };
  const out: { phase: string; msPerIter: number; denoiseMs: number; profile: Record<string, number> }[] = [];
  for (const [phase, i] of [['geometry', geo], ['texture/latent', lat], ['texture/rgb', rgb]] as const) {
    await runPipelineNative({ ...i, geometry: { ...i.geometry, iterations: Math.min(5, iters) }, texture: { ...i.texture, iterations: i.texture!.enabled === false ? 0 : Math.min(5, iters), latent: { ...i.texture!.latent, iterations: Math.min(i.texture!.latent!.iterations!, 5) } } }); // warm-up
    const r = await runPipelineNative(i);
    const ms = phase === 'geometry' ? r.timings.geometryMs : r.timings.textureMs;
    const p = await runPipelineNative({ ...i, profile: true });
    const prof = Object.fromEntries(Object.entries(p.profile ?? {}).map(([k, v]) => [k, v.meanMs]));
    const denoise = (p.profile?.['pipeline/denoise']?.totalMs ?? 0) / iters;
    out.push({ phase, msPerIter: ms / iters, denoiseMs: denoise, profile: prof });
  }
  return out;
}

async function main() {
  const device = arg('device', 'cuda') as 'cpu' | 'cuda';
  const iters = Number(arg('iterations', device === 'cuda' ? '200' : '10'));
  const { input } = await ictInput({ device, geometry: iters, texture: iters, size: 224, texSize: 512 });
  input.diffusion = { denoiser: 'target', codec: 'pooling' };
  input.texture = { ...input.texture, views: 1, rgb: { textureSize: 512, renderSize: 512 }, prior: { enabled: true, weight: 3 }, controlNet: { enabled: true } };
  input.geometry = { ...input.geometry, views: 1 };
  const res = await phaseTimes(input, iters);
  console.log(`faceg2e-native pipeline, ICT head, ${device}, ${iters} iterations per phase`);
  console.log('phase            ours ms/it (w/o denoiser)   target   ratio');
  for (const r of res) {
    const ours = r.msPerIter - r.denoiseMs;
    console.log(`${r.phase.padEnd(16)} ${r.msPerIter.toFixed(3).padStart(8)} (${ours.toFixed(3)})${' '.repeat(12)}0.500   ${(ours / 0.5).toFixed(2)}x`);
  }
  for (const r of res) {
    console.log(`\n${r.phase} per-op mean ms (profiled run, one sync per iteration):`);
    for (const [k, v] of Object.entries(r.profile).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(28)} ${v.toFixed(4)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
