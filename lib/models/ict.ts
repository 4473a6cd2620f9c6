/**
 * ICT-FaceKit (Light) importer: from the original OBJ folder (FaceXModel: generic_neutral_mesh.obj,
 * identityNNN.obj, one OBJ per expression, vertex_indices.json) or from an arrays bundle
 * (generic_neutral_mesh.obj, identity_deltas.npy, expression_deltas.npy, mode_names.json, vertex_indices.json).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { FaceG2EError } from '../errors';
import { readObj, triangulate } from '../io/obj';
import { readNpy, floatToHalf } from '../io/npy';
import type { HeadModel, ModelPart } from './format';
import { subsetMesh, gatherHalfBasis, baseModel } from './common';
import { readFileText } from '../io/files';

/** The 17 geometry parts of the ICT-FaceKit topology: [name, first vertex, last vertex, first polygon, last polygon] (inclusive). */
export const ICT_PARTS: readonly [string, number, number, number, number][] = [
  ['face', 0, 9408, 0, 9229],
  ['head_neck', 9409, 11247, 9230, 11143],
  ['mouth_socket', 11248, 13293, 11144, 13225],
  ['eye_socket_left', 13294, 13677, 13226, 13629],
  ['eye_socket_right', 13678, 14061, 13630, 14033],
  ['gums_tongue', 14062, 17038, 14034, 17005],
  ['teeth', 17039, 21450, 17006, 21495],
  ['eyeball_left', 21451, 23020, 21496, 23093],
  ['eyeball_right', 23021, 24590, 23094, 24691],
  ['lacrimal_fluid_left', 24591, 24794, 24692, 24854],
  ['lacrimal_fluid_right', 24795, 24998, 24855, 25017],
  ['eye_blend_left', 24999, 25022, 25018, 25032],
  ['eye_blend_right', 25023, 25046, 25033, 25047],
  ['eye_occlusion_left', 25047, 25198, 25048, 25175],
  ['eye_occlusion_right', 25199, 25350, 25176, 25303],
  ['eyelashes_left', 25351, 26034, 25304, 25843],
  ['eyelashes_right', 26035, 26718, 25844, 26383],
];
export const ICT_VERTEX_COUNT = 26719;
export const ICT_DEFAULT_PARTS = ['face', 'head_neck', 'eye_socket_left', 'eye_socket_right', 'eyeball_left', 'eyeball_right'];
const ICT_ALIASES: Record<string, string[]> = {
  eye_sockets: ['eye_socket_left', 'eye_socket_right'],
  eyeballs: ['eyeball_left', 'eyeball_right'],
  eyelashes: ['eyelashes_left', 'eyelashes_right'],
  lacrimal_fluid: ['lacrimal_fluid_left', 'lacrimal_fluid_right'],
  eye_blend: ['eye_blend_left', 'eye_blend_right'],
  eye_occlusion: ['eye_occlusion_left', 'eye_occlusion_right'],
  head: ['face', 'head_neck'],
  all: ICT_PARTS.map((p) => p[0]),
  default: ICT_DEFAULT_PARTS,
};

/** Resolve part names and aliases (e.g. 'eyeballs') to ICT part names; unknown names are E_INVALID_ARGUMENT. */
export function resolveIctParts(names: string[]): string[] {
  const known = new Set(ICT_PARTS.map((p) => p[0]));
  const out = new Set<string>();
  for (const raw of names) {
    const n = raw.trim().toLowerCase().replace(/[\s-]+/g, '_');
    if (!n) continue;
    if (ICT_ALIASES[n]) ICT_ALIASES[n].forEach((x) => out.add(x));
    else if (known.has(n)) out.add(n);
    else throw new FaceG2EError('E_INVALID_ARGUMENT', `--parts: unknown ICT part '${raw}' (known: ${[...known].join(', ')}; aliases: ${Object.keys(ICT_ALIASES).join(', ')})`);
  }
  if (out.size === 0) throw new FaceG2EError('E_INVALID_ARGUMENT', '--parts: no parts selected');
  return ICT_PARTS.map((p) => p[0]).filter((p) => out.has(p));
}

export interface IctImportOptions {
  /** Parts to keep (names or aliases); default ICT_DEFAULT_PARTS. */
  parts?: string[];
}

type Layout = { kind: 'bundle' | 'original'; dir: string };

