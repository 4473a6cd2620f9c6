/**
 * Wavefront OBJ / MTL reading and writing.
 *
 * parseObj keeps the file's polygons as they are (separate position / UV / normal index streams, groups
 * and materials per face); triangulate() turns them into the triangle + UV-triangle arrays that the
 * renderer and the morphable-model code use. writeObj/writeMtl export textured triangle meshes atomically.
 */
import * as path from 'node:path';
import { FaceG2EError } from '../errors';
import { writeFileAtomic } from './atomic';
import { readFileText } from './files';

export interface ObjFaces {
  /** Number of corners of each face (3 for triangles, 4 for quads, ...). */
  vertexCounts: Uint32Array;
  /** 0-based position index of every corner, faces one after another. */
  positionIndex: Uint32Array;
  /** 0-based UV index of every corner, -1 where the corner has none. */
  uvIndex: Int32Array;
  /** 0-based normal index of every corner (-1 where absent); undefined when no face has normals. */
  normalIndex?: Int32Array;
}

export interface ObjMesh {
  /** Vertex positions, V×3. */
  positions: Float32Array;
  /** Texture coordinates, U×2 (the optional third `vt` component is dropped). */
  uvs: Float32Array;
  /** Vertex normals, N×3, when the file has `vn` lines. */
  normals?: Float32Array;
  faces: ObjFaces;
  /** Index into `groups` of each face (the last `g` before it), when the file has `g`/`o` lines. */
  faceGroup?: Int32Array;
  groups: string[];
  /** Index into `materials` of each face (the last `usemtl` before it, -1 before any), when the file has `usemtl`. */
  faceMaterial?: Int32Array;
  materials: string[];
  /** `mtllib` file names, as written in the file. */
  mtllib: string[];
}

export interface TriangleMesh {
  positions: Float32Array;
  /** Triangles as position indices, T×3. */
  tri: Uint32Array;
  /** UVs, U×2; when some corners had no UV, one extra (0,0) UV is appended and those corners point at it. */
  uvs: Float32Array;
  /** Triangles as UV indices, T×3. */
  uvTri: Uint32Array;
  /** The OBJ face each triangle came from. */
  faceOfTriangle: Uint32Array;
}

class Growable<T extends Float32Array | Uint32Array | Int32Array> {
  data: T;
  length = 0;
  constructor(private readonly ctor: new (n: number) => T, cap = 1024) {
    this.data = new ctor(cap);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const n = new this.ctor(this.data.length * 2);
      n.set(this.data as never);
      this.data = n;
    }
    this.data[this.length++] = v;
  }
  finish(): T {
    return this.data.slice(0, this.length) as T;
  }
}

function formatError(name: string, line: number, msg: string): FaceG2EError {
  return new FaceG2EError('E_FORMAT', `${name}:${line}: ${msg}`);
}

/** Parse OBJ text. `name` (a file path) is used in error messages. */
/** The index of `name` in `list`, appended (and indexed) on first sight. */
function intern(list: string[], index: Map<string, number>, name: string): number {
  let i = index.get(name);
  if (i === undefined) {
    i = list.length;
    list.push(name);
    index.set(name, i);
  }
  return i;
}

