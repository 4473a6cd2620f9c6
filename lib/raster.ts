/**
 * The differentiable rasteriser (native/raster): render V views of one mesh with pinhole cameras, and
 * back-propagate image gradients to vertex positions and texels. See docs/raster.md for the conventions
 * (OpenCV cameras, UVs, barycentrics, SH lighting, antialiasing).
 *
 *   const cams = orbitCameras(meshBounds(mesh.positions), { views: 4, width: 512 });
 *   const r = render(mesh, cams, { texture, device: 'cuda' });
 *   const { dPositions, dTexture } = renderBackward(mesh, cams, { texture }, { dColor });
 */
import { loadNative, type DeviceName } from './native';
import { callNative, FaceG2EError } from './errors';
import type { PinholeCamera } from './camera';

export interface RasterMesh {
  /** Vertex positions, P×3 (world). */
  positions: Float32Array;
  /** Position triangles, T×3. */
  tri: Uint32Array | Int32Array;
  /** UVs, U×2, and UV triangles, T×3 (needed when a texture is given). */
  uvs?: Float32Array;
  uvTri?: Uint32Array | Int32Array;
}

export interface Texture {
  /** texH×texW×C floats, row 0 first (image order). */
  data: Float32Array;
  width: number;
  height: number;
  channels: number;
}

export interface RenderOptions {
  device?: DeviceName;
  /** Depth clip range (camera z); default near = 1e-3 × the first camera's depth range near, far = 1e30. */
  near?: number;
  far?: number;
  texture?: Texture;
  /** Texture addressing outside [0,1] (default 'clamp'). */
  wrap?: 'clamp' | 'repeat';
  /** v = 0 is the last texture row (the OBJ convention; default true). */
  flipV?: boolean;
  /** Colour of background pixels (C numbers; default zeros). */
  background?: ArrayLike<number>;
  /** SH lighting coefficients: 9 (all views) or V×9; default `defaultSh()`. null: no grey image. */
  sh?: ArrayLike<number> | null;
  /** Frame of the normal fed to the SH lighting (default 'camera'). */
  shFrame?: 'camera' | 'world';
  /** Per-view (near, far) for the normalised depth image, V×2; default each camera's depthRange, else (near, far). */
  depthRange?: ArrayLike<number>;
  /** Silhouette antialiasing (default true). */
  antialias?: boolean;
  /**
   * Mip-mapped minification (default false: bilinear). A box-filtered pyramid of the texture is built on every
   * call; each pixel samples it trilinearly at lod = log2(max(|dUV/dx|·size, |dUV/dy|·size)) + lodBias from the
   * analytic screen-space UV derivatives, clamped to [0, levels − 1]. Texel gradients reach the texture through
   * the pyramid's adjoint; the lod itself is not differentiated (its gradient to positions is ignored).
   */
  mip?: boolean;
  /** Maximum number of mip levels including level 0 (0 or undefined: all, down to 1×1; at most 32). */
  mipLevels?: number;
  /** Added to the level of detail (levels; > 0 blurs, < 0 sharpens). Default 0. */
  lodBias?: number;
}

export interface RenderResult {
  views: number;
  width: number;
  height: number;
  /** Triangle id per pixel, -1 on the background: V×H×W. */
  triId: Int32Array;
  /** Perspective-correct barycentrics (b0, b1) of tri[t][0], tri[t][1]: V×H×W×2. */
  bary: Float32Array;
  /** Camera-space depth z (0 on the background): V×H×W. */
  depth: Float32Array;
  /** Antialiased coverage: V×H×W. */
  mask: Float32Array;
  /** Unit camera-space normal (OpenCV axes), 0 on the background: V×H×W×3. */
  normal: Float32Array;
  /** clamp((far - z) / (far - near), 0, 1), background 0 (near is bright): V×H×W. */
  depthImage: Float32Array;
  /** SH-shaded grey (antialiased): V×H×W, when sh is not null. */
  grey?: Float32Array;
  /** Texture colour (antialiased): V×H×W×C, when a texture is given. */
  color?: Float32Array;
  channels: number;
}

