/** Helpers shared by the model importers. */
import * as fs from 'node:fs';
import { FaceG2EError } from '../errors';
import { floatToHalf } from '../io/npy';
import type { TriangleMesh } from '../io/obj';
import type { HeadModel, ModelUnits } from './format';
import { METRES_PER_UNIT } from './format';

export interface Subset {
  /** New index of each source vertex, -1 when dropped. */
  newIndex: Int32Array;
  /** Source index of each kept vertex. */
  sourceVertex: Uint32Array;
  tri: Uint32Array;
  uv: Float32Array;
  uvTri: Uint32Array;
  /** Source triangle of each kept triangle. */
  keptTriangles: Uint32Array;
}

/** Keep the vertices with keep[v] != 0 and the triangles whose three vertices are kept; compact the UVs. */
export function subsetMesh(mesh: TriangleMesh, keep: Uint8Array): Subset {
  const V = mesh.positions.length / 3;
  const newIndex = new Int32Array(V).fill(-1);
  let n = 0;
  for (let v = 0; v < V; v++) if (keep[v]) newIndex[v] = n++;
  const sourceVertex = new Uint32Array(n);
  for (let v = 0; v < V; v++) if (newIndex[v] >= 0) sourceVertex[newIndex[v]] = v;
  const T0 = mesh.tri.length / 3;
  const kept: number[] = [];
  for (let t = 0; t < T0; t++) {
    if (newIndex[mesh.tri[3 * t]] >= 0 && newIndex[mesh.tri[3 * t + 1]] >= 0 && newIndex[mesh.tri[3 * t + 2]] >= 0) kept.push(t);
  }
  const T = kept.length;
  const tri = new Uint32Array(T * 3);
  const uvTri = new Uint32Array(T * 3);
  const U0 = mesh.uvs.length / 2;
  const uvNew = new Int32Array(U0).fill(-1);
  let nu = 0;
  for (let i = 0; i < T; i++) {
    const t = kept[i];
    for (let k = 0; k < 3; k++) {
      tri[3 * i + k] = newIndex[mesh.tri[3 * t + k]];
      const u = mesh.uvTri[3 * t + k];
      if (uvNew[u] < 0) uvNew[u] = nu++;
      uvTri[3 * i + k] = uvNew[u];
    }
  }
  const uv = new Float32Array(nu * 2);
  for (let u = 0; u < U0; u++) if (uvNew[u] >= 0) { uv[2 * uvNew[u]] = mesh.uvs[2 * u]; uv[2 * uvNew[u] + 1] = mesh.uvs[2 * u + 1]; }
  return { newIndex, sourceVertex, tri, uv, uvTri, keptTriangles: Uint32Array.from(kept) };
}

/** Gather rows [K, Vsrc, 3] (float16 bits) at the kept vertices → [K, V, 3]. */
export function gatherHalfBasis(src: Uint16Array, K: number, Vsrc: number, sourceVertex: Uint32Array): Uint16Array {
  const V = sourceVertex.length;
  const out = new Uint16Array(K * V * 3);
  for (let k = 0; k < K; k++) {
    const sb = k * Vsrc * 3;
    const ob = k * V * 3;
    for (let i = 0; i < V; i++) {
      const s = sb + sourceVertex[i] * 3;
      const o = ob + i * 3;
      out[o] = src[s]; out[o + 1] = src[s + 1]; out[o + 2] = src[s + 2];
    }
  }
  return out;
}

/**
 * Convert a float basis with element (k, v, c) at src[k*sk + v*sv + c*sc] to float16 [K,V,3], multiplying
 * mode k by scale[k] (when given). Values that overflow float16 raise E_FORMAT.
 */
export function basisToHalf(
  src: ArrayLike<number>, K: number, V: number, strides: { k: number; v: number; c: number }, scale?: ArrayLike<number>, what = 'basis',
): Uint16Array {
  const out = new Uint16Array(K * V * 3);
  for (let k = 0; k < K; k++) {
    const s = scale ? scale[k] : 1;
    for (let v = 0; v < V; v++) {
      for (let c = 0; c < 3; c++) {
        const x = src[k * strides.k + v * strides.v + c * strides.c] * s;
        if (!Number.isFinite(x) || Math.abs(x) > 65504) throw new FaceG2EError('E_FORMAT', `${what}: value ${x} (mode ${k}, vertex ${v}) is not finite or does not fit float16`);
        out[(k * V + v) * 3 + c] = floatToHalf(x);
      }
    }
  }
  return out;
}

export function baseModel(units: ModelUnits): Pick<HeadModel, 'units' | 'metresPerUnit'> {
  return { units, metresPerUnit: METRES_PER_UNIT[units] };
}

export function requireFile(file: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new FaceG2EError('E_IO', `${what} not found: ${file}`);
  }
  if (!st.isFile()) throw new FaceG2EError('E_IO', `${what} is not a file: ${file}`);
}

/** A vertex-count-only UV set for sources without UVs: one (0,0) UV that every corner uses. */
export function noUvs(T: number): { uv: Float32Array; uvTri: Uint32Array } {
  return { uv: new Float32Array(2), uvTri: new Uint32Array(T * 3) };
}

/** Dynamic import of an ES module from CommonJS output (TypeScript would turn import() into require()). */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
export const importEsm = new Function('s', 'return import(s)') as <T = any>(s: string) => Promise<T>;

/**
 * UVs for a model's triangles from a template OBJ with the same vertices (e.g. FLAME's head_template.obj):
 * each model triangle is matched to the template triangle over the same three vertices.
 */
export function uvFromTemplate(template: TriangleMesh, tri: Uint32Array, V: number, file: string): { uv: Float32Array; uvTri: Uint32Array } {
  const Vt = template.positions.length / 3;
  if (Vt !== V) throw new FaceG2EError('E_INVALID_ARGUMENT', `UV template ${file} has ${Vt} vertices but the model has ${V}; give the template OBJ of this model`);
  const key = (a: number, b: number, c: number) => {
    const s = [a, b, c].sort((x, y) => x - y);
    return `${s[0]},${s[1]},${s[2]}`;
  };
  const byKey = new Map<string, number>();
  const Tt = template.tri.length / 3;
  for (let t = 0; t < Tt; t++) byKey.set(key(template.tri[3 * t], template.tri[3 * t + 1], template.tri[3 * t + 2]), t);
  const T = tri.length / 3;
  const uvTri = new Uint32Array(T * 3);
  for (let t = 0; t < T; t++) {
    const a = tri[3 * t], b = tri[3 * t + 1], c = tri[3 * t + 2];
    const s = byKey.get(key(a, b, c));
    if (s === undefined) throw new FaceG2EError('E_INVALID_ARGUMENT', `UV template ${file} has no triangle over vertices ${a}, ${b}, ${c} (model triangle ${t}); is it this model's template?`);
    for (let k = 0; k < 3; k++) {
      const v = tri[3 * t + k];
      let j = 0;
      while (j < 3 && template.tri[3 * s + j] !== v) j++;
      uvTri[3 * t + k] = template.uvTri[3 * s + j];
    }
  }
  return { uv: template.uvs, uvTri };
}