export function parseObj(text: string, name = '<obj>'): ObjMesh {
  const pos = new Growable(Float32Array, 3 * 4096);
  const uv = new Growable(Float32Array, 2 * 4096);
  const nrm = new Growable(Float32Array, 3 * 1024);
  const counts = new Growable(Uint32Array, 4096);
  const pIdx = new Growable(Uint32Array, 4 * 4096);
  const tIdx = new Growable(Int32Array, 4 * 4096);
  const nIdx = new Growable(Int32Array, 4 * 4096);
  const fGroup = new Growable(Int32Array, 4096);
  const fMat = new Growable(Int32Array, 4096);
  const groups: string[] = [];
  const groupIndex = new Map<string, number>();
  const materials: string[] = [];
  const materialIndex = new Map<string, number>();
  const mtllib: string[] = [];
  let curGroup = -1;
  let curMat = -1;
  let anyNormal = false;
  let anyGroup = false;
  let anyMat = false;

  const lines = text.split('\n');
  let lineNo = 0;
  for (let li = 0; li < lines.length; li++) {
    lineNo = li + 1;
    let line = lines[li];
    // line continuations
    while (line.endsWith('\\') || line.endsWith('\\\r')) {
      line = line.replace(/\\\r?$/, ' ') + (lines[++li] ?? '');
    }
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line.length === 0) continue;
    const parts = line.split(/\s+/);
    const kw = parts[0];
    switch (kw) {
      case 'v':
      case 'vn': {
        if (parts.length < 4) throw formatError(name, lineNo, `'${kw}' needs 3 numbers, got ${parts.length - 1}`);
        const target = kw === 'v' ? pos : nrm;
        for (let k = 1; k <= 3; k++) {
          const x = Number(parts[k]);
          if (!Number.isFinite(x)) throw formatError(name, lineNo, `'${kw}' component ${k} is not a finite number: '${parts[k]}'`);
          target.push(x);
        }
        break;
      }
      case 'vt': {
        if (parts.length < 2) throw formatError(name, lineNo, `'vt' needs at least 1 number`);
        for (let k = 1; k <= 2; k++) {
          const x = k < parts.length ? Number(parts[k]) : 0;
          if (!Number.isFinite(x)) throw formatError(name, lineNo, `'vt' component ${k} is not a finite number: '${parts[k]}'`);
          uv.push(x);
        }
        break;
      }
      case 'f': {
        const n = parts.length - 1;
        if (n < 3) throw formatError(name, lineNo, `a face needs at least 3 corners, got ${n}`);
        const nv = pos.length / 3;
        const nt = uv.length / 2;
        const nn = nrm.length / 3;
        for (let k = 1; k <= n; k++) {
          const c = parts[k].split('/');
          if (c.length > 3) throw formatError(name, lineNo, `bad face corner '${parts[k]}' (expected v, v/vt, v//vn or v/vt/vn)`);
          const resolve = (s: string, count: number, what: string): number => {
            const i = Number(s);
            if (!Number.isInteger(i) || i === 0) throw formatError(name, lineNo, `bad ${what} index '${s}' in face corner '${parts[k]}'`);
            const r = i > 0 ? i - 1 : count + i;
            if (r < 0 || r >= count) throw formatError(name, lineNo, `${what} index ${i} out of range (${count} defined so far)`);
            return r;
          };
          pIdx.push(resolve(c[0], nv, 'position'));
          tIdx.push(c.length > 1 && c[1] !== '' ? resolve(c[1], nt, 'uv') : -1);
          if (c.length > 2 && c[2] !== '') {
            nIdx.push(resolve(c[2], nn, 'normal'));
            anyNormal = true;
          } else nIdx.push(-1);
        }
        counts.push(n);
        fGroup.push(curGroup);
        fMat.push(curMat);
        break;
      }
      case 'g':
      case 'o': {
        curGroup = intern(groups, groupIndex, parts.slice(1).join(' ') || 'default');
        anyGroup = true;
        break;
      }
      case 'usemtl': {
        curMat = intern(materials, materialIndex, parts.slice(1).join(' '));
        anyMat = true;
        break;
      }
      case 'mtllib':
        mtllib.push(...parts.slice(1));
        break;
      case 's':
      case 'l':
      case 'p':
      case 'vp':
        break; // smoothing groups, lines, points, parameter-space vertices: ignored
      default:
        if (/[\x00-\x08\x0e-\x1f]/.test(kw)) throw formatError(name, lineNo, 'binary data: this is not an OBJ text file');
        // unknown statements (curv, surf, cstype, ...) are ignored, as most readers do
        break;
    }
  }
  const mesh: ObjMesh = {
    positions: pos.finish(),
    uvs: uv.finish(),
    faces: { vertexCounts: counts.finish(), positionIndex: pIdx.finish(), uvIndex: tIdx.finish() },
    groups,
    materials,
    mtllib,
  };
  if (pos.length === 0) throw new FaceG2EError('E_FORMAT', `${name}: no vertices ('v' lines) found; is this an OBJ file?`);
  if (nrm.length > 0) mesh.normals = nrm.finish();
  if (anyNormal) mesh.faces.normalIndex = nIdx.finish();
  if (anyGroup) mesh.faceGroup = fGroup.finish();
  if (anyMat) mesh.faceMaterial = fMat.finish();
  return mesh;
}

const readText = readFileText;

/** Read and parse an OBJ file. */
export async function readObj(file: string): Promise<ObjMesh> {
  return parseObj(await readText(file), file);
}

/**
 * Fan-triangulate every polygon (corner 0, k, k+1). Corners without a UV get a shared (0,0) UV appended to
 * the UV list.
 */
