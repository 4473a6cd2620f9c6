/**
 * Output writers. Every writer is atomic (temporary file in the same folder, fsync, rename; removed on error).
 * Inputs are plain typed arrays, independent of the native code:
 *
 *   mesh      MeshData  {positions: Float32Array V×3, tri: Uint32Array T×3, uvs?: Float32Array U×2, uvTri?: Uint32Array T×3}
 *   images    ImageInput {data: Float32Array in [0,1] | Uint8Array, width, height, channels?: 1|3|4}, row 0 at the top
 *
 * `writeRunOutputs(cfg.output, data)` writes everything a run's `output` config asks for, as one batch: the files
 * appear together, after all were written, and run.json is written last.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FaceG2EError } from '../errors';
import type { OutputConfig } from '../config/types';
import { withOutputBatch, writeAtomic } from './atomic';
import { formatCoefficients, type Coefficients } from './coefficients';
import { stageGlb, type GlbOptions } from './glb';
import { stageGridPng } from './grid';
import { encodePng, type ImageInput } from './image';
import type { MeshData } from './mesh';
import { stageObjBundle } from './obj';
import { formatRunJson, type RunRecord } from './run-json';
import { stageTurntableWebp } from './turntable';

export * from './atomic';
export * from './image';
export * from './mesh';
export * from './obj';
export * from './glb';
export * from './coefficients';
export * from './grid';
export * from './turntable';
export * from './run-json';

/** File names of the outputs (relative to output.dir). */
export const OUTPUT_NAMES = {
  obj: ['mesh.obj', 'mesh.mtl', 'texture.png'],
  glb: ['head.glb'],
  coefficients: ['coefficients.json'],
  previews: ['preview.png'],
  turntable: ['turntable.webp'],
  runJson: ['run.json'],
} as const;

/** The files a run with this output config will write (absolute paths). */
export function plannedOutputs(output: OutputConfig): string[] {
  const out: string[] = [];
  for (const [k, names] of Object.entries(OUTPUT_NAMES)) if (output.files[k as keyof typeof OUTPUT_NAMES]) for (const n of names) out.push(path.resolve(output.dir, n));
  return out;
}

/**
 * Before a run: fail early (E_IO) when `output.overwrite` is false and an output exists, or when output.dir
 * exists but is not a folder.
 */
export function checkOutputs(output: OutputConfig): void {
  const dir = path.resolve(output.dir);
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new FaceG2EError('E_IO', `output.dir ${dir} exists and is not a folder`);
  if (output.overwrite) return;
  const existing = plannedOutputs(output).filter((f) => fs.existsSync(f));
  if (existing.length) {
    throw new FaceG2EError('E_IO', `output files exist and output.overwrite is false: ${existing.join(', ')}`, {
      details: existing.map((f) => ({ path: f, message: 'exists (set output.overwrite to true, or choose another output.dir)' })),
    });
  }
}

export interface RunOutputs {
  mesh: MeshData;
  /** The UV texture (H×W×3, row 0 at the top). */
  texture?: ImageInput;
  coefficients?: Coefficients;
  /** Preview renders, row-major: for each kind of output.previews.kinds, one image per view. */
  previews?: ImageInput[];
  /** Turntable frames. */
  turntable?: ImageInput[];
  /** run.json content (its `outputs` field is filled in here). */
  run?: Omit<RunRecord, 'outputs'>;
  glb?: GlbOptions;
  /** Comment at the top of mesh.obj. */
  objComment?: string;
}

/**
 * Write the outputs enabled in `output.files` into `output.dir` (created if missing), all in one batch; run.json
 * is written after the others are in place. Returns the written paths. Outputs whose data is missing are skipped
 * (previews without `previews`, ...), except the mesh, which every run has.
 */
export async function writeRunOutputs(output: OutputConfig, data: RunOutputs): Promise<string[]> {
  checkOutputs(output);
  const dir = path.resolve(output.dir);
  const f = output.files;
  const { files } = await withOutputBatch(dir, async (batch) => {
    const texturePng = data.texture ? await encodePng(data.texture, 'texture') : undefined;
    if (f.obj) await stageObjBundle(batch, data.mesh, data.texture, { comment: data.objComment });
    if (f.glb) await stageGlb(batch, 'head.glb', data.mesh, data.texture, { ...data.glb, texturePng });
    if (f.coefficients && data.coefficients) await batch.add('coefficients.json', formatCoefficients(data.coefficients));
    if (f.previews && data.previews?.length) {
      const cols = output.previews.views.length;
      if (data.previews.length % cols !== 0) {
        throw new FaceG2EError('E_INVALID_ARGUMENT', `previews: expected a multiple of ${cols} images (one per view of output.previews.views, per kind), got ${data.previews.length}`);
      }
      await stageGridPng(batch, 'preview.png', data.previews, { columns: cols });
    }
    if (f.turntable && data.turntable?.length) await stageTurntableWebp(batch, 'turntable.webp', data.turntable, { fps: output.turntable.fps, quality: output.turntable.quality });
  });
  if (f.runJson && data.run) {
    const rel = files.map((p) => path.relative(dir, p));
    const runFile = path.join(dir, 'run.json');
    await writeAtomic(runFile, formatRunJson({ ...data.run, outputs: [...rel, 'run.json'] }));
    files.push(runFile);
  }
  return files;
}
