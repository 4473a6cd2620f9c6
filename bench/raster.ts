/**
 * Rasteriser benchmark: ours (CUDA) vs nvdiffrast (through PyTorch) on the same inputs.
 *
 *   node --import tsx bench/raster.ts [MESH.obj] [--iters N] [--no-nvdiffrast] [--sweep 16x1024,8x1024] [--gradients] [--no-pdl] [--mask] [--mip] [--deterministic] [--warmup N] [--set KEY=N,...] [--cases 4x512,1x224] [--texture 1024]
 *
 * --cases VxS,...: the view counts and image sizes to time (default 4x512,1x224); --texture N: an N x N RGB texture
 * (default 1024).
 * --set KEY=N,...: other numeric options of rasterBenchmark (tuning knobs, e.g. bwdMipMinBlocks=3).
 * --deterministic: our backward in deterministic mode (64-bit fixed-point atomics; nvdiffrast has none).
 * --mip: trilinear mip-mapped texture lookups on both sides (ours: mip: true; nvdiffrast: linear-mipmap-linear).
 * --mask: also render the mask (not part of nvdiffrast's chain; off by default).
 * --no-pdl: launch the forward's kernels without programmatic dependent launch (diagnostics); --warmup N: untimed
 * iterations before each timing (default 50).
 * --gradients: also time the 4x512² backward with only texel or only position gradients (diagnostics).
 * --sweep tries launch tunings of the chunked raster on the 4x512² case, after the table (ours only): CHUNKxBIG =
 * pixels per work item x the pixel-box area above which a triangle goes to the block-per-triangle queue.
 * After the table it prints a per-stage breakdown of our forward+backward (CUDA events between the stages).
 *
 * Workload (both sides): rasterise + interpolate UVs + bilinear texture (1024² RGB) + antialias, forward and
 * forward+backward (to positions and texels), on the ICT-FaceKit head (triangulated), for 4 views at 512²
 * and 1 view at 224². The mesh defaults to ../shared/models/ict-facekit-light/generic_neutral_mesh.obj
 * (FACEG2E_BENCH_MESH overrides). nvdiffrast runs in bench/raster_nvdiffrast.py (python3 with torch and
 * nvdiffrast importable); when it cannot run, only our numbers are printed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readObj, triangulate } from '../lib/io/obj';
import { meshBounds, orbitCameras, type PinholeCamera } from '../lib/camera';
import { loadNative } from '../lib/native';
import { BenchArgs } from './lib/args';

interface Stage { stage: string; us: number }
interface Bench { rasterBenchmark(o: Record<string, unknown>): { forwardUs: number; forwardBackwardUs: number; forwardBackwardGraphUs?: number; stages?: Stage[]; workItems?: Record<string, number> } }

function texture(w: number, h: number): Float32Array {
  const t = new Float32Array(w * h * 3);
  for (let i = 0; i < t.length; i++) t[i] = ((i * 2654435761) % 1000) / 1000;
  return t;
}

async function main() {
  const args = new BenchArgs();
  const iters = args.num('--iters', 500);
  const noBaseline = args.flag('--no-nvdiffrast');
  const sweep = (args.str('--sweep') ?? '').split(',').filter(Boolean).map((s) => s.split('x').map(Number));
  const gradSweep = args.flag('--gradients');
  const pdl = args.flag('--no-pdl') ? 0 : undefined;
  const mask = args.flag('--mask');
  const mip = args.flag('--mip');
  const deterministic = args.flag('--deterministic');
  const cases = args.str('--cases', '4x512,1x224').split(',').map((c) => c.split('x').map(Number) as [number, number]);
  const texSize = args.num('--texture', 1024);
  const extra: Record<string, number> = Object.fromEntries((args.str('--set') ?? '').split(',').filter(Boolean).map((kv) => { const [k, v] = kv.split('='); return [k, Number(v)]; }));
  const warmup = args.num('--warmup', 50);
  const meshFile = args.positional() ?? process.env.FACEG2E_BENCH_MESH ?? path.resolve(process.env.FACEG2E_SHARED_DIR ?? path.resolve(__dirname, '..', '..', 'shared'), 'models', 'ict-facekit-light', 'generic_neutral_mesh.obj');
  const mesh = triangulate(await readObj(meshFile));
  const T = mesh.tri.length / 3;
  const P = mesh.positions.length / 3;
  const tex = texture(texSize, texSize);
  const n = loadNative<Bench>();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fg-raster-bench-'));
  const dump = (name: string, a: ArrayBufferView) => fs.writeFileSync(path.join(work, name), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  dump('positions.f32', mesh.positions);
  dump('tri.i32', new Int32Array(mesh.tri.buffer, mesh.tri.byteOffset, mesh.tri.length));
  dump('uvs.f32', mesh.uvs);
  dump('uvTri.i32', new Int32Array(mesh.uvTri.buffer, mesh.uvTri.byteOffset, mesh.uvTri.length));
  dump('texture.f32', tex);
  console.log(`mesh ${path.basename(meshFile)}: ${P} vertices, ${T} triangles; texture ${texSize}x${texSize}x3${mip ? ', trilinear mip-mapped' : ', bilinear'}${mask ? ', with the mask' : ''}${deterministic ? ', ours deterministic' : ''}; ${iters} iterations`);
  console.log('case                 | ours fwd (us) | ours fwd+bwd (us) | ours fwd+bwd, CUDA graph (us) | nvdiffrast fwd (us) | nvdiffrast fwd+bwd (us) | speed-up fwd+bwd (graph)');
  // the benchmark's inputs for `views` orbit cameras at size x size
  const inputs = (views: number, size: number) => {
    const cams: PinholeCamera[] = orbitCameras(meshBounds(mesh.positions), { views, width: size });
    const intrinsics = Float32Array.from(cams.flatMap((c) => c.intrinsics));
    const extrinsics = new Float32Array(views * 12);
    cams.forEach((c, v) => extrinsics.set(c.extrinsics, 12 * v));
    const near = cams[0].depthRange![0] * 0.1, far = cams[0].depthRange![1] * 10;
    return {
      positions: mesh.positions, tri: new Int32Array(mesh.tri.buffer), uvs: mesh.uvs, uvTri: new Int32Array(mesh.uvTri.buffer),
      intrinsics, extrinsics, width: size, height: size, near, far, texture: tex, texWidth: texSize, texHeight: texSize, channels: 3,
      antialias: true, device: 'cuda', iterations: iters, warmup, pdl, mask, mip, deterministic, ...extra,
    };
  };
  const breakdowns: [string, Stage[]][] = [];
  for (const [views, size] of cases) {
    const o = inputs(views, size);
    const { intrinsics, extrinsics, near, far } = o;
    const ours = n.rasterBenchmark(o);
    dump(`cams_${views}x${size}.json`, Buffer.from(JSON.stringify({ views, size, texSize, near, far, intrinsics: Array.from(intrinsics), extrinsics: Array.from(extrinsics) })));
    let theirs: { forwardUs: number; forwardBackwardUs: number } | undefined;
    breakdowns.push([`${views} view(s) ${size}x${size}${ours.workItems ? `; work items ${JSON.stringify(ours.workItems)}` : ''}`, ours.stages ?? []]);
    const py = noBaseline ? { status: 1, stdout: '', stderr: 'skipped (--no-nvdiffrast)', error: undefined } : spawnSync(process.env.PYTHON ?? 'python3', [path.join(__dirname, 'raster_nvdiffrast.py'), work, `cams_${views}x${size}.json`, String(iters), ...(mip ? ['mip'] : [])], { encoding: 'utf8' });
    if (py.status === 0) {
      const line = py.stdout.trim().split('\n').pop() ?? '';
      try { theirs = JSON.parse(line); } catch { /* reported below */ }
    }
    if (!theirs) process.stderr.write(`nvdiffrast baseline did not run: ${(py.stderr || py.stdout || String(py.error)).trim().split('\n').slice(-3).join(' | ')}\n`);
    const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(1));
    const graphRatio = theirs && ours.forwardBackwardGraphUs ? ` (graph ${(theirs.forwardBackwardUs / ours.forwardBackwardGraphUs).toFixed(2)}x)` : '';
    const ratio = theirs ? `${(theirs.forwardBackwardUs / ours.forwardBackwardUs).toFixed(2)}x${graphRatio} (fwd ${(theirs.forwardUs / ours.forwardUs).toFixed(2)}x)` : 'n/a';
    console.log(`${`${views} view(s) ${size}x${size}`.padEnd(20)} | ${f(ours.forwardUs).padStart(13)} | ${f(ours.forwardBackwardUs).padStart(17)} | ${f(ours.forwardBackwardGraphUs).padStart(29)} | ${f(theirs?.forwardUs).padStart(19)} | ${f(theirs?.forwardBackwardUs).padStart(23)} | ${ratio}`);
  }
  if (sweep.length || gradSweep) {
    console.log('\nsweep, 4 views 512x512 (ours): chunk x bigArea, gradients | fwd (us) | fwd+bwd (us) | graph (us) | resolve (us) | raster (us) | bwd pixels (us) | bwd silhouette edges (us)');
    const runs: [number | undefined, number | undefined, string][] = sweep.map(([c, b]) => [c, b, 'both']);
    if (gradSweep) runs.push([undefined, undefined, 'texture'], [undefined, undefined, 'positions']);
    for (const [chunk, bigArea, gradients] of runs) {
      const r = n.rasterBenchmark({ ...inputs(4, 512), chunk, bigArea, gradients });
      const st = (k: string) => (r.stages ?? []).find((s) => s.stage.includes(k))?.us.toFixed(1) ?? 'n/a';
      console.log(`  ${`${chunk ?? 'default'}x${bigArea ?? 'default'}, ${gradients}`.padStart(28)} | ${r.forwardUs.toFixed(1)} | ${r.forwardBackwardUs.toFixed(1)} | ${r.forwardBackwardGraphUs?.toFixed(1)} | ${st('resolve')} | ${st('+ raster')} | ${st('bwd pixels')} | ${st('silhouette edges')}`);
    }
  }
  for (const [name, stages] of breakdowns) {
    const total = stages.reduce((a, s) => a + s.us, 0);
    console.log(`\nstage breakdown, ours fwd+bwd, ${name} (events between stages; total ${total.toFixed(1)} us)`);
    for (const s of stages) console.log(`  ${s.stage.padEnd(40)} ${s.us.toFixed(1).padStart(8)} us  ${((100 * s.us) / (total || 1)).toFixed(0).padStart(3)}%`);
  }
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
