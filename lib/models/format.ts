/**
 * The faceg2e head-model file: one safetensors file holding a linear morphable head model (template mesh,
 * triangle and UV topology, identity and expression bases in float16, parts, landmarks, a vertex remap to
 * the source model and optional skinning). docs/model-format.md documents every tensor and metadata key.
 */
import { FaceG2EError } from '../errors';
import { float16ToFloat32 } from '../io/npy';
import { readSafetensors, writeSafetensors, type StDtype, type StData, type StTensor } from './safetensors';

export const MODEL_FORMAT = 'faceg2e-head-model';
export const MODEL_FORMAT_VERSION = 1;

export type ModelUnits = 'm' | 'cm' | 'mm';
export const METRES_PER_UNIT: Record<ModelUnits, number> = { m: 1, cm: 0.01, mm: 0.001 };

export interface ModelPart {
  name: string;
  /** 'geometry' for a mesh part (e.g. face, eyeball_left), 'region' for a named vertex set (e.g. fitting vertices). */
  kind: 'geometry' | 'region';
  /** Vertex indices (into this model's vertices), ascending. */
  vertices: Uint32Array;
}

export interface ModelLandmarks {
  /** Landmark scheme, e.g. 'ibug68'. */
  scheme: string;
  names?: string[];
  /** One vertex per landmark (when landmarks are vertices). */
  vertex?: Uint32Array;
  /** Or a triangle (index into tri) and barycentric weights [L,3] per landmark. */
  triangle?: Uint32Array;
  barycentric?: Float32Array;
}

export interface ModelSkinning {
  jointNames: string[];
  /** Parent joint of each joint, -1 for the root. [J] */
  parents: Int32Array;
  /** Linear-blend-skinning weights [V,J]. */
  weights: Float32Array;
  /** Joint locations = jointRegressor · vertices, [J,V]. */
  jointRegressor: Float32Array;
  /** Pose-corrective blendshapes [P,V,3] as float16 bits (optional). */
  poseBasis?: Uint16Array;
  /** How the pose features that multiply poseBasis are formed (e.g. 'rotmat-minus-identity:joints=1..J-1'). */
  poseFeature?: string;
}

export interface ModelColor {
  /** Mean per-vertex colour [V,3] (0..1). */
  mean: Float32Array;
  /** Colour basis [Kc,V,3] (float16 bits), scaled so a coefficient of 1 is one standard deviation. */
  basis: Uint16Array;
  names: string[];
}

export interface HeadModel {
  /** A human-readable name, e.g. 'ICT-FaceKit Light'. */
  name: string;
  /** The importer that made it: 'ict' | 'flame' | 'bfm' | 'hifi3d' | other. */
  source: string;
  /** Length unit of every position and basis value. */
  units: ModelUnits;
  /** Metres per unit (0.01 for cm). */
  metresPerUnit: number;
  /** Vertex count V, triangle count T, UV count U. */
  vertexCount: number;
  triangleCount: number;
  uvCount: number;
  /** Neutral template [V,3]. */
  template: Float32Array;
  /** Triangles as vertex indices [T,3]. */
  tri: Uint32Array;
  /** UV coordinates [U,2] (origin bottom-left, OBJ convention) and UV triangles [T,3]. */
  uv: Float32Array;
  uvTri: Uint32Array;
  /** Identity basis [Ki,V,3], float16 bits; a coefficient of 1 moves the template by one basis row. */
  identityBasis: Uint16Array;
  identityNames: string[];
  /** Standard deviation of each identity coefficient under the model's prior (1 when the basis is already one s.d.). [Ki] */
  identityScale: Float32Array;
  /** Expression basis [Ke,V,3], float16 bits. */
  expressionBasis: Uint16Array;
  expressionNames: string[];
  /** Typical scale of each expression coefficient (s.d. for PCA models, 1 for blendshape weights in [0,1]). [Ke] */
  expressionScale: Float32Array;
  /** 'pca' (coefficients ~ N(0, scale²)) or 'blendshape' (weights, usually in [0,1]). */
  expressionKind: 'pca' | 'blendshape';
  parts: ModelPart[];
  /** Part index of each triangle (-1 for none) [T], when parts are geometry parts. */
  triPart?: Int32Array;
  landmarks?: ModelLandmarks;
  /** Index of each vertex in the source model's vertex list [V], and that list's length. */
  sourceVertex: Uint32Array;
  sourceVertexCount: number;
  skinning?: ModelSkinning;
  color?: ModelColor;
  /** Free-form string metadata (licence note, source files, conversion notes). */
  extra: Record<string, string>;
}

