/**
 * 3DMM kernels: blendshapes over float16 bases, optional FLAME-style skinning (joint regression, Rodrigues,
 * kinematic chain, pose correctives, linear blend skinning), a global rigid transform with uniform scale,
 * vertex normals and the geometry-phase regularisers — each with its backward pass, on 'cpu' or 'cuda'.
 *
 *   const model = MorphModel.create({ template, identityBasis, expressionBasis, triangles }, { device: 'cuda' });
 *   const { vertices, normals } = evalMorph(model, { identity, expression, rotation, translation, scale }, { normals: true });
 *   const grads = morphBackward(model, coeffs, { vertices: dLdV, normals: dLdN }, { normals: true });
 *
 * See docs/morph.md for the maths, the conventions and the C++ API the pipeline uses.
 */
import { float16ToFloat32, float32ToFloat16 } from './io/npy';
import { loadNative, type DeviceName } from './native';
import { callNative, FaceG2EError } from './errors';

export type { DeviceName };

/** A model as typed arrays (what lib/models importers produce). Bases are IEEE float16 bits. */
export interface MorphModelData {
  /** [V*3] rest-shape vertices. */
  template: Float32Array;
  /** [Ki, V, 3] float16 identity basis (Uint16Array of half bits). */
  identityBasis?: Uint16Array;
  /** [Ke, V, 3] float16 expression basis. */
  expressionBasis?: Uint16Array;
  /** [Ki] per-mode standard deviation (default 1). */
  identityStd?: Float32Array;
  /** [Ke] per-mode standard deviation (default 1). */
  expressionStd?: Float32Array;
  /** [T*3] triangle indices (needed for normals). */
  triangles?: Int32Array | Uint32Array;
  /** FLAME-style skinning. */
  skinning?: MorphSkinning;
}

export interface MorphSkinning {
  /** [J] parent of each joint, -1 for the root (joint 0); parents come before children. */
  parents: Int32Array;
  /** [V, J] skinning weights. */
  weights: Float32Array;
  /** [J, V] dense joint regressor (applied to the shaped template). */
  regressor: Float32Array;
  /** [9(J-1), V, 3] float16 pose-corrective blendshapes; pose feature = flatten(R_j - I), j >= 1. */
  posedirs?: Uint16Array;
}

export interface MorphModelInfo {
  device: DeviceName;
  numVertices: number;
  numTriangles: number;
  numIdentity: number;
  numExpression: number;
  numJoints: number;
  numPoseCorrectives: number;
  deviceBytes: number;
}

type Handle = { readonly __morphModel: unique symbol };

interface NativeMorph {
  morphModelCreate(o: Record<string, unknown>): Handle;
  morphModelInfo(h: Handle): MorphModelInfo;
  morphModelDispose(h: Handle): void;
  morphForward(o: Record<string, unknown>): { vertices: Float32Array; normals?: Float32Array };
  morphBackward(o: Record<string, unknown>): {
    vertices: Float32Array;
    normals?: Float32Array;
    dCoeffs: Float32Array;
    dPose?: Float32Array;
    dRotation?: Float32Array;
    dTranslation: Float32Array;
    dScale: Float32Array;
  };
  vertexNormals(o: Record<string, unknown>): Float32Array;
  vertexNormalsBackward(o: Record<string, unknown>): Float32Array;
  coefL2(o: Record<string, unknown>): { value: number; grad: Float32Array };
  boundsPenalty(o: Record<string, unknown>): { value: number; grad: Float32Array };
  projectBounds(o: Record<string, unknown>): Float32Array;
  morphTime(o: Record<string, unknown>): MorphTiming;
}

function native(): NativeMorph {
  const n = loadNative<Partial<NativeMorph>>();
  if (typeof n.morphForward !== 'function')
    throw new FaceG2EError('E_NATIVE_LOAD', 'faceg2e-native: this addon was built without the morph domain (FACEG2E_DOMAINS); rebuild it with morph');
  return n as NativeMorph;
}

