/**
 * Pinhole cameras for the rasteriser (OpenCV convention: +x right, +y down, +z forward; world->camera
 * extrinsics as a row-major 3x4 [R|t]), look-at construction, intrinsics from a field of view, and orbit
 * cameras around a bounding box (used by the render command and the pipeline).
 */
import { FaceG2EError } from './errors';

export type Vec3 = [number, number, number];

export interface PinholeCamera {
  width: number;
  height: number;
  /** fx, fy, cx, cy in pixels. */
  intrinsics: [number, number, number, number];
  /** world->camera [R|t], row-major 3x4 (12 numbers). */
  extrinsics: Float32Array;
  /** Camera centre in world coordinates. */
  eye: Vec3;
  /** Suggested depth range (camera z) of the object for a normalised depth image: [near, far]. */
  depthRange?: [number, number];
}

export interface BoundingBox {
  min: Vec3;
  max: Vec3;
}

const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
function normalize(a: Vec3): Vec3 {
  const l = Math.hypot(a[0], a[1], a[2]);
  if (!(l > 0)) throw new FaceG2EError('E_INVALID_ARGUMENT', 'camera: degenerate direction (zero length)');
  return [a[0] / l, a[1] / l, a[2] / l];
}

/** Axis-aligned bounding box of a [P,3] position array. */
export function meshBounds(positions: ArrayLike<number>): BoundingBox {
  if (positions.length < 3 || positions.length % 3) throw new FaceG2EError('E_INVALID_ARGUMENT', 'positions: expected a non-empty [P,3] array');
  const min: Vec3 = [Infinity, Infinity, Infinity];
  const max: Vec3 = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < positions.length; i += 3)
    for (let c = 0; c < 3; c++) {
      const v = positions[i + c];
      if (v < min[c]) min[c] = v;
      if (v > max[c]) max[c] = v;
    }
  return { min, max };
}

/**
 * World->camera extrinsics looking from `eye` at `target` with `up` (world) pointing up in the image
 * (OpenCV: the camera's +y is down, so image-up is -y).
 */
export function lookAt(eye: Vec3, target: Vec3, up: Vec3 = [0, 1, 0]): Float32Array {
  const z = normalize(sub(target, eye)); // forward
  let x = cross(z, up); // right = forward x up (y down)
  if (Math.hypot(...x) < 1e-8) x = cross(z, Math.abs(z[0]) < 0.9 ? [1, 0, 0] : [0, 0, 1]);
  x = normalize(x);
  const y = cross(z, x); // down
  return Float32Array.from([x[0], x[1], x[2], -dot(x, eye), y[0], y[1], y[2], -dot(y, eye), z[0], z[1], z[2], -dot(z, eye)]);
}

/** Intrinsics (fx, fy, cx, cy) from a vertical field of view in degrees; square pixels, centred principal point. */
export function intrinsicsFromFov(fovYDeg: number, width: number, height: number): [number, number, number, number] {
  if (!(fovYDeg > 0 && fovYDeg < 180)) throw new FaceG2EError('E_INVALID_ARGUMENT', `fovY: expected (0, 180) degrees, got ${fovYDeg}`);
  const f = height / 2 / Math.tan((fovYDeg * Math.PI) / 360);
  return [f, f, width / 2, height / 2];
}

export interface OrbitOptions {
  /** Number of views, spread evenly in azimuth starting at `azimuthStart`. */
  views: number;
  width: number;
  height?: number;
  /** Vertical field of view in degrees (default 30). */
  fovY?: number;
  /** Elevation above the box centre, degrees (default 10). */
  elevation?: number;
  /** Azimuth of the first view in degrees; 0 looks along -front, i.e. the camera sits on +`front` (default 0). */
  azimuthStart?: number;
  /** Total azimuth span in degrees (default 360). */
  azimuthSpan?: number;
  /** Fraction of the smaller image side that the box's bounding sphere spans (default 1.1: a head's bounding sphere is loose). */
  fill?: number;
  /** World up (default +y) and the front direction of the object (default +z, the OBJ/ICT convention). */
  up?: Vec3;
  front?: Vec3;
}

/** Cameras on a circle around the box centre, each looking at it, at a distance where the box's bounding sphere fills `fill` of the image. */
export function orbitCameras(box: BoundingBox, o: OrbitOptions): PinholeCamera[] {
  const n = o.views;
  if (!(Number.isInteger(n) && n >= 1)) throw new FaceG2EError('E_INVALID_ARGUMENT', `views: expected an integer >= 1, got ${n}`);
  const width = o.width;
  const height = o.height ?? o.width;
  if (!(Number.isInteger(width) && width >= 1 && Number.isInteger(height) && height >= 1))
    throw new FaceG2EError('E_INVALID_ARGUMENT', `size: expected integers >= 1, got ${width}x${height}`);
  const fovY = o.fovY ?? 30;
  const fill = o.fill ?? 1.1;
  if (!(fill > 0 && fill <= 1.5)) throw new FaceG2EError('E_INVALID_ARGUMENT', `fill: expected (0, 1.5], got ${fill}`);
  const up = normalize(o.up ?? [0, 1, 0]);
  const front = normalize(o.front ?? [0, 0, 1]);
  const side = normalize(cross(up, front));
  const centre: Vec3 = [(box.min[0] + box.max[0]) / 2, (box.min[1] + box.max[1]) / 2, (box.min[2] + box.max[2]) / 2];
  const radius = Math.hypot(box.max[0] - box.min[0], box.max[1] - box.min[1], box.max[2] - box.min[2]) / 2;
  if (!(radius > 0)) throw new FaceG2EError('E_INVALID_ARGUMENT', 'bounding box: expected a non-degenerate box');
  const intr = intrinsicsFromFov(fovY, width, height);
  const fovMin = Math.min(fovY, (2 * Math.atan(width / 2 / intr[0]) * 180) / Math.PI);
  // the sphere of radius r at distance d subtends asin(r/d); make it fill `fill` of the smaller field of view
  const half = Math.atan(fill * Math.tan((fovMin * Math.PI) / 360));
  const dist = radius / Math.sin(half);
  const elev = ((o.elevation ?? 10) * Math.PI) / 180;
  const span = o.azimuthSpan ?? 360;
  const cams: PinholeCamera[] = [];
  for (let i = 0; i < n; i++) {
    const az = (((o.azimuthStart ?? 0) + (span * i) / (span >= 360 ? n : Math.max(1, n - 1))) * Math.PI) / 180;
    const dir: Vec3 = [0, 1, 2].map(
      (c) => Math.cos(elev) * (Math.cos(az) * front[c] + Math.sin(az) * side[c]) + Math.sin(elev) * up[c],
    ) as Vec3;
    const eye: Vec3 = [centre[0] + dist * dir[0], centre[1] + dist * dir[1], centre[2] + dist * dir[2]];
    cams.push({
      width,
      height,
      intrinsics: intr,
      extrinsics: lookAt(eye, centre, up),
      eye,
      depthRange: [Math.max(dist - 0.75 * radius, 1e-6), dist + 0.75 * radius],
    });
  }
  return cams;
}