export function identityCount(m: HeadModel): number {
  return m.identityNames.length;
}
export function expressionCount(m: HeadModel): number {
  return m.expressionNames.length;
}

/** Basis rows as float32 (decoded from float16). */
export function basisToFloat32(bits: Uint16Array): Float32Array {
  return float16ToFloat32(bits);
}

// ---- validation ------------------------------------------------------------------------------------------

/** Check every array's size and every index's range; throws E_FORMAT (file given) or E_INVALID_ARGUMENT. */
export function validateModel(m: HeadModel, file?: string): void {
  const fail = (msg: string) => new FaceG2EError(file ? 'E_FORMAT' : 'E_INVALID_ARGUMENT', `${file ? `${file}: ` : 'head model: '}${msg}`);
  const V = m.vertexCount;
  const T = m.triangleCount;
  const U = m.uvCount;
  if (!(Number.isInteger(V) && V > 0)) throw fail(`vertexCount must be a positive integer, got ${V}`);
  const size = (name: string, a: ArrayLike<unknown> | undefined, n: number) => {
    if (!a) throw fail(`${name} is missing`);
    if (a.length !== n) throw fail(`${name} has ${a.length} values, expected ${n}`);
  };
  size('template', m.template, V * 3);
  size('tri', m.tri, T * 3);
  size('uv', m.uv, U * 2);
  size('uvTri', m.uvTri, T * 3);
  const Ki = m.identityNames.length;
  const Ke = m.expressionNames.length;
  size('identity_basis', m.identityBasis, Ki * V * 3);
  size('identity_scale', m.identityScale, Ki);
  size('expression_basis', m.expressionBasis, Ke * V * 3);
  size('expression_scale', m.expressionScale, Ke);
  size('source_vertex', m.sourceVertex, V);
  const maxOf = (a: ArrayLike<number>) => { let x = -1; for (let i = 0; i < a.length; i++) if (a[i] > x) x = a[i]; return x; };
  if (T > 0 && maxOf(m.tri) >= V) throw fail(`tri has a vertex index ${maxOf(m.tri)} >= V = ${V}`);
  if (T > 0 && maxOf(m.uvTri) >= U) throw fail(`uv_tri has a UV index ${maxOf(m.uvTri)} >= U = ${U}`);
  if (V > 0 && maxOf(m.sourceVertex) >= m.sourceVertexCount) throw fail(`source_vertex has an index >= source_vertex_count = ${m.sourceVertexCount}`);
  for (let i = 0; i < V * 3; i++) if (!Number.isFinite(m.template[i])) throw fail(`template[${i}] is not finite`);
  for (const p of m.parts) if (p.vertices.length && maxOf(p.vertices) >= V) throw fail(`part '${p.name}' has a vertex index >= V`);
  if (m.triPart) {
    size('tri_part', m.triPart, T);
    if (maxOf(m.triPart) >= m.parts.length) throw fail('tri_part has a part index >= the number of parts');
  }
  if (m.landmarks) {
    const L = m.landmarks.vertex?.length ?? m.landmarks.triangle?.length ?? 0;
    if (m.landmarks.vertex && maxOf(m.landmarks.vertex) >= V) throw fail('landmark_vertex has an index >= V');
    if (m.landmarks.triangle) {
      if (maxOf(m.landmarks.triangle) >= T) throw fail('landmark_tri has an index >= T');
      size('landmark_bary', m.landmarks.barycentric, L * 3);
    }
    if (m.landmarks.names && m.landmarks.names.length !== L) throw fail(`landmark_names has ${m.landmarks.names.length} names for ${L} landmarks`);
  }
  if (m.skinning) {
    const s = m.skinning;
    const J = s.parents.length;
    if (s.jointNames.length !== J) throw fail(`joint_names has ${s.jointNames.length} names for ${J} joints`);
    size('skin_weights', s.weights, V * J);
    size('joint_regressor', s.jointRegressor, J * V);
    for (let j = 0; j < J; j++) if (s.parents[j] < -1 || s.parents[j] >= J || s.parents[j] === j) throw fail(`joint_parents[${j}] = ${s.parents[j]} is not a joint index or -1`);
    if (s.poseBasis && s.poseBasis.length % (V * 3) !== 0) throw fail(`pose_basis has ${s.poseBasis.length} values, not a multiple of V*3`);
  }
  if (m.color) {
    size('color_mean', m.color.mean, V * 3);
    size('color_basis', m.color.basis, m.color.names.length * V * 3);
  }
}