function detectLayout(source: string): Layout {
  const candidates = [source, path.join(source, 'FaceXModel')];
  for (const dir of candidates) {
    if (!fs.existsSync(path.join(dir, 'generic_neutral_mesh.obj'))) continue;
    if (fs.existsSync(path.join(dir, 'identity_deltas.npy'))) return { kind: 'bundle', dir };
    if (fs.existsSync(path.join(dir, 'identity000.obj'))) return { kind: 'original', dir };
  }
  if (!fs.existsSync(source)) throw new FaceG2EError('E_IO', `ICT source not found: ${source}`);
  if (!fs.statSync(source).isDirectory()) {
    throw new FaceG2EError('E_INVALID_ARGUMENT', `ICT source ${source} is a file; give the ICT-FaceKit folder (FaceXModel with generic_neutral_mesh.obj and identityNNN.obj, or an arrays bundle with identity_deltas.npy)`);
  }
  throw new FaceG2EError('E_FORMAT', `${source}: not an ICT-FaceKit folder (expected generic_neutral_mesh.obj with identity000.obj (original layout) or identity_deltas.npy (arrays bundle), here or in FaceXModel/)`);
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFileText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FaceG2EError('E_FORMAT', `${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Fast reader of only the `v` lines of an OBJ (for the many ICT mode meshes). */
export function parseObjPositions(text: string, file: string, expected: number): Float32Array {
  const out = new Float32Array(expected * 3);
  let n = 0;
  let pos = 0;
  let line = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    line++;
    if (text.charCodeAt(pos) === 118 /* v */ && text.charCodeAt(pos + 1) === 32) {
      const parts = text.slice(pos + 2, end).trim().split(/\s+/);
      if (n >= expected) throw new FaceG2EError('E_FORMAT', `${file}:${line}: more than ${expected} vertices (the neutral mesh has ${expected})`);
      for (let k = 0; k < 3; k++) {
        const x = Number(parts[k]);
        if (!Number.isFinite(x)) throw new FaceG2EError('E_FORMAT', `${file}:${line}: bad vertex coordinate '${parts[k]}'`);
        out[3 * n + k] = x;
      }
      n++;
    }
    pos = end + 1;
  }
  if (n !== expected) throw new FaceG2EError('E_FORMAT', `${file}: ${n} vertices, expected ${expected} (as in generic_neutral_mesh.obj)`);
  return out;
}

function half(x: number): number {
  return floatToHalf(x);
}

/** Import ICT-FaceKit from either layout. */
export async function importIct(source: string, options: IctImportOptions = {}): Promise<HeadModel> {
  const layout = detectLayout(source);
  const dir = layout.dir;
  const partNames = resolveIctParts(options.parts ?? ICT_DEFAULT_PARTS);
  const neutralFile = path.join(dir, 'generic_neutral_mesh.obj');
  const obj = await readObj(neutralFile);
  const V0 = obj.positions.length / 3;
  if (V0 !== ICT_VERTEX_COUNT) throw new FaceG2EError('E_FORMAT', `${neutralFile}: ${V0} vertices, expected ${ICT_VERTEX_COUNT} (ICT-FaceKit topology)`);
  const mesh = triangulate(obj);
  const keep = new Uint8Array(V0);
  for (const p of ICT_PARTS) if (partNames.includes(p[0])) keep.fill(1, p[1], p[2] + 1);
  const sub = subsetMesh(mesh, keep);
  const V = sub.sourceVertex.length;

  // bases
  let idNames: string[];
  let exNames: string[];
  let identityBasis: Uint16Array;
  let expressionBasis: Uint16Array;
  const viFile = path.join(dir, 'vertex_indices.json');
  const vi = fs.existsSync(viFile) ? ((await readJson(viFile)) as Record<string, unknown>) : undefined;
  if (layout.kind === 'bundle') {
    const namesFile = path.join(dir, 'mode_names.json');
    const names = (await readJson(namesFile)) as { identity?: unknown; expression?: unknown };
    const isList = (x: unknown): x is string[] => Array.isArray(x) && x.every((s) => typeof s === 'string');
    if (!isList(names.identity) || !isList(names.expression)) throw new FaceG2EError('E_FORMAT', `${namesFile}: expected {"identity": [names], "expression": [names]}`);
    const load = async (file: string, count: number) => {
      const a = await readNpy(file);
      if (a.dtype !== 'f2' && a.dtype !== 'f4' && a.dtype !== 'f8') throw new FaceG2EError('E_FORMAT', `${file}: dtype ${a.dtype}, expected a float array`);
      if (a.shape.length !== 3 || a.shape[0] !== count || a.shape[1] !== V0 || a.shape[2] !== 3) {
        throw new FaceG2EError('E_FORMAT', `${file}: shape [${a.shape.join(', ')}], expected [${count}, ${V0}, 3] (mode_names.json lists ${count} modes)`);
      }
      const bits = a.dtype === 'f2' ? (a.data as Uint16Array) : Uint16Array.from(a.data as Float32Array, half);
      return gatherHalfBasis(bits, count, V0, sub.sourceVertex);
    };
    idNames = names.identity;
    exNames = names.expression;
    identityBasis = await load(path.join(dir, 'identity_deltas.npy'), idNames.length);
    expressionBasis = await load(path.join(dir, 'expression_deltas.npy'), exNames.length);
  } else {
    const files = (await fsp.readdir(dir)).filter((f) => f.toLowerCase().endsWith('.obj'));
    const idFiles = files.filter((f) => /^identity\d+\.obj$/i.test(f)).sort();
    const listed = Array.isArray(vi?.expressions) ? (vi!.expressions as string[]) : [];
    const exAll = files.filter((f) => !/^identity\d+\.obj$/i.test(f) && f !== 'generic_neutral_mesh.obj').map((f) => f.slice(0, -4));
    const exSet = new Set(exAll);
    exNames = [...listed.filter((n) => exSet.has(n)), ...exAll.filter((n) => !listed.includes(n)).sort()];
    idNames = idFiles.map((f) => f.slice(0, -4));
    const deltas = async (name: string) => {
      const file = path.join(dir, `${name}.obj`);
      const text = await readFileText(file);
      const p = parseObjPositions(text, file, V0);
      const out = new Uint16Array(V * 3);
      for (let i = 0; i < V; i++) {
        const s = sub.sourceVertex[i] * 3;
        for (let c = 0; c < 3; c++) out[3 * i + c] = half(p[s + c] - obj.positions[s + c]);
      }
      return out;
    };
    identityBasis = new Uint16Array(idNames.length * V * 3);
    for (let k = 0; k < idNames.length; k++) identityBasis.set(await deltas(idNames[k]), k * V * 3);
    expressionBasis = new Uint16Array(exNames.length * V * 3);
    for (let k = 0; k < exNames.length; k++) expressionBasis.set(await deltas(exNames[k]), k * V * 3);
  }

  const template = new Float32Array(V * 3);
  for (let i = 0; i < V; i++) for (let c = 0; c < 3; c++) template[3 * i + c] = obj.positions[3 * sub.sourceVertex[i] + c];

  // parts, triangle parts, regions, landmarks
  const parts: ModelPart[] = [];
  const vertexPart = new Int32Array(V).fill(-1);
  for (const p of ICT_PARTS) {
    if (!partNames.includes(p[0])) continue;
    const idx = parts.length;
    const verts = new Uint32Array(p[2] - p[1] + 1);
    for (let v = p[1]; v <= p[2]; v++) verts[v - p[1]] = sub.newIndex[v];
    parts.push({ name: p[0], kind: 'geometry', vertices: verts });
    for (const v of verts) vertexPart[v] = idx;
  }
  // a triangle belongs to the part of most of its vertices (the first vertex's when all three differ)
  const triPart = new Int32Array(sub.keptTriangles.length);
  for (let t = 0; t < triPart.length; t++) {
    const a = vertexPart[sub.tri[3 * t]], b = vertexPart[sub.tri[3 * t + 1]], c = vertexPart[sub.tri[3 * t + 2]];
    triPart[t] = b === c ? b : a;
  }
  const mapList = (list: unknown): Uint32Array | undefined => {
    if (!Array.isArray(list) || !list.every((x) => Number.isInteger(x) && x >= 0 && x < V0)) return undefined;
    const out: number[] = [];
    for (const v of list as number[]) if (sub.newIndex[v] >= 0) out.push(sub.newIndex[v]);
    return Uint32Array.from(out);
  };
  let landmarks: HeadModel['landmarks'];
  if (vi) {
    const regions: [string, string][] = [['fitting', 'idx_to_fitting_verts'], ['rigid', 'idx_to_rigid_verts'], ['lap_rigid', 'idx_to_lap_rigid_verts']];
    for (const [name, key] of regions) {
      const v = mapList(vi[key]);
      if (v && v.length) parts.push({ name, kind: 'region', vertices: Uint32Array.from(v).sort() });
    }
    const lm = vi.idx_to_landmark_verts;
    if (Array.isArray(lm) && lm.every((x) => Number.isInteger(x) && x >= 0 && x < V0 && sub.newIndex[x] >= 0)) {
      landmarks = { scheme: lm.length === 68 ? 'ibug68' : 'custom', vertex: Uint32Array.from(lm as number[], (v) => sub.newIndex[v]) };
    }
  }
  return {
    name: 'ICT-FaceKit Light',
    source: 'ict',
    ...baseModel('cm'),
    vertexCount: V,
    triangleCount: sub.tri.length / 3,
    uvCount: sub.uv.length / 2,
    template,
    tri: sub.tri,
    uv: sub.uv,
    uvTri: sub.uvTri,
    identityBasis,
    identityNames: idNames,
    identityScale: new Float32Array(idNames.length).fill(1),
    expressionBasis,
    expressionNames: exNames,
    expressionScale: new Float32Array(exNames.length).fill(1),
    expressionKind: 'blendshape',
    parts,
    triPart,
    landmarks,
    sourceVertex: sub.sourceVertex,
    sourceVertexCount: V0,
    extra: {
      license: 'ICT-FaceKit: MIT licence, (c) 2020 USC Institute for Creative Technologies',
      ict_layout: layout.kind,
      ict_parts: partNames.join(','),
      identity_normalisation: 'identity modes are one standard deviation (coefficients ~ N(0,1))',
    },
  };
}