export interface RenderGradients {
  dColor?: Float32Array;
  dGrey?: Float32Array;
  dMask?: Float32Array;
}

export interface BackwardOptions {
  /**
   * CUDA: fixed-point atomics, bitwise reproducible gradients (default false; the CPU is always deterministic).
   * In the default float mode, 3- and 4-channel texel gradients are first summed per warp of 32 pixels in fixed
   * point scaled to that warp's largest contribution (resolution ~2.4e-7 of it; docs/raster.md, "Backward").
   */
  deterministic?: boolean;
  /** Fixed-point scale for deterministic mode (default 2^32). */
  fixedPointScale?: number;
}

interface NativeRaster {
  rasterRender(o: Record<string, unknown>): Omit<RenderResult, 'views' | 'width' | 'height' | 'channels'>;
  rasterBackward(o: Record<string, unknown>): { dPositions: Float32Array; dTexture?: Float32Array };
  rasterInterpolate(o: Record<string, unknown>): Float32Array;
  rasterInterpolateBackward(o: Record<string, unknown>): Float32Array;
  rasterMipPyramid(o: Record<string, unknown>): { width: number; height: number; data: Float32Array }[];
}

function native(): NativeRaster {
  const n = loadNative<Partial<NativeRaster>>();
  if (typeof n.rasterRender !== 'function') throw new FaceG2EError('E_NATIVE_LOAD', 'this build of the addon has no rasteriser (built without the raster domain)');
  return n as NativeRaster;
}