// ---- save / load -----------------------------------------------------------------------------------------

function t(dtype: StDtype, shape: number[], data: StData): StTensor {
  return { dtype, shape, data };
}

/** Save a head model as a safetensors file (atomically). */
export async function saveModel(m: HeadModel, file: string): Promise<void> {
  validateModel(m);
  const V = m.vertexCount;
  const tensors: [string, StTensor][] = [
    ['template', t('F32', [V, 3], m.template)],
    ['tri', t('U32', [m.triangleCount, 3], m.tri)],
    ['uv', t('F32', [m.uvCount, 2], m.uv)],
    ['uv_tri', t('U32', [m.triangleCount, 3], m.uvTri)],
    ['identity_basis', t('F16', [m.identityNames.length, V, 3], m.identityBasis)],
    ['identity_scale', t('F32', [m.identityNames.length], m.identityScale)],
    ['expression_basis', t('F16', [m.expressionNames.length, V, 3], m.expressionBasis)],
    ['expression_scale', t('F32', [m.expressionNames.length], m.expressionScale)],
    ['source_vertex', t('U32', [V], m.sourceVertex)],
  ];
  const offsets = new Uint32Array(m.parts.length + 1);
  for (let i = 0; i < m.parts.length; i++) offsets[i + 1] = offsets[i] + m.parts[i].vertices.length;
  const all = new Uint32Array(offsets[m.parts.length]);
  m.parts.forEach((p, i) => all.set(p.vertices, offsets[i]));
  tensors.push(['part_offsets', t('U32', [offsets.length], offsets)], ['part_vertices', t('U32', [all.length], all)]);
  if (m.triPart) tensors.push(['tri_part', t('I32', [m.triangleCount], m.triPart)]);
  const meta: Record<string, string> = {
    ...m.extra,
    format: MODEL_FORMAT,
    format_version: String(MODEL_FORMAT_VERSION),
    name: m.name,
    source: m.source,
    units: m.units,
    metres_per_unit: String(m.metresPerUnit),
    identity_names: JSON.stringify(m.identityNames),
    expression_names: JSON.stringify(m.expressionNames),
    expression_kind: m.expressionKind,
    parts: JSON.stringify(m.parts.map((p) => ({ name: p.name, kind: p.kind }))),
    source_vertex_count: String(m.sourceVertexCount),
  };
  if (m.landmarks) {
    const l = m.landmarks;
    meta.landmark_scheme = l.scheme;
    if (l.names) meta.landmark_names = JSON.stringify(l.names);
    if (l.vertex) tensors.push(['landmark_vertex', t('U32', [l.vertex.length], l.vertex)]);
    if (l.triangle) {
      tensors.push(['landmark_tri', t('U32', [l.triangle.length], l.triangle)]);
      tensors.push(['landmark_bary', t('F32', [l.triangle.length, 3], l.barycentric!)]);
    }
  }
  if (m.skinning) {
    const s = m.skinning;
    const J = s.parents.length;
    meta.joint_names = JSON.stringify(s.jointNames);
    tensors.push(['joint_parents', t('I32', [J], s.parents)], ['skin_weights', t('F32', [V, J], s.weights)], ['joint_regressor', t('F32', [J, V], s.jointRegressor)]);
    if (s.poseBasis) {
      tensors.push(['pose_basis', t('F16', [s.poseBasis.length / (V * 3), V, 3], s.poseBasis)]);
      if (s.poseFeature) meta.pose_feature = s.poseFeature;
    }
  }
  if (m.color) {
    meta.color_names = JSON.stringify(m.color.names);
    tensors.push(['color_mean', t('F32', [V, 3], m.color.mean)], ['color_basis', t('F16', [m.color.names.length, V, 3], m.color.basis)]);
  }
  await writeSafetensors(file, tensors, meta);
}

