/**
 * The head as plain typed arrays, and its checks. Positions and triangles have their own topology; UVs have a
 * separate one (`uvTri`), as in OBJ files, so a vertex on a UV seam has several UVs.
 *
 * UV convention: OBJ's, v pointing up: (0, 0) is the bottom-left corner of the texture image and (0, 1) the
 * top-left. Texture images are stored top row first.
 */
import { FaceG2EError } from '../errors';

export interface MeshData {
  /** Vertex positions, V×3 (metres, or the model's units). */
  positions: Float32Array;
  /** Triangles as position indices, T×3. */
  tri: Uint32Array;
  /** Texture coordinates, U×2 (OBJ convention, see above). */
  uvs?: Float32Array;
  /** Triangles as UV indices, T×3 (required with `uvs`). */
  uvTri?: Uint32Array;
  /** Per-vertex normals, V×3; computed (area-weighted) when absent. */
  normals?: Float32Array;
}

function bad(msg: string): FaceG2EError {
  return new FaceG2EError('E_INVALID_ARGUMENT', msg);
}

/** Check shapes, index ranges and finiteness; returns {V, T, U}. `what` names the mesh in errors. */
export function checkMesh(m: MeshData, what = 'mesh'): { V: number; T: number; U: number } {
  if (!(m.positions instanceof Float32Array) || m.positions.length % 3 !== 0) throw bad(`${what}.positions: expected a Float32Array of V×3 values`);
  if (!(m.tri instanceof Uint32Array) || m.tri.length % 3 !== 0 || m.tri.length === 0) throw bad(`${what}.tri: expected a non-empty Uint32Array of T×3 indices`);
  const V = m.positions.length / 3;
  const T = m.tri.length / 3;
  for (let i = 0; i < m.positions.length; i++) {
    if (!Number.isFinite(m.positions[i])) throw new FaceG2EError('E_NUMERICAL', `${what}.positions: ${m.positions[i]} at vertex ${Math.floor(i / 3)}`);
  }
  for (let i = 0; i < m.tri.length; i++) if (m.tri[i] >= V) throw bad(`${what}.tri[${i}] = ${m.tri[i]}: expected an index < V = ${V}`);
  let U = 0;
  if (m.uvs !== undefined || m.uvTri !== undefined) {
    if (!(m.uvs instanceof Float32Array) || m.uvs.length % 2 !== 0) throw bad(`${what}.uvs: expected a Float32Array of U×2 values`);
    if (!(m.uvTri instanceof Uint32Array) || m.uvTri.length !== m.tri.length) throw bad(`${what}.uvTri: expected a Uint32Array of T×3 = ${m.tri.length} indices`);
    U = m.uvs.length / 2;
    for (let i = 0; i < m.uvs.length; i++) if (!Number.isFinite(m.uvs[i])) throw new FaceG2EError('E_NUMERICAL', `${what}.uvs: ${m.uvs[i]} at UV ${Math.floor(i / 2)}`);
    for (let i = 0; i < m.uvTri.length; i++) if (m.uvTri[i] >= U) throw bad(`${what}.uvTri[${i}] = ${m.uvTri[i]}: expected an index < U = ${U}`);
  }
  if (m.normals !== undefined) {
    if (!(m.normals instanceof Float32Array) || m.normals.length !== m.positions.length) throw bad(`${what}.normals: expected a Float32Array of V×3 = ${m.positions.length} values`);
    for (let i = 0; i < m.normals.length; i++) if (!Number.isFinite(m.normals[i])) throw new FaceG2EError('E_NUMERICAL', `${what}.normals: ${m.normals[i]} at vertex ${Math.floor(i / 3)}`);
  }
  return { V, T, U };
}

/** Area-weighted vertex normals (unit length; (0, 0, 1) for vertices on no triangle of positive area). */
export function vertexNormals(positions: Float32Array, tri: Uint32Array): Float32Array {
  const n = new Float64Array(positions.length);
  for (let t = 0; t < tri.length; t += 3) {
    const a = tri[t] * 3;
    const b = tri[t + 1] * 3;
    const c = tri[t + 2] * 3;
    const e1x = positions[b] - positions[a], e1y = positions[b + 1] - positions[a + 1], e1z = positions[b + 2] - positions[a + 2];
    const e2x = positions[c] - positions[a], e2y = positions[c + 1] - positions[a + 1], e2z = positions[c + 2] - positions[a + 2];
    const nx = e1y * e2z - e1z * e2y, ny = e1z * e2x - e1x * e2z, nz = e1x * e2y - e1y * e2x; // 2 × area × unit normal
    for (const v of [a, b, c]) {
      n[v] += nx;
      n[v + 1] += ny;
      n[v + 2] += nz;
    }
  }
  const out = new Float32Array(positions.length);
  for (let v = 0; v < n.length; v += 3) {
    const len = Math.hypot(n[v], n[v + 1], n[v + 2]);
    if (len > 0) {
      out[v] = n[v] / len;
      out[v + 1] = n[v + 1] / len;
      out[v + 2] = n[v + 2] / len;
    } else out[v + 2] = 1;
  }
  return out;
}

export interface SplitMesh {
  /** One vertex per distinct (position, UV) corner pair. */
  positions: Float32Array;
  normals: Float32Array;
  /** UVs per vertex (OBJ convention), when the mesh has UVs. */
  uvs?: Float32Array;
  indices: Uint32Array;
  /** The source position index of each vertex. */
  sourceVertex: Uint32Array;
}

/**
 * Resolve the separate UV topology into one index buffer (as glTF needs): a vertex is made for every distinct
 * (position index, UV index) pair, so vertices on UV seams are split. Normals are the source vertex's (smooth
 * across seams).
 */
export function splitAtUvSeams(m: MeshData): SplitMesh {
  const { V, T } = checkMesh(m);
  const normalsSrc = m.normals ?? vertexNormals(m.positions, m.tri);
  const hasUv = m.uvs !== undefined;
  const key = new Map<number, number>();
  const src: number[] = [];
  const uvSrc: number[] = [];
  const indices = new Uint32Array(T * 3);
  const U = hasUv ? m.uvs!.length / 2 : 1;
  for (let i = 0; i < T * 3; i++) {
    const p = m.tri[i];
    const u = hasUv ? m.uvTri![i] : 0;
    const k = p * U + u; // < V × U; exact in a double up to 2^53
    let idx = key.get(k);
    if (idx === undefined) {
      idx = src.length;
      key.set(k, idx);
      src.push(p);
      uvSrc.push(u);
    }
    indices[i] = idx;
  }
  const N = src.length;
  const positions = new Float32Array(N * 3);
  const normals = new Float32Array(N * 3);
  const uvs = hasUv ? new Float32Array(N * 2) : undefined;
  for (let j = 0; j < N; j++) {
    const p = src[j];
    positions.set(m.positions.subarray(3 * p, 3 * p + 3), 3 * j);
    normals.set(normalsSrc.subarray(3 * p, 3 * p + 3), 3 * j);
    if (uvs) uvs.set(m.uvs!.subarray(2 * uvSrc[j], 2 * uvSrc[j] + 2), 2 * j);
  }
  void V;
  return { positions, normals, uvs, indices, sourceVertex: Uint32Array.from(src) };
}
