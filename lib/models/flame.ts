/**
 * FLAME importer (FLAME 2020 / 2023 `generic_model.pkl` / `flame2023.pkl`, Python-2 pickles with chumpy
 * objects and a scipy csc J_regressor), parsed by our own safe unpickler. UVs come from a head-template
 * OBJ (`--uv-template`, e.g. FLAME's head_template.obj). FLAME is in metres.
 */
import { FaceG2EError } from '../errors';
import { readObj, triangulate } from '../io/obj';

import type { HeadModel } from './format';
import { baseModel, basisToHalf, noUvs, uvFromTemplate } from './common';
import { unpickle, asArray, asDenseMatrix } from './pickle';
import { readFileBytes } from '../io/files';

export interface FlameImportOptions {
  /** OBJ with this model's vertices and UVs (FLAME head_template.obj). */
  uvTemplate?: string;
  /** Number of shapedirs modes that are identity (default 300); the rest are expression. */
  identityModes?: number;
  name?: string;
}

export const FLAME_JOINTS = ['global', 'neck', 'jaw', 'eye_left', 'eye_right'];

export async function importFlame(file: string, options: FlameImportOptions = {}): Promise<HeadModel> {
  const bytes = await readFileBytes(file);
  if (bytes.length < 2 || bytes[0] !== 0x80) throw new FaceG2EError('E_FORMAT', `${file}: not a FLAME pickle (expected a Python pickle, protocol 2 or later)`);
  const root = unpickle(bytes, file);
  if (!(root instanceof Map)) throw new FaceG2EError('E_FORMAT', `${file}: the pickle is not a dict (expected FLAME's dict with v_template, f, shapedirs, ...)`);
  const get = (k: string) => {
    if (!root.has(k)) throw new FaceG2EError('E_FORMAT', `${file}: missing '${k}' (is this a FLAME model pickle?)`);
    return root.get(k);
  };
  const vt = asArray(get('v_template'), 'v_template', file);
  if (vt.shape.length !== 2 || vt.shape[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: v_template has shape [${vt.shape.join(', ')}], expected [V, 3]`);
  const V = vt.shape[0];
  const f = asArray(get('f'), 'f', file);
  if (f.shape.length !== 2 || f.shape[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: f has shape [${f.shape.join(', ')}], expected [T, 3]`);
  const T = f.shape[0];
  const fv = f.toFloat64();
  const tri = new Uint32Array(T * 3);
  for (let i = 0; i < tri.length; i++) {
    if (!(fv[i] >= 0 && fv[i] < V && Number.isInteger(fv[i]))) throw new FaceG2EError('E_FORMAT', `${file}: f[${Math.floor(i / 3)}] has vertex index ${fv[i]} (V = ${V})`);
    tri[i] = fv[i];
  }
  const sd = asArray(get('shapedirs'), 'shapedirs', file);
  if (sd.shape.length !== 3 || sd.shape[0] !== V || sd.shape[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: shapedirs has shape [${sd.shape.join(', ')}], expected [${V}, 3, K]`);
  const K = sd.shape[2];
  const Ki = Math.min(options.identityModes ?? 300, K);
  const Ke = K - Ki;
  const sdv = sd.toFloat64();
  // shapedirs[v, c, k] at v*3K + c*K + k
  const identityBasis = basisToHalf(sdv, Ki, V, { k: 1, v: 3 * K, c: K }, undefined, `${file}: shapedirs`);
  const expressionBasis = basisToHalf(sdv.subarray(Ki), Ke, V, { k: 1, v: 3 * K, c: K }, undefined, `${file}: shapedirs`);

  // skinning
  const kt = asArray(get('kintree_table'), 'kintree_table', file);
  if (kt.shape.length !== 2 || kt.shape[0] !== 2) throw new FaceG2EError('E_FORMAT', `${file}: kintree_table has shape [${kt.shape.join(', ')}], expected [2, J]`);
  const J = kt.shape[1];
  const ktv = kt.toFloat64();
  const idToIndex = new Map<number, number>();
  for (let j = 0; j < J; j++) idToIndex.set(ktv[J + j], j);
  const parents = new Int32Array(J);
  for (let j = 0; j < J; j++) {
    const pid = ktv[j];
    parents[j] = idToIndex.has(pid) && idToIndex.get(pid) !== j ? idToIndex.get(pid)! : -1;
  }
  const w = asArray(get('weights'), 'weights', file);
  if (w.shape.length !== 2 || w.shape[0] !== V || w.shape[1] !== J) throw new FaceG2EError('E_FORMAT', `${file}: weights has shape [${w.shape.join(', ')}], expected [${V}, ${J}]`);
  const jr = asDenseMatrix(get('J_regressor'), 'J_regressor', file);
  if (jr.rows !== J || jr.cols !== V) throw new FaceG2EError('E_FORMAT', `${file}: J_regressor is ${jr.rows}x${jr.cols}, expected ${J}x${V}`);
  let poseBasis: Uint16Array | undefined;
  if (root.has('posedirs')) {
    const pd = asArray(root.get('posedirs'), 'posedirs', file);
    if (pd.shape.length !== 3 || pd.shape[0] !== V || pd.shape[1] !== 3) throw new FaceG2EError('E_FORMAT', `${file}: posedirs has shape [${pd.shape.join(', ')}], expected [${V}, 3, P]`);
    const P = pd.shape[2];
    poseBasis = basisToHalf(pd.toFloat64(), P, V, { k: 1, v: 3 * P, c: P }, undefined, `${file}: posedirs`);
  }

  let uv: Float32Array;
  let uvTri: Uint32Array;
  const extra: Record<string, string> = {
    license: 'FLAME: licensed by MPI-IS for non-commercial research; see https://flame.is.tue.mpg.de',
    identity_normalisation: 'shapedirs as published (FLAME shape/expression coefficients ~ N(0,1))',
  };
  if (options.uvTemplate) {
    const tm = triangulate(await readObj(options.uvTemplate));
    ({ uv, uvTri } = uvFromTemplate(tm, tri, V, options.uvTemplate));
    extra.uv_source = options.uvTemplate.split(/[\\/]/).pop()!;
  } else {
    ({ uv, uvTri } = noUvs(T));
    extra.uv_source = 'none';
  }
  const version = K === 400 && root.has('shapedirs') ? (/2023/.test(file) ? '2023' : '2020') : '';
  return {
    name: options.name ?? `FLAME${version ? ` ${version}` : ''}`,
    source: 'flame',
    ...baseModel('m'),
    vertexCount: V,
    triangleCount: T,
    uvCount: uv.length / 2,
    template: Float32Array.from(vt.toFloat64()),
    tri,
    uv,
    uvTri,
    identityBasis,
    identityNames: Array.from({ length: Ki }, (_, k) => `shape${String(k).padStart(3, '0')}`),
    identityScale: new Float32Array(Ki).fill(1),
    expressionBasis,
    expressionNames: Array.from({ length: Ke }, (_, k) => `expr${String(k).padStart(3, '0')}`),
    expressionScale: new Float32Array(Ke).fill(1),
    expressionKind: 'pca',
    parts: [{ name: 'head', kind: 'geometry', vertices: Uint32Array.from({ length: V }, (_, i) => i) }],
    sourceVertex: Uint32Array.from({ length: V }, (_, i) => i),
    sourceVertexCount: V,
    skinning: {
      jointNames: J === FLAME_JOINTS.length ? FLAME_JOINTS : Array.from({ length: J }, (_, j) => `joint${j}`),
      parents,
      weights: Float32Array.from(w.toFloat64()),
      jointRegressor: Float32Array.from(jr.data),
      poseBasis,
      poseFeature: poseBasis ? 'flame-lrotmin: flatten(R_j - I) for joints 1..J-1 (row-major 3x3), P = 9*(J-1)' : undefined,
    },
    extra,
  };
}

