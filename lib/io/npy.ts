/**
 * NumPy .npy reader (format versions 1.0, 2.0 and 3.0).
 *
 * Supported dtypes (little-endian or byte-order-free): float16 (kept as raw Uint16Array bits; see
 * float16ToFloat32), float32, float64, int8/uint8, int16/uint16, int32/uint32, int64/uint64 (BigInt arrays), bool.
 * Big-endian data is byte-swapped on read. Fortran-ordered arrays are transposed to C order.
 */
import { FaceG2EError } from '../errors';
import { readFileBytes } from './files';

export type NpyDtype = 'f2' | 'f4' | 'f8' | 'i1' | 'u1' | 'i2' | 'u2' | 'i4' | 'u4' | 'i8' | 'u8' | 'b1';
export type NpyData = Uint16Array | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** C-ordered data; float16 as raw bits in a Uint16Array. */
  data: NpyData;
}

const ITEMSIZE: Record<NpyDtype, number> = { f2: 2, f4: 4, f8: 8, i1: 1, u1: 1, i2: 2, u2: 2, i4: 4, u4: 4, i8: 8, u8: 8, b1: 1 };

function fmtErr(file: string, msg: string): FaceG2EError {
  return new FaceG2EError('E_FORMAT', `${file}: ${msg}`);
}

/** Parse the Python-literal header dict of a .npy file. */
function parseHeader(text: string, file: string): { descr: string; fortran: boolean; shape: number[] } {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) throw fmtErr(file, `bad .npy header (expected a dict with 'descr', 'fortran_order' and 'shape'): ${text.trim().slice(0, 200)}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => Number(s.replace(/L$/, '')));
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw fmtErr(file, `bad shape (${shape[1]}) in .npy header`);
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims };
}

function makeTyped(dtype: NpyDtype, buf: ArrayBuffer, n: number): NpyData {
  switch (dtype) {
    case 'f2': return new Uint16Array(buf, 0, n);
    case 'f4': return new Float32Array(buf, 0, n);
    case 'f8': return new Float64Array(buf, 0, n);
    case 'i1': return new Int8Array(buf, 0, n);
    case 'u1': case 'b1': return new Uint8Array(buf, 0, n);
    case 'i2': return new Int16Array(buf, 0, n);
    case 'u2': return new Uint16Array(buf, 0, n);
    case 'i4': return new Int32Array(buf, 0, n);
    case 'u4': return new Uint32Array(buf, 0, n);
    case 'i8': return new BigInt64Array(buf, 0, n);
    case 'u8': return new BigUint64Array(buf, 0, n);
  }
}

/** Reorder Fortran (column-major) data to C order. */
function fortranToC<T extends NpyData>(src: T, shape: number[]): T {
  const n = src.length;
  const out = new (src.constructor as new (n: number) => T)(n);
  const nd = shape.length;
  if (nd <= 1) return src;
  // strides of the Fortran layout
  const fstride = new Array<number>(nd);
  let s = 1;
  for (let d = 0; d < nd; d++) { fstride[d] = s; s *= shape[d]; }
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < nd; d++) off += idx[d] * fstride[d];
    (out as unknown as ArrayLike<unknown> & Record<number, unknown>)[i] = (src as unknown as Record<number, unknown>)[off];
    for (let d = nd - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
  }
  return out;
}

/** Parse .npy bytes. `file` is used in error messages. */
export function parseNpy(bytes: Uint8Array, file = '<npy>'): NpyArray {
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') {
    throw fmtErr(file, 'not a .npy file (expected the magic \\x93NUMPY)');
  }
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let hlen: number;
  let hstart: number;
  if (major === 1) { hlen = dv.getUint16(8, true); hstart = 10; }
  else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw fmtErr(file, 'truncated .npy header');
    hlen = dv.getUint32(8, true); hstart = 12;
  } else throw fmtErr(file, `unsupported .npy format version ${major}.${bytes[7]} (expected 1.0, 2.0 or 3.0)`);
  if (hstart + hlen > bytes.length) throw fmtErr(file, `truncated .npy header (needs ${hstart + hlen} bytes, file has ${bytes.length})`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(hstart, hstart + hlen));
  const { descr, fortran, shape } = parseHeader(header, file);
  const m = /^([<>|=]?)([fiub])(\d+)$/.exec(descr);
  if (!m) throw fmtErr(file, `unsupported dtype '${descr}' (expected float16/32/64, (u)int8/16/32/64 or bool)`);
  const order = m[1];
  const dtype = (m[2] + m[3]) as NpyDtype;
  if (!(dtype in ITEMSIZE)) throw fmtErr(file, `unsupported dtype '${descr}' (expected float16/32/64, (u)int8/16/32/64 or bool)`);
  const isz = ITEMSIZE[dtype];
  const n = shape.reduce((a, b) => a * b, 1);
  const dataStart = hstart + hlen;
  const need = n * isz;
  if (bytes.length - dataStart < need) {
    throw fmtErr(file, `truncated data: shape [${shape.join(', ')}] of ${descr} needs ${need} bytes, the file has ${bytes.length - dataStart}`);
  }
  // copy into an aligned buffer
  const buf = new ArrayBuffer(need);
  const u8 = new Uint8Array(buf);
  u8.set(bytes.subarray(dataStart, dataStart + need));
  if (order === '>' && isz > 1) {
    for (let i = 0; i < need; i += isz) u8.subarray(i, i + isz).reverse();
  }
  let data = makeTyped(dtype, buf, n);
  if (fortran) data = fortranToC(data, shape);
  return { dtype, shape, data };
}

/** Read a .npy file. */
export async function readNpy(file: string): Promise<NpyArray> {
  return parseNpy(await readFileBytes(file), file);
}

// ---- float16 <-> float32 -------------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (raw bits) -> float. */
export function halfToFloat(h: number): number {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 5.960464477539063e-8; // 2^-24
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) HALF_TABLE[i] = halfToFloat(i);
  }
  return HALF_TABLE;
}

/** Convert raw float16 bits to float32 (table lookup; fast for large arrays). */
export function float16ToFloat32(src: Uint16Array, out?: Float32Array): Float32Array {
  const t = halfTable();
  const o = out ?? new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) o[i] = t[src[i]];
  return o;
}

/** float -> IEEE half bits, round to nearest even, overflow to Inf. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h; // a carry into the exponent is correct rounding (may give Inf)
}

/** Convert float32/float64 values to raw float16 bits. */
export function float32ToFloat16(src: ArrayLike<number>, out?: Uint16Array): Uint16Array {
  const o = out ?? new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) o[i] = floatToHalf(src[i]);
  return o;
}

/** Numeric npy data as float32 (float16 decoded, integers converted). */
export function npyToFloat32(a: NpyArray): Float32Array {
  if (a.dtype === 'f2') return float16ToFloat32(a.data as Uint16Array);
  if (a.data instanceof Float32Array) return a.data;
  const o = new Float32Array(a.data.length);
  for (let i = 0; i < o.length; i++) o[i] = Number(a.data[i]);
  return o;
}
