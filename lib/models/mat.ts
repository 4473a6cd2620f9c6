/**
 * MATLAB .mat reader: Level 5 (v5/v6/v7, with zlib-compressed elements) for numeric, logical, char and
 * struct variables, and v7.3 (HDF5) through h5wasm. Arrays come back row-major in MATLAB's dimension order.
 */
import { inflateSync } from 'node:zlib';
import { FaceG2EError } from '../errors';
import { openHdf5 } from './hdf5';
import { readFileBytes } from '../io/files';

export interface MatArray {
  dims: number[];
  /** Values in row-major order over `dims` (converted from MATLAB's column-major). */
  data: Float64Array;
}
export type MatValue = MatArray | string | Map<string, MatValue> | null;

const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15, UTF8: 16, UTF16: 17, UTF32: 18 };
const MX = { CELL: 1, STRUCT: 2, OBJECT: 3, CHAR: 4, SPARSE: 5 };

/** Column-major (MATLAB) to row-major over the same dims. */
export function colToRowMajor(src: ArrayLike<number>, dims: number[]): Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  if (dims.length === 2) {
    const [r, c] = dims;
    for (let j = 0; j < c; j++) for (let i = 0; i < r; i++) out[i * c + j] = src[j * r + i];
    return out;
  }
  const nd = dims.length;
  const cs = new Array<number>(nd);
  let s = 1;
  for (let d = 0; d < nd; d++) { cs[d] = s; s *= dims[d]; }
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < nd; d++) off += idx[d] * cs[d];
    out[i] = src[off];
    for (let d = nd - 1; d >= 0; d--) { if (++idx[d] < dims[d]) break; idx[d] = 0; }
  }
  return out;
}

function numeric(type: number, b: Uint8Array, file: string): ArrayLike<number> {
  const buf = new ArrayBuffer(b.byteLength);
  new Uint8Array(buf).set(b);
  switch (type) {
    case MI.INT8: return new Int8Array(buf);
    case MI.UINT8: case MI.UTF8: return new Uint8Array(buf);
    case MI.INT16: return new Int16Array(buf, 0, b.byteLength >> 1);
    case MI.UINT16: case MI.UTF16: return new Uint16Array(buf, 0, b.byteLength >> 1);
    case MI.INT32: return new Int32Array(buf, 0, b.byteLength >> 2);
    case MI.UINT32: case MI.UTF32: return new Uint32Array(buf, 0, b.byteLength >> 2);
    case MI.SINGLE: return new Float32Array(buf, 0, b.byteLength >> 2);
    case MI.DOUBLE: return new Float64Array(buf, 0, b.byteLength >> 3);
    case MI.INT64: return Float64Array.from(new BigInt64Array(buf, 0, b.byteLength >> 3), Number);
    case MI.UINT64: return Float64Array.from(new BigUint64Array(buf, 0, b.byteLength >> 3), Number);
    default: throw new FaceG2EError('E_FORMAT', `${file}: unsupported MAT data type ${type}`);
  }
}

interface Element { type: number; data: Uint8Array }

function readElements(b: Uint8Array, file: string, max = Infinity): Element[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Element[] = [];
  let p = 0;
  while (p + 8 <= b.byteLength && out.length < max) {
    const w0 = dv.getUint32(p, true);
    if (w0 >>> 16) {
      // small data element: 2-byte size, 2-byte type, 4 bytes of data
      const type = w0 & 0xffff;
      const n = w0 >>> 16;
      if (n > 4) throw new FaceG2EError('E_FORMAT', `${file}: bad small MAT element at byte ${p}`);
      out.push({ type, data: b.subarray(p + 4, p + 4 + n) });
      p += 8;
      continue;
    }
    const type = w0;
    const n = dv.getUint32(p + 4, true);
    if (p + 8 + n > b.byteLength) throw new FaceG2EError('E_FORMAT', `${file}: truncated MAT element (type ${type}, ${n} bytes at byte ${p}, ${b.byteLength - p - 8} left)`);
    out.push({ type, data: b.subarray(p + 8, p + 8 + n) });
    p += 8 + n;
    if (type !== MI.COMPRESSED) p += (8 - (n % 8)) % 8;
  }
  return out;
}