const KNOWN_META = new Set([
  'format', 'format_version', 'name', 'source', 'units', 'metres_per_unit', 'identity_names', 'expression_names', 'expression_kind',
  'parts', 'source_vertex_count', 'landmark_scheme', 'landmark_names', 'joint_names', 'pose_feature', 'color_names',
]);

/** Load a head-model safetensors file; throws E_FORMAT naming the file and the problem. */
export async function loadModel(file: string): Promise<HeadModel> {
  const st = await readSafetensors(file);
  const bad = (msg: string) => new FaceG2EError('E_FORMAT', `${file}: ${msg}`);
  const meta = st.metadata;
  if (meta.format !== MODEL_FORMAT) {
    throw bad(`not a faceg2e head model (safetensors metadata 'format' is ${JSON.stringify(meta.format)}, expected '${MODEL_FORMAT}'); convert a model with \`faceg2e-native models import\``);
  }
  const ver = Number(meta.format_version);
  if (!Number.isInteger(ver) || ver < 1) throw bad(`bad format_version ${JSON.stringify(meta.format_version)}`);
  if (ver > MODEL_FORMAT_VERSION) throw bad(`format_version ${ver} is newer than this package reads (${MODEL_FORMAT_VERSION}); upgrade faceg2e-native`);
  const tensor = <T extends StData>(name: string, dtypes: StDtype[], rank: number, optional = false): T | undefined => {
    const x = st.tensors.get(name);
    if (!x) {
      if (optional) return undefined;
      throw bad(`missing tensor '${name}'`);
    }
    if (!dtypes.includes(x.dtype)) throw bad(`tensor '${name}' has dtype ${x.dtype}, expected ${dtypes.join(' or ')}`);
    if (x.shape.length !== rank) throw bad(`tensor '${name}' has shape [${x.shape.join(', ')}], expected rank ${rank}`);
    return x.data as T;
  };
  const shapeOf = (name: string) => st.tensors.get(name)!.shape;
  const u32 = (name: string, rank: number, optional = false): Uint32Array | undefined => {
    const d = tensor<Uint32Array | Int32Array>(name, ['U32', 'I32'], rank, optional);
    if (!d) return undefined;
    if (d instanceof Int32Array) {
      for (let i = 0; i < d.length; i++) if (d[i] < 0) throw bad(`tensor '${name}' has a negative index at ${i}`);
      return new Uint32Array(d.buffer, d.byteOffset, d.length);
    }
    return d;
  };
  const json = <T>(key: string, check: (v: unknown) => boolean, what: string, optional = false): T | undefined => {
    const s = meta[key];
    if (s === undefined) {
      if (optional) return undefined;
      throw bad(`missing metadata '${key}'`);
    }
    let v: unknown;
    try { v = JSON.parse(s); } catch { throw bad(`metadata '${key}' is not JSON (expected ${what})`); }
    if (!check(v)) throw bad(`metadata '${key}' is not ${what}`);
    return v as T;
  };
  const isStrList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const units = meta.units as ModelUnits;
  if (!(units in METRES_PER_UNIT)) throw bad(`metadata 'units' is ${JSON.stringify(meta.units)}, expected m, cm or mm`);
  const template = tensor<Float32Array>('template', ['F32'], 2)!;
  const V = shapeOf('template')[0];
  if (shapeOf('template')[1] !== 3) throw bad(`tensor 'template' must be [V,3]`);
  const tri = u32('tri', 2)!;
  const T = shapeOf('tri')[0];
  const uv = tensor<Float32Array>('uv', ['F32'], 2)!;
  const U = shapeOf('uv')[0];
  const uvTri = u32('uv_tri', 2)!;
  const identityNames = json<string[]>('identity_names', isStrList, 'a list of strings')!;
  const expressionNames = json<string[]>('expression_names', isStrList, 'a list of strings')!;
  const partsMeta = json<{ name: string; kind: 'geometry' | 'region' }[]>('parts', (v) => Array.isArray(v) && v.every((p) => p && typeof p.name === 'string' && (p.kind === 'geometry' || p.kind === 'region')), 'a list of {name, kind}')!;
  const offsets = u32('part_offsets', 1)!;
  const partVerts = u32('part_vertices', 1)!;
  if (offsets.length !== partsMeta.length + 1 || offsets[offsets.length - 1] !== partVerts.length) throw bad(`part_offsets does not match the ${partsMeta.length} parts and part_vertices`);
  const parts: ModelPart[] = partsMeta.map((p, i) => {
    if (offsets[i + 1] < offsets[i]) throw bad('part_offsets is not ascending');
    return { name: p.name, kind: p.kind, vertices: partVerts.subarray(offsets[i], offsets[i + 1]) };
  });
  const svc = Number(meta.source_vertex_count);
  if (!Number.isInteger(svc) || svc < 0) throw bad(`metadata 'source_vertex_count' must be an integer`);
  const ek = meta.expression_kind ?? 'blendshape';
  if (ek !== 'pca' && ek !== 'blendshape') throw bad(`metadata 'expression_kind' must be pca or blendshape`);
  const mpu = Number(meta.metres_per_unit ?? METRES_PER_UNIT[units]);
  if (!(mpu > 0)) throw bad(`metadata 'metres_per_unit' must be a positive number`);
  const m: HeadModel = {
    name: meta.name ?? '',
    source: meta.source ?? '',
    units,
    metresPerUnit: mpu,
    vertexCount: V,
    triangleCount: T,
    uvCount: U,
    template,
    tri,
    uv,
    uvTri,
    identityBasis: tensor<Uint16Array>('identity_basis', ['F16'], 3)!,
    identityNames,
    identityScale: tensor<Float32Array>('identity_scale', ['F32'], 1)!,
    expressionBasis: tensor<Uint16Array>('expression_basis', ['F16'], 3)!,
    expressionNames,
    expressionScale: tensor<Float32Array>('expression_scale', ['F32'], 1)!,
    expressionKind: ek,
    parts,
    sourceVertex: u32('source_vertex', 1)!,
    sourceVertexCount: svc,
    extra: {},
  };
  const triPart = tensor<Int32Array>('tri_part', ['I32'], 1, true);
  if (triPart) m.triPart = triPart;
  if (meta.landmark_scheme !== undefined || st.tensors.has('landmark_vertex') || st.tensors.has('landmark_tri')) {
    m.landmarks = { scheme: meta.landmark_scheme ?? 'custom' };
    const names = json<string[]>('landmark_names', isStrList, 'a list of strings', true);
    if (names) m.landmarks.names = names;
    const lv = u32('landmark_vertex', 1, true);
    if (lv) m.landmarks.vertex = lv;
    const lt = u32('landmark_tri', 1, true);
    if (lt) {
      m.landmarks.triangle = lt;
      m.landmarks.barycentric = tensor<Float32Array>('landmark_bary', ['F32'], 2)!;
    }
  }
  if (st.tensors.has('joint_parents')) {
    m.skinning = {
      jointNames: json<string[]>('joint_names', isStrList, 'a list of strings')!,
      parents: tensor<Int32Array>('joint_parents', ['I32'], 1)!,
      weights: tensor<Float32Array>('skin_weights', ['F32'], 2)!,
      jointRegressor: tensor<Float32Array>('joint_regressor', ['F32'], 2)!,
    };
    const pb = tensor<Uint16Array>('pose_basis', ['F16'], 3, true);
    if (pb) m.skinning.poseBasis = pb;
    if (meta.pose_feature) m.skinning.poseFeature = meta.pose_feature;
  }
  if (st.tensors.has('color_mean')) {
    m.color = {
      mean: tensor<Float32Array>('color_mean', ['F32'], 2)!,
      basis: tensor<Uint16Array>('color_basis', ['F16'], 3)!,
      names: json<string[]>('color_names', isStrList, 'a list of strings')!,
    };
  }
  for (const [k, v] of Object.entries(meta)) if (!KNOWN_META.has(k)) m.extra[k] = v;
  validateModel(m, file);
  return m;
}