export function triangulate(mesh: ObjMesh): TriangleMesh {
  const { vertexCounts, positionIndex, uvIndex } = mesh.faces;
  let T = 0;
  let missingUv = false;
  for (let f = 0; f < vertexCounts.length; f++) T += vertexCounts[f] - 2;
  for (let i = 0; i < uvIndex.length; i++) if (uvIndex[i] < 0) { missingUv = true; break; }
  const U = mesh.uvs.length / 2;
  const uvs = missingUv ? new Float32Array((U + 1) * 2) : mesh.uvs.slice();
  if (missingUv) uvs.set(mesh.uvs);
  const tri = new Uint32Array(T * 3);
  const uvTri = new Uint32Array(T * 3);
  const faceOfTriangle = new Uint32Array(T);
  let t = 0;
  let base = 0;
  const uvOf = (c: number) => (uvIndex[c] < 0 ? U : uvIndex[c]);
  for (let f = 0; f < vertexCounts.length; f++) {
    const n = vertexCounts[f];
    for (let k = 1; k + 1 < n; k++) {
      tri[3 * t] = positionIndex[base];
      tri[3 * t + 1] = positionIndex[base + k];
      tri[3 * t + 2] = positionIndex[base + k + 1];
      uvTri[3 * t] = uvOf(base);
      uvTri[3 * t + 1] = uvOf(base + k);
      uvTri[3 * t + 2] = uvOf(base + k + 1);
      faceOfTriangle[t] = f;
      t++;
    }
    base += n;
  }
  return { positions: mesh.positions, tri, uvs, uvTri, faceOfTriangle };
}

export interface MtlMaterial {
  name: string;
  /** Diffuse colour (Kd). */
  kd?: [number, number, number];
  /** Diffuse texture (map_Kd), resolved against the MTL file's folder. */
  mapKd?: string;
}

/** Parse MTL text; texture paths are resolved against `baseDir`. */
export function parseMtl(text: string, baseDir = '.', name = '<mtl>'): Map<string, MtlMaterial> {
  const out = new Map<string, MtlMaterial>();
  let cur: MtlMaterial | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/#.*$/, '').trim();
    if (!line) continue;
    const parts = line.split(/\s+/);
    const kw = parts[0];
    if (kw === 'newmtl') {
      cur = { name: parts.slice(1).join(' ') };
      out.set(cur.name, cur);
    } else if (kw === 'Kd' || kw === 'map_Kd') {
      if (!cur) throw formatError(name, i + 1, `'${kw}' before any 'newmtl'`);
      if (kw === 'Kd') {
        const v = parts.slice(1, 4).map(Number);
        if (v.length !== 3 || !v.every(Number.isFinite)) throw formatError(name, i + 1, `'Kd' needs 3 numbers`);
        cur.kd = [v[0], v[1], v[2]];
      } else {
        // options such as -s 1 1 1 or -bm 1 may precede the file name; the file name is the last token(s)
        let k = 1;
        while (k < parts.length - 1 && parts[k].startsWith('-')) {
          k++;
          while (k < parts.length - 1 && /^-?[0-9.]+$/.test(parts[k])) k++;
        }
        const file = parts.slice(k).join(' ');
        if (!file) throw formatError(name, i + 1, `'map_Kd' without a file name`);
        cur.mapKd = path.resolve(baseDir, file);
      }
    }
  }
  return out;
}

/** Read an MTL file; returns the materials by name (with their resolved map_Kd texture paths). */
export async function readMtl(file: string): Promise<Map<string, MtlMaterial>> {
  return parseMtl(await readText(file), path.dirname(path.resolve(file)), file);
}

export interface ObjWriteMesh {
  positions: ArrayLike<number>;
  /** Triangles as position indices (T×3). */
  tri: ArrayLike<number>;
  /** UVs (U×2) and their own triangle topology (T×3); written as `vt` and `f v/vt`. */
  uvs?: ArrayLike<number>;
  uvTri?: ArrayLike<number>;
  /** Normals (N×3); per-vertex (`normalTri` omitted: indexed like positions) or with their own topology. */
  normals?: ArrayLike<number>;
  normalTri?: ArrayLike<number>;
}

export interface ObjWriteOptions {
  /** `mtllib` line (a file name relative to the OBJ). */
  mtllib?: string;
  /** `usemtl` line before the faces. */
  material?: string;
  /** Comment lines at the top. */
  comment?: string;
  /** Significant digits for coordinates (default 7). */
  precision?: number;
}

function fmt(x: number, p: number): string {
  if (x === 0) return '0';
  return String(Number(x.toPrecision(p)));
}