function asI32(a: Uint32Array | Int32Array, what: string): Int32Array {
  if (a instanceof Int32Array) return a;
  if (a instanceof Uint32Array) {
    for (let i = 0; i < a.length; i++) if (a[i] > 0x7fffffff) throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: index ${a[i]} is too large`);
    return new Int32Array(a.buffer, a.byteOffset, a.length);
  }
  throw new FaceG2EError('E_INVALID_ARGUMENT', `${what}: expected a Uint32Array or Int32Array`);
}

/** SH coefficients (9, camera frame) for a white directional light (Lambertian, 3-band approximation) plus ambient. */
export function shFromDirection(towardLight: [number, number, number], diffuse = 0.8, ambient = 0.2): Float32Array {
  const l = Math.hypot(...towardLight);
  if (!(l > 0)) throw new FaceG2EError('E_INVALID_ARGUMENT', 'towardLight: expected a non-zero direction');
  const [x, y, z] = towardLight.map((v) => v / l);
  const Y = [0.282095, 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y)];
  const A = [Math.PI, (2 * Math.PI) / 3, (2 * Math.PI) / 3, (2 * Math.PI) / 3, Math.PI / 4, Math.PI / 4, Math.PI / 4, Math.PI / 4, Math.PI / 4]; // clamped-cosine SH factors A_l
  const c = new Float32Array(9);
  for (let i = 0; i < 9; i++) c[i] = diffuse * A[i] * Y[i];
  c[0] += ambient / 0.282095;
  return c;
}

/** Default lighting: a light above and slightly left of the camera (camera frame: up is -y, toward the camera is -z). */
export function defaultSh(): Float32Array {
  return shFromDirection([-0.3, -0.5, -1], 0.75, 0.25);
}

/** Evaluate the 9-term SH shading sum_k c_k Y_k(n) (the formula the renderer uses). */
export function shShade(c: ArrayLike<number>, n: [number, number, number]): number {
  const [x, y, z] = n;
  const Y = [0.282095, 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y)];
  let s = 0;
  for (let i = 0; i < 9; i++) s += c[i] * Y[i];
  return s;
}

function buildArgs(mesh: RasterMesh, cameras: PinholeCamera[], o: RenderOptions): Record<string, unknown> {
  if (!Array.isArray(cameras) || cameras.length === 0) throw new FaceG2EError('E_INVALID_ARGUMENT', 'cameras: expected a non-empty array');
  const V = cameras.length;
  const { width, height } = cameras[0];
  const intrinsics = new Float32Array(V * 4);
  const extrinsics = new Float32Array(V * 12);
  cameras.forEach((c, v) => {
    if (c.width !== width || c.height !== height)
      throw new FaceG2EError('E_INVALID_ARGUMENT', `cameras[${v}]: all cameras must share one image size (${width}x${height}), got ${c.width}x${c.height}`);
    intrinsics.set(c.intrinsics, 4 * v);
    if (c.extrinsics.length !== 12 && c.extrinsics.length !== 16)
      throw new FaceG2EError('E_INVALID_ARGUMENT', `cameras[${v}].extrinsics: expected 12 (3x4) or 16 (4x4) numbers`);
    extrinsics.set(c.extrinsics.subarray(0, 12), 12 * v);
  });
  const near = o.near ?? (cameras[0].depthRange ? cameras[0].depthRange[0] * 1e-3 : 1e-3);
  const far = o.far ?? 1e30;
  let depthRange: Float32Array | undefined;
  if (o.depthRange) depthRange = Float32Array.from(o.depthRange);
  else if (cameras.every((c) => c.depthRange)) depthRange = Float32Array.from(cameras.flatMap((c) => c.depthRange as [number, number]));
  let sh: Float32Array | undefined;
  const shIn = o.sh === undefined ? defaultSh() : o.sh;
  if (shIn) {
    if (shIn.length === 9) {
      sh = new Float32Array(9 * V);
      for (let v = 0; v < V; v++) sh.set(Array.from(shIn), 9 * v);
    } else if (shIn.length === 9 * V) sh = Float32Array.from(shIn);
    else throw new FaceG2EError('E_INVALID_ARGUMENT', `sh: expected 9 or ${9 * V} coefficients, got ${shIn.length}`);
  }
  const args: Record<string, unknown> = {
    positions: mesh.positions,
    tri: asI32(mesh.tri, 'tri'),
    intrinsics,
    extrinsics,
    width,
    height,
    near,
    far,
    antialias: o.antialias ?? true,
    shFrame: o.shFrame ?? 'camera',
    wrap: o.wrap ?? 'clamp',
    flipV: o.flipV ?? true,
    device: o.device ?? 'cpu',
  };
  if (sh) args.sh = sh;
  if (depthRange) args.depthRange = depthRange;
  if (o.texture) {
    if (!mesh.uvs || !mesh.uvTri) throw new FaceG2EError('E_INVALID_ARGUMENT', 'texture: the mesh needs uvs and uvTri');
    args.texture = o.texture.data;
    args.texWidth = o.texture.width;
    args.texHeight = o.texture.height;
    args.channels = o.texture.channels;
    args.uvs = mesh.uvs;
    args.uvTri = asI32(mesh.uvTri, 'uvTri');
    if (o.background) args.background = Float32Array.from(o.background);
    if (o.mip) {
      args.mip = true;
      if (o.mipLevels !== undefined) {
        if (!Number.isInteger(o.mipLevels) || o.mipLevels < 0 || o.mipLevels > 32)
          throw new FaceG2EError('E_INVALID_ARGUMENT', `mipLevels: expected an integer in [0, 32], got ${o.mipLevels}`);
        args.mipLevels = o.mipLevels;
      }
      if (o.lodBias !== undefined) {
        if (!Number.isFinite(o.lodBias) || Math.abs(o.lodBias) > 64)
          throw new FaceG2EError('E_INVALID_ARGUMENT', `lodBias: expected a finite number in [-64, 64], got ${o.lodBias}`);
        args.lodBias = o.lodBias;
      }
    }
  }
  return args;
}

/** Render V views of one mesh. */
export function render(mesh: RasterMesh, cameras: PinholeCamera[], options: RenderOptions = {}): RenderResult {
  const args = buildArgs(mesh, cameras, options);
  const r = callNative(() => native().rasterRender(args));
  return { ...r, views: cameras.length, width: cameras[0].width, height: cameras[0].height, channels: options.texture?.channels ?? 0 };
}

/**
 * Gradients of a scalar loss w.r.t. vertex positions (P×3) and texels (texH×texW×C) given the gradients of
 * the loss w.r.t. the rendered color / grey / mask (the forward is recomputed with the same options).
 */
export function renderBackward(
  mesh: RasterMesh,
  cameras: PinholeCamera[],
  options: RenderOptions,
  grads: RenderGradients,
  backward: BackwardOptions = {},
): { dPositions: Float32Array; dTexture?: Float32Array } {
  const args = buildArgs(mesh, cameras, options);
  if (grads.dColor) args.dColor = grads.dColor;
  if (grads.dGrey) args.dGrey = grads.dGrey;
  if (grads.dMask) args.dMask = grads.dMask;
  args.deterministic = backward.deterministic ?? false;
  if (backward.fixedPointScale !== undefined) args.fixedPointScale = backward.fixedPointScale;
  return callNative(() => native().rasterBackward(args));
}

/**
 * The mip pyramid the renderer builds with `mip: true`: level 0 (a copy of the texture), then levels of
 * max(1, width >> l) × max(1, height >> l) texels, each the mean of the 2×2 texels below it (clamped reads, so an
 * odd size drops its last row/column).
 */
export function mipPyramid(texture: Texture, options: { mipLevels?: number; device?: DeviceName } = {}): Texture[] {
  const levels = callNative(() =>
    native().rasterMipPyramid({
      texture: texture.data,
      texWidth: texture.width,
      texHeight: texture.height,
      channels: texture.channels,
      mipLevels: options.mipLevels ?? 0,
      device: options.device ?? 'cpu',
    }),
  );
  return levels.map((l) => ({ data: l.data, width: l.width, height: l.height, channels: texture.channels }));
}

export interface InterpolateInput {
  /** N×A attribute rows. */
  attr: Float32Array;
  numAttr: number;
  /** T×3 rows of attr per triangle (tri for per-vertex attributes, uvTri for UVs). */
  attrTri: Uint32Array | Int32Array;
  triId: Int32Array;
  bary: Float32Array;
  device?: DeviceName;
}

/** Interpolate attributes with a render's triId / bary: pixels×A (0 on the background). */
export function interpolate(i: InterpolateInput): Float32Array {
  return callNative(() => native().rasterInterpolate({ ...i, attrTri: asI32(i.attrTri, 'attrTri'), device: i.device ?? 'cpu' }));
}

/** Gradient of interpolate() w.r.t. attr (N×A). */
export function interpolateBackward(i: InterpolateInput, dOut: Float32Array): Float32Array {
  return callNative(() => native().rasterInterpolateBackward({ ...i, attrTri: asI32(i.attrTri, 'attrTri'), dOut, device: i.device ?? 'cpu' }));
}

/** Camera-space normals (OpenCV axes) -> RGB in [0,1] in the usual normal-map convention (x right, y up, z toward the viewer); background stays 0. */
export function encodeNormals(normal: Float32Array, mask?: Float32Array): Float32Array {
  const n = normal.length / 3;
  const out = new Float32Array(normal.length);
  for (let i = 0; i < n; i++) {
    const x = normal[3 * i], y = normal[3 * i + 1], z = normal[3 * i + 2];
    if (x === 0 && y === 0 && z === 0) continue;
    const m = mask ? mask[i] : 1;
    out[3 * i] = (x * 0.5 + 0.5) * m;
    out[3 * i + 1] = (-y * 0.5 + 0.5) * m;
    out[3 * i + 2] = (-z * 0.5 + 0.5) * m;
  }
  return out;
}
