/**
 * HIFI3D++ importer (.mat, MATLAB v5 or v7.3): mu_shape [1,3V], basis_shape [Ki,3V], EVs [Ki,1],
 * basis_exp [Ke,3V], tri [T,3], tri_vt [T,3], vt_list [U,2], optional keypoints [1,86] and mask_face [1,V].
 * Indices may be 1-based (MATLAB) or 0-based; this is detected from their range.
 */
import { FaceG2EError } from '../errors';
import type { HeadModel, ModelPart, ModelUnits } from './format';
import { baseModel, basisToHalf } from './common';
import { readMat, type MatArray, type MatValue } from './mat';

export interface Hifi3dImportOptions {
  /** Length unit of the file; guessed from the template's size when omitted. */
  units?: ModelUnits;
  name?: string;
}

/** Guess the unit of a head-sized mesh from its largest extent (a head is about 0.2 m across). */
export function guessUnits(template: ArrayLike<number>): ModelUnits {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < template.length; i++) {
    const c = i % 3;
    lo[c] = Math.min(lo[c], template[i]);
    hi[c] = Math.max(hi[c], template[i]);
  }
  const ext = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
  return ext < 3 ? 'm' : ext < 60 ? 'cm' : 'mm';
}

function indices(a: MatArray, what: string, count: number, file: string, base?: number): { idx: Uint32Array; base: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of a.data) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
  const b = base ?? (lo >= 1 && hi === count ? 1 : 0);
  const idx = new Uint32Array(a.data.length);
  for (let i = 0; i < idx.length; i++) {
    const v = a.data[i] - b;
    if (!(Number.isInteger(v) && v >= 0 && v < count)) throw new FaceG2EError('E_FORMAT', `${file}: ${what} has index ${a.data[i]} out of range (count ${count}, ${b}-based)`);
    idx[i] = v;
  }
  return { idx, base: b };
}

export async function importHifi3d(file: string, options: Hifi3dImportOptions = {}): Promise<HeadModel> {
  const vars = await readMat(file, ['mu_shape', 'basis_shape', 'EVs', 'basis_exp', 'tri', 'tri_vt', 'vt_list', 'keypoints', 'mask_face']);
  const arr = (k: string, optional = false): MatArray | undefined => {
    const v: MatValue | undefined = vars.get(k);
    if (v === undefined || v === null) {
      if (optional) return undefined;
      throw new FaceG2EError('E_FORMAT', `${file}: missing variable '${k}' (expected HIFI3D++: mu_shape, basis_shape, basis_exp, tri, tri_vt, vt_list)`);
    }
    if (typeof v === 'string' || v instanceof Map) throw new FaceG2EError('E_FORMAT', `${file}: variable '${k}' is not a numeric array`);
    return v;
  };
  const mu = arr('mu_shape')!;
  const n = mu.data.length;
  if (n % 3 !== 0) throw new FaceG2EError('E_FORMAT', `${file}: mu_shape has ${n} values, not a multiple of 3`);
  const V = n / 3;
  const modes = (a: MatArray, what: string) => {
    if (a.dims.length !== 2) throw new FaceG2EError('E_FORMAT', `${file}: ${what} has dims [${a.dims.join(', ')}], expected [K, ${n}]`);
    if (a.dims[1] === n) return { K: a.dims[0], strides: { k: n, v: 3, c: 1 } };
    if (a.dims[0] === n) return { K: a.dims[1], strides: { k: 1, v: 3 * a.dims[1], c: a.dims[1] } };
    throw new FaceG2EError('E_FORMAT', `${file}: ${what} has dims [${a.dims.join(', ')}], expected [K, ${n}]`);
  };
  const bs = arr('basis_shape')!;
  const be = arr('basis_exp')!;
  const ms = modes(bs, 'basis_shape');
  const me = modes(be, 'basis_exp');
  const triA = arr('tri')!;
  const tvA = arr('tri_vt')!;
  const vtA = arr('vt_list')!;
  if (triA.dims.length !== 2 || triA.dims[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: tri has dims [${triA.dims.join(', ')}], expected [T, 3]`);
  if (tvA.dims[0] !== triA.dims[0] || tvA.dims[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: tri_vt has dims [${tvA.dims.join(', ')}], expected [${triA.dims[0]}, 3]`);
  if (vtA.dims.length !== 2 || vtA.dims[1] !== 2) throw new FaceG2EError('E_FORMAT', `${file}: vt_list has dims [${vtA.dims.join(', ')}], expected [U, 2]`);
  const U = vtA.dims[0];
  const T = triA.dims[0];
  const { idx: tri, base } = indices(triA, 'tri', V, file);
  const { idx: uvTri } = indices(tvA, 'tri_vt', U, file, base);
  const template = Float32Array.from(mu.data);
  const units = options.units ?? guessUnits(template);
  const extra: Record<string, string> = {
    license: 'HIFI3D++ (Tencent AI Lab, REALY): see its licence terms',
    index_base_in_source: String(base),
    identity_normalisation: 'basis_shape as published; coefficients used directly',
  };
  const ev = arr('EVs', true);
  if (ev) extra.source_identity_evs = JSON.stringify(Array.from(ev.data, (x) => Number(x.toPrecision(6))));
  if (!options.units) extra.units_note = `units guessed from the template's size (${units})`;
  const parts: ModelPart[] = [{ name: 'head', kind: 'geometry', vertices: Uint32Array.from({ length: V }, (_, i) => i) }];
  const mask = arr('mask_face', true);
  if (mask && mask.data.length === V) {
    const v: number[] = [];
    mask.data.forEach((x, i) => { if (x) v.push(i); });
    parts.push({ name: 'face', kind: 'region', vertices: Uint32Array.from(v) });
  }
  let landmarks: HeadModel['landmarks'];
  const kp = arr('keypoints', true);
  if (kp) landmarks = { scheme: kp.data.length === 86 ? 'hifi3d86' : 'custom', vertex: indices(kp, 'keypoints', V, file, base).idx };
  return {
    name: options.name ?? 'HIFI3D++',
    source: 'hifi3d',
    ...baseModel(units),
    vertexCount: V,
    triangleCount: T,
    uvCount: U,
    template,
    tri,
    uv: Float32Array.from(vtA.data),
    uvTri,
    identityBasis: basisToHalf(bs.data, ms.K, V, ms.strides, undefined, `${file}: basis_shape`),
    identityNames: Array.from({ length: ms.K }, (_, k) => `shape${String(k).padStart(3, '0')}`),
    identityScale: new Float32Array(ms.K).fill(1),
    expressionBasis: basisToHalf(be.data, me.K, V, me.strides, undefined, `${file}: basis_exp`),
    expressionNames: Array.from({ length: me.K }, (_, k) => `expr${String(k).padStart(3, '0')}`),
    expressionScale: new Float32Array(me.K).fill(1),
    expressionKind: 'pca',
    parts,
    landmarks,
    sourceVertex: Uint32Array.from({ length: V }, (_, i) => i),
    sourceVertexCount: V,
    extra,
  };
}