function int32(a: Int32Array | Uint32Array, what: string): Int32Array {
  if (a instanceof Int32Array) return a;
  for (let i = 0; i < a.length; i++)
    if (a[i] > 0x7fffffff) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: index ${a[i]} at position ${i} is out of range`);
  return new Int32Array(a.buffer, a.byteOffset, a.length);
}

function modes(basis: Uint16Array | undefined, N: number, what: string): number {
  if (!basis) return 0;
  if (!(basis instanceof Uint16Array)) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected a Uint16Array of float16 bits`);
  if (basis.length % N !== 0) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: length ${basis.length} is not a multiple of V*3 = ${N}`);
  return basis.length / N;
}

/** A model uploaded to a device (GPU memory is freed by dispose() or when garbage-collected). */
export class MorphModel {
  private handle: Handle | undefined;
  readonly info: MorphModelInfo;

  private constructor(handle: Handle) {
    this.handle = handle;
    this.info = callNative(() => native().morphModelInfo(handle));
  }

  static create(data: MorphModelData, opts: { device?: DeviceName } = {}): MorphModel {
    if (!(data.template instanceof Float32Array) || data.template.length % 3 !== 0 || data.template.length === 0)
      throw new FaceG2EError('E_INVALID_ARGUMENT', 'template: expected a non-empty Float32Array of V*3 floats');
    const N = data.template.length;
    const o: Record<string, unknown> = {
      device: opts.device ?? 'cpu',
      numVertices: N / 3,
      template: data.template,
      numIdentity: modes(data.identityBasis, N, 'identityBasis'),
      identityBasis: data.identityBasis,
      numExpression: modes(data.expressionBasis, N, 'expressionBasis'),
      expressionBasis: data.expressionBasis,
      identityStd: data.identityStd,
      expressionStd: data.expressionStd,
      triangles: data.triangles ? int32(data.triangles, 'triangles') : undefined,
    };
    if (data.skinning) {
      o.numJoints = data.skinning.parents.length;
      o.parents = data.skinning.parents;
      o.weights = data.skinning.weights;
      o.regressor = data.skinning.regressor;
      o.posedirs = data.skinning.posedirs;
    }
    return new MorphModel(callNative(() => native().morphModelCreate(o)));
  }

  get device(): DeviceName {
    return this.info.device;
  }
  /** Number of coefficients: identity then expression. */
  get numCoeffs(): number {
    return this.info.numIdentity + this.info.numExpression;
  }

  /** @internal */
  get nativeHandle(): Handle {
    if (!this.handle) throw new FaceG2EError('E_INVALID_ARGUMENT', 'model: the morph model was disposed');
    return this.handle;
  }

  dispose(): void {
    if (this.handle) native().morphModelDispose(this.handle);
    this.handle = undefined;
  }
}

/** The optimised parameters. Missing parts are zero (identity rotation, no translation, scale 1). */
export interface MorphCoeffs {
  /** [Ki] identity coefficients. */
  identity?: ArrayLike<number>;
  /** [Ke] expression coefficients. */
  expression?: ArrayLike<number>;
  /** [J*3] per-joint axis-angles (skinned models). */
  pose?: ArrayLike<number>;
  /** Global rotation: 3 (axis-angle) or 6 (6D: the first two columns of R). */
  rotation?: ArrayLike<number>;
  /** [3] global translation. */
  translation?: ArrayLike<number>;
  /** Global uniform scale. */
  scale?: number;
}

export interface MorphOptions {
  /** Also compute area-weighted vertex normals (default false). */
  normals?: boolean;
  /** Fixed-order reductions, bitwise reproducible on CUDA (default true); false uses atomics. */
  deterministic?: boolean;
}

function f32(a: ArrayLike<number> | undefined, n: number, what: string): Float32Array | undefined {
  if (a === undefined) return undefined;
  if (a.length !== n) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected ${n} values, got ${a.length}`);
  return Float32Array.from(a);
}

function callArgs(model: MorphModel, c: MorphCoeffs, o: MorphOptions): Record<string, unknown> {
  const { numIdentity: Ki, numExpression: Ke, numJoints: J } = model.info;
  const coeffs = new Float32Array(Ki + Ke);
  if (c.identity) coeffs.set(f32(c.identity, Ki, 'identity')!, 0);
  if (c.expression) coeffs.set(f32(c.expression, Ke, 'expression')!, Ki);
  if (c.pose !== undefined && J === 0) throw new FaceG2EError('E_INVALID_ARGUMENT', 'pose: the model has no joints');
  if (c.rotation !== undefined && c.rotation.length !== 3 && c.rotation.length !== 6)
    throw new FaceG2EError('E_INVALID_ARGUMENT', `rotation: expected 3 (axis-angle) or 6 (6D) values, got ${c.rotation.length}`);
  return {
    model: model.nativeHandle,
    coeffs,
    pose: f32(c.pose, 3 * J, 'pose'),
    rotation: c.rotation ? Float32Array.from(c.rotation) : undefined,
    translation: f32(c.translation, 3, 'translation'),
    scale: c.scale === undefined ? undefined : Float32Array.of(c.scale),
    normals: o.normals ?? false,
    deterministic: o.deterministic ?? true,
  };
}

/** Vertices (and normals) of the model for these coefficients: s R (LBS(template + B c + posedirs pf)) + t. */
export function evalMorph(model: MorphModel, coeffs: MorphCoeffs, opts: MorphOptions = {}): { vertices: Float32Array; normals?: Float32Array } {
  return callNative(() => native().morphForward(callArgs(model, coeffs, opts)));
}

export interface MorphGradients {
  identity: Float32Array;
  expression: Float32Array;
  /** Present for skinned models. */
  pose?: Float32Array;
  /** Present when a rotation was given (3 or 6 values, like the input). */
  rotation?: Float32Array;
  translation: Float32Array;
  scale: number;
  /** The forward outputs, recomputed for the tape. */
  vertices: Float32Array;
  normals?: Float32Array;
}