// ---- info ------------------------------------------------------------------------------------------------

export interface ModelInfo {
  name: string;
  source: string;
  units: ModelUnits;
  metresPerUnit: number;
  vertices: number;
  triangles: number;
  uvs: number;
  identityModes: number;
  expressionModes: number;
  expressionKind: 'pca' | 'blendshape';
  expressionNames: string[];
  parts: { name: string; kind: string; vertices: number }[];
  landmarks: { scheme: string; count: number; kind: 'vertex' | 'barycentric' } | null;
  skinning: { joints: string[]; poseBasis: number } | null;
  colorModes: number;
  sourceVertexCount: number;
  /** Axis-aligned bounds of the template, in model units. */
  bounds: { min: [number, number, number]; max: [number, number, number] };
  extra: Record<string, string>;
}

export function modelInfo(m: HeadModel): ModelInfo {
  const min: [number, number, number] = [Infinity, Infinity, Infinity];
  const max: [number, number, number] = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < m.vertexCount; i++) {
    for (let k = 0; k < 3; k++) {
      const x = m.template[3 * i + k];
      if (x < min[k]) min[k] = x;
      if (x > max[k]) max[k] = x;
    }
  }
  const L = m.landmarks ? (m.landmarks.vertex?.length ?? m.landmarks.triangle?.length ?? 0) : 0;
  return {
    name: m.name,
    source: m.source,
    units: m.units,
    metresPerUnit: m.metresPerUnit,
    vertices: m.vertexCount,
    triangles: m.triangleCount,
    uvs: m.uvCount,
    identityModes: m.identityNames.length,
    expressionModes: m.expressionNames.length,
    expressionKind: m.expressionKind,
    expressionNames: m.expressionNames,
    parts: m.parts.map((p) => ({ name: p.name, kind: p.kind, vertices: p.vertices.length })),
    landmarks: m.landmarks ? { scheme: m.landmarks.scheme, count: L, kind: m.landmarks.vertex ? 'vertex' : 'barycentric' } : null,
    skinning: m.skinning ? { joints: m.skinning.jointNames, poseBasis: m.skinning.poseBasis ? m.skinning.poseBasis.length / (m.vertexCount * 3) : 0 } : null,
    colorModes: m.color ? m.color.names.length : 0,
    sourceVertexCount: m.sourceVertexCount,
    bounds: { min, max },
    extra: m.extra,
  };
}