function parseMatrix(b: Uint8Array, file: string): { name: string; value: MatValue } {
  const els = readElements(b, file);
  if (els.length < 3) throw new FaceG2EError('E_FORMAT', `${file}: truncated MAT matrix element`);
  const flags = new DataView(els[0].data.buffer, els[0].data.byteOffset, els[0].data.byteLength).getUint32(0, true);
  const cls = flags & 0xff;
  const complex = (flags & 0x800) !== 0;
  const logical = (flags & 0x200) !== 0;
  const dims = Array.from(numeric(els[1].type, els[1].data, file));
  const name = Buffer.from(els[2].data).toString('latin1');
  const n = dims.reduce((a, c) => a * c, 1);
  if (cls === MX.CELL || cls === MX.OBJECT || cls === MX.SPARSE) return { name, value: null };
  if (cls === MX.STRUCT) {
    const fl = numeric(els[3].type, els[3].data, file)[0];
    const namesRaw = els[4].data;
    const names: string[] = [];
    for (let i = 0; i + fl <= namesRaw.byteLength; i += fl) names.push(Buffer.from(namesRaw.subarray(i, i + fl)).toString('latin1').replace(/\0.*$/s, ''));
    const m = new Map<string, MatValue>();
    if (n === 1) names.forEach((fname, i) => {
      const e = els[5 + i];
      m.set(fname, e && e.type === MI.MATRIX && e.data.byteLength ? parseMatrix(e.data, file).value : null);
    });
    return { name, value: m };
  }
  if (cls === MX.CHAR) {
    const chars = numeric(els[3].type, els[3].data, file);
    return { name, value: String.fromCharCode(...Array.from(colToRowMajor(chars, dims))) };
  }
  if (cls < 6 || cls > 15) throw new FaceG2EError('E_FORMAT', `${file}: variable '${name}' has unsupported MATLAB class ${cls}`);
  const real = numeric(els[3].type, els[3].data, file);
  if (real.length !== n) throw new FaceG2EError('E_FORMAT', `${file}: variable '${name}' has ${real.length} values for dims [${dims.join(', ')}]`);
  void complex; void logical; // the real part is kept
  return { name, value: { dims, data: colToRowMajor(real, dims) } };
}

/** Read a .mat file (v5 or v7.3). Returns the variables by name. */
export async function readMat(file: string, wanted?: string[]): Promise<Map<string, MatValue>> {
  const bytes = await readFileBytes(file);
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89484446) return readMat73(file, wanted); // bare HDF5 (v7.3 without its 512-byte header)
  if (bytes.length < 128 || !bytes.subarray(0, 6).toString('latin1').startsWith('MATLAB')) {
    throw new FaceG2EError('E_FORMAT', `${file}: not a MATLAB .mat file (expected a 'MATLAB 5.0 MAT-file' or 'MATLAB 7.3 MAT-file' header)`);
  }
  const text = bytes.subarray(0, 116).toString('latin1');
  const version = bytes.readUInt16LE(124);
  const endian = bytes.subarray(126, 128).toString('latin1');
  if (/MATLAB 7\.3/.test(text) || version === 0x0200) return readMat73(file, wanted);
  if (endian !== 'IM') throw new FaceG2EError('E_FORMAT', `${file}: big-endian MAT files are not supported (endian indicator '${endian}')`);
  const out = new Map<string, MatValue>();
  for (const el of readElements(bytes.subarray(128), file)) {
    let e = el;
    if (e.type === MI.COMPRESSED) {
      let inflated: Buffer;
      try {
        inflated = inflateSync(e.data);
      } catch (err) {
        throw new FaceG2EError('E_FORMAT', `${file}: a compressed variable could not be inflated (truncated file?): ${(err as Error).message}`);
      }
      const inner = readElements(inflated, file, 1);
      if (!inner.length) continue;
      e = inner[0];
    }
    if (e.type !== MI.MATRIX) continue;
    const { name, value } = parseMatrix(e.data, file);
    if (!wanted || wanted.includes(name)) out.set(name, value);
  }
  return out;
}

async function readMat73(file: string, wanted?: string[]): Promise<Map<string, MatValue>> {
  const h = await openHdf5(file, 'a MATLAB v7.3 file');
  try {
    const out = new Map<string, MatValue>();
    for (const k of h.keys('/')) {
      if (wanted && !wanted.includes(k)) continue;
      const a = h.get(k);
      if (!a) continue;
      // HDF5 stores MATLAB arrays with the dimensions reversed; its row-major order is MATLAB's column-major order.
      const dims = [...a.shape].reverse();
      if (dims.length === 1) dims.push(1);
      const src = Float64Array.from(a.data as ArrayLike<number | bigint>, (x) => Number(x));
      out.set(k, { dims, data: colToRowMajor(src, dims) });
    }
    return out;
  } finally {
    h.close();
  }
}

/** Write a MAT v5 file (uncompressed) with numeric double matrices, for tests and fixtures. */
export function formatMatV5(vars: { name: string; dims: number[]; rowMajor: ArrayLike<number> }[]): Buffer {
  const pad8 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
  const el = (type: number, data: Buffer) => {
    const h = Buffer.alloc(8);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(data.length, 4);
    return pad8(Buffer.concat([h, data]));
  };
  const header = Buffer.alloc(128, 0x20);
  header.write('MATLAB 5.0 MAT-file, written by faceg2e-native tests', 0, 'latin1');
  header.writeUInt16LE(0x0100, 124);
  header.write('IM', 126, 'latin1');
  const parts: Buffer[] = [header];
  for (const v of vars) {
    const [r, c] = v.dims;
    const col = new Float64Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) col[j * r + i] = v.rowMajor[i * c + j];
    const flags = Buffer.alloc(8);
    flags.writeUInt32LE(6, 0); // mxDOUBLE_CLASS
    const dims = Buffer.alloc(8);
    dims.writeInt32LE(r, 0);
    dims.writeInt32LE(c, 4);
    const body = Buffer.concat([el(MI.UINT32, flags), el(MI.INT32, dims), el(MI.INT8, Buffer.from(v.name, 'latin1')), el(MI.DOUBLE, Buffer.from(col.buffer))]);
    parts.push(el(MI.MATRIX, body));
  }
  return Buffer.concat(parts);
}