/** OBJ text of a triangle mesh (see writeObj). */
export function formatObj(mesh: ObjWriteMesh, options: ObjWriteOptions = {}): string {
  const p = options.precision ?? 7;
  const V = Math.floor(mesh.positions.length / 3);
  const T = Math.floor(mesh.tri.length / 3);
  if (mesh.uvs && (!mesh.uvTri || mesh.uvTri.length !== mesh.tri.length)) {
    throw new FaceG2EError('E_INVALID_ARGUMENT', `writeObj: uvTri must be given with uvs and have ${mesh.tri.length} entries`);
  }
  if (mesh.normals && mesh.normalTri && mesh.normalTri.length !== mesh.tri.length) {
    throw new FaceG2EError('E_INVALID_ARGUMENT', `writeObj: normalTri must have ${mesh.tri.length} entries`);
  }
  if (mesh.normals && !mesh.normalTri && mesh.normals.length !== mesh.positions.length) {
    throw new FaceG2EError('E_INVALID_ARGUMENT', 'writeObj: per-vertex normals must have as many entries as positions (or give normalTri)');
  }
  for (let i = 0; i < mesh.tri.length; i++) {
    if (!(mesh.tri[i] >= 0 && mesh.tri[i] < V)) throw new FaceG2EError('E_INVALID_ARGUMENT', `writeObj: tri[${i}] = ${mesh.tri[i]} is out of range (V = ${V})`);
  }
  const out: string[] = [];
  if (options.comment) for (const l of options.comment.split('\n')) out.push(`# ${l}`);
  if (options.mtllib) out.push(`mtllib ${options.mtllib}`);
  for (let i = 0; i < V; i++) out.push(`v ${fmt(mesh.positions[3 * i], p)} ${fmt(mesh.positions[3 * i + 1], p)} ${fmt(mesh.positions[3 * i + 2], p)}`);
  if (mesh.uvs) {
    const U = Math.floor(mesh.uvs.length / 2);
    for (let i = 0; i < U; i++) out.push(`vt ${fmt(mesh.uvs[2 * i], p)} ${fmt(mesh.uvs[2 * i + 1], p)}`);
    for (let i = 0; i < mesh.uvTri!.length; i++) {
      if (!(mesh.uvTri![i] >= 0 && mesh.uvTri![i] < U)) throw new FaceG2EError('E_INVALID_ARGUMENT', `writeObj: uvTri[${i}] = ${mesh.uvTri![i]} is out of range (U = ${U})`);
    }
  }
  if (mesh.normals) {
    const N = Math.floor(mesh.normals.length / 3);
    for (let i = 0; i < N; i++) out.push(`vn ${fmt(mesh.normals[3 * i], p)} ${fmt(mesh.normals[3 * i + 1], p)} ${fmt(mesh.normals[3 * i + 2], p)}`);
  }
  if (options.material) out.push(`usemtl ${options.material}`);
  for (let t = 0; t < T; t++) {
    const c: string[] = [];
    for (let k = 0; k < 3; k++) {
      const v = mesh.tri[3 * t + k] + 1;
      const vt = mesh.uvs ? mesh.uvTri![3 * t + k] + 1 : 0;
      const vn = mesh.normals ? (mesh.normalTri ? mesh.normalTri[3 * t + k] : mesh.tri[3 * t + k]) + 1 : 0;
      c.push(vn ? `${v}/${vt || ''}/${vn}` : vt ? `${v}/${vt}` : `${v}`);
    }
    out.push(`f ${c.join(' ')}`);
  }
  out.push('');
  return out.join('\n');
}

/** Write a textured triangle mesh as OBJ, atomically. */
export async function writeObj(file: string, mesh: ObjWriteMesh, options: ObjWriteOptions = {}): Promise<void> {
  await writeFileAtomic(file, formatObj(mesh, options));
}

/** Write an MTL file (atomically) with one entry per material; `mapKd` is written as given (relative paths stay relative). */
export async function writeMtl(file: string, materials: MtlMaterial[]): Promise<void> {
  const out: string[] = [];
  for (const m of materials) {
    out.push(`newmtl ${m.name}`);
    const kd = m.kd ?? [1, 1, 1];
    out.push(`Ka 0 0 0`, `Kd ${kd.join(' ')}`, `Ks 0 0 0`, `d 1`, `illum 1`);
    if (m.mapKd) out.push(`map_Kd ${m.mapKd}`);
    out.push('');
  }
  await writeFileAtomic(file, out.join('\n'));
}
