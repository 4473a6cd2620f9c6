/**
 * Writes the known target of examples/reconstruct-ict.json: a non-trivial ICT identity (coefficients JSON)
 * and a procedural texture in ICT-FaceKit's UV layout (u in [0, 2): two UV tiles side by side, so the image is
 * 2:1 and sampled with clamp addressing over the full range). Deterministic: seeded through the project RNG.
 *   node --import tsx tools/make-example-targets.ts
 */
import * as path from 'node:path';
import { normal } from '../lib/rng';
import { writeCoefficients } from '../lib/outputs/coefficients';
import { writePng } from '../lib/io/image';

async function main() {
  const out = path.resolve(__dirname, '..', 'examples', 'targets');
  // identity: the first 12 modes at about one standard deviation, decaying, seeded; the rest 0
  const z = normal(100, { seed: 2024, stream: 0 });
  const identity = new Float32Array(100);
  for (let i = 0; i < 12; i++) identity[i] = Math.max(-1.6, Math.min(1.6, 1.2 * z[i] * Math.pow(0.93, i)));
  await writeCoefficients(path.join(out, 'ict-target.coefficients.json'), {
    model: { name: 'ICT-FaceKit Light (face, head and neck, eye sockets, eyeballs)' },
    identity,
    expression: new Float32Array(57),
    extras: { note: 'target head of examples/reconstruct-ict.json; made by tools/make-example-targets.ts' },
  });
  // texture: smooth skin-like albedo with low-frequency blotches and a few mid-frequency bands
  const W = 512;
  const H = 256;
  const data = new Float32Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const u = (x + 0.5) / W;
      const v = (y + 0.5) / H;
      const blotch = 0.5 + 0.5 * Math.sin(6.3 * u + 2.1) * Math.cos(5.1 * v - 0.7);
      const bands = 0.5 + 0.5 * Math.sin(2 * Math.PI * (6 * u + 3 * v));
      const base = [0.78, 0.58, 0.47];
      const tint = [0.12, -0.04, -0.06];
      for (let c = 0; c < 3; c++) data[(y * W + x) * 3 + c] = Math.min(1, Math.max(0, base[c] + tint[c] * (blotch - 0.5) * 2 + 0.08 * (bands - 0.5) * (c === 0 ? 1 : 0.6) - 0.1 * v * (c === 2 ? 1 : 0.5)));
    }
  }
  await writePng(path.join(out, 'ict-target-texture.png'), data, { width: W, height: H, channels: 3 });
  console.log(`wrote ${out}/ict-target.coefficients.json and ict-target-texture.png`);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