/**
 * Gradients of a loss with respect to every parameter, given dL/dvertices (and dL/dnormals when
 * `normals: true`). Runs the forward for its tape in the same native call.
 */
export function morphBackward(
  model: MorphModel,
  coeffs: MorphCoeffs,
  upstream: { vertices: Float32Array; normals?: Float32Array },
  opts: MorphOptions = {},
): MorphGradients {
  const o = callArgs(model, coeffs, { ...opts, normals: opts.normals ?? upstream.normals !== undefined });
  o.dVertices = upstream.vertices;
  o.dNormals = upstream.normals;
  const r = callNative(() => native().morphBackward(o));
  const Ki = model.info.numIdentity;
  return {
    identity: r.dCoeffs.slice(0, Ki),
    expression: r.dCoeffs.slice(Ki),
    pose: r.dPose,
    rotation: r.dRotation,
    translation: r.dTranslation,
    scale: r.dScale[0],
    vertices: r.vertices,
    normals: r.normals,
  };
}

export interface NormalsOptions {
  device?: DeviceName;
  /** Gather over a vertex->face adjacency (default, reproducible) or scatter with atomics. */
  deterministic?: boolean;
}

/** Area-weighted vertex normals (sum of incident face cross products, normalised; 0 for isolated vertices). */
export function vertexNormals(positions: Float32Array, triangles: Int32Array | Uint32Array, opts: NormalsOptions = {}): Float32Array {
  return callNative(() =>
    native().vertexNormals({ device: opts.device ?? 'cpu', positions, triangles: int32(triangles, 'triangles'), deterministic: opts.deterministic ?? true }),
  );
}

/** dL/dpositions from dL/dnormals. */
export function vertexNormalsBackward(
  positions: Float32Array,
  triangles: Int32Array | Uint32Array,
  dNormals: Float32Array,
  opts: NormalsOptions = {},
): Float32Array {
  return callNative(() =>
    native().vertexNormalsBackward({
      device: opts.device ?? 'cpu',
      positions,
      triangles: int32(triangles, 'triangles'),
      dNormals,
      deterministic: opts.deterministic ?? true,
    }),
  );
}

/** sum_i weight (x_i / std_i)^2 and its gradient 2 weight x_i / std_i^2. */
export function coefL2(x: Float32Array, opts: { std?: Float32Array; weight?: number; device?: DeviceName } = {}): { value: number; grad: Float32Array } {
  return callNative(() => native().coefL2({ device: opts.device ?? 'cpu', x, std: opts.std, weight: opts.weight ?? 1 }));
}

export interface Bounds {
  /** Lower bound: one number for all, or one per element. Default -Infinity. */
  lo?: number | Float32Array;
  /** Upper bound. Default +Infinity. */
  hi?: number | Float32Array;
}

/** Smooth penalty weight * dist(x, [lo, hi])^2 (zero inside), value and gradient. */
export function boundsPenalty(x: Float32Array, opts: Bounds & { weight?: number; device?: DeviceName }): { value: number; grad: Float32Array } {
  return callNative(() => native().boundsPenalty({ device: opts.device ?? 'cpu', x, lo: opts.lo, hi: opts.hi, weight: opts.weight ?? 1 }));
}

/** Projection onto [lo, hi] (clamp), for use after an optimiser step. Returns a new array. */
export function projectBounds(x: Float32Array, opts: Bounds & { device?: DeviceName }): Float32Array {
  return callNative(() => native().projectBounds({ device: opts.device ?? 'cpu', x, lo: opts.lo, hi: opts.hi }));
}

export interface MorphTiming {
  forwardUs: number;
  backwardUs: number;
  totalUs: number;
  blendForwardUs: number;
  blendBackwardUs: number;
  /** Bytes of the float16 basis (identity + expression + posedirs, padded rows). */
  basisBytes: number;
}

/** Benchmark helper (CUDA models only): mean microseconds of forward/backward replayed from CUDA graphs. */
export function timeMorph(
  model: MorphModel,
  coeffs: MorphCoeffs,
  upstream: { vertices: Float32Array; normals?: Float32Array },
  opts: MorphOptions & { iterations?: number; warmup?: number; flushL2?: boolean } = {},
): MorphTiming {
  const o = callArgs(model, coeffs, opts);
  Object.assign(o, { dVertices: upstream.vertices, dNormals: upstream.normals, iterations: opts.iterations, warmup: opts.warmup, flushL2: opts.flushL2 });
  return callNative(() => native().morphTime(o));
}

// ---------------------------------------------------------------- float16 helpers

/** fp16 helpers (one implementation, in lib/io/npy.ts): half bits <-> numbers, and whole arrays. */
export { floatToHalf, halfToFloat } from './io/npy';
/** float values -> float16 bits (round to nearest even). */
export function toHalf(a: ArrayLike<number>): Uint16Array {
  return float32ToFloat16(a);
}
/** float16 bits -> float32. */
export function fromHalf(a: Uint16Array): Float32Array {
  return float16ToFloat32(a);
}
