/**
 * safetensors reader and writer (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON header `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__: {str: str} }`,
 * then the tensor data (offsets relative to the end of the header), contiguous. Written with every tensor
 * naturally aligned (data section on an 8-byte boundary, tensors ordered by item size).
 * Reading validates everything and fails with E_FORMAT naming the file and the problem.
 */
import { FaceG2EError } from '../errors';
import { writeFileAtomic } from '../io/atomic';
import { readFileBytes } from '../io/files';

export type StDtype = 'F16' | 'BF16' | 'F32' | 'F64' | 'I8' | 'U8' | 'I16' | 'U16' | 'I32' | 'U32' | 'I64' | 'U64' | 'BOOL';
export type StData = Uint16Array | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

export interface StTensor {
  dtype: StDtype;
  shape: number[];
  /** Element data; F16/BF16 as raw bits in a Uint16Array. */
  data: StData;
}

export interface StFile {
  tensors: Map<string, StTensor>;
  metadata: Record<string, string>;
}

export const ST_ITEMSIZE: Record<StDtype, number> = { F16: 2, BF16: 2, F32: 4, F64: 8, I8: 1, U8: 1, I16: 2, U16: 2, I32: 4, U32: 4, I64: 8, U64: 8, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

function view(dtype: StDtype, buf: ArrayBuffer, off: number, n: number): StData {
  switch (dtype) {
    case 'F16': case 'BF16': case 'U16': return new Uint16Array(buf, off, n);
    case 'F32': return new Float32Array(buf, off, n);
    case 'F64': return new Float64Array(buf, off, n);
    case 'I8': return new Int8Array(buf, off, n);
    case 'U8': case 'BOOL': return new Uint8Array(buf, off, n);
    case 'I16': return new Int16Array(buf, off, n);
    case 'I32': return new Int32Array(buf, off, n);
    case 'U32': return new Uint32Array(buf, off, n);
    case 'I64': return new BigInt64Array(buf, off, n);
    case 'U64': return new BigUint64Array(buf, off, n);
  }
}

/** Parse safetensors bytes. Tensor data are copied into aligned arrays only when the input is misaligned. */
export function parseSafetensors(bytes: Uint8Array, file = '<safetensors>'): StFile {
  const bad = (msg: string) => new FaceG2EError('E_FORMAT', `${file}: ${msg}`);
  if (bytes.byteLength < 8) throw bad(`too short for a safetensors file (${bytes.byteLength} bytes; expected an 8-byte header length, a JSON header and data)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER)) throw bad(`not a safetensors file (header length ${n} is implausible; expected 2..${MAX_HEADER})`);
  const hlen = Number(n);
  if (8 + hlen > bytes.byteLength) throw bad(`truncated: the header says ${hlen} bytes of JSON but the file has ${bytes.byteLength - 8} after the length`);
  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen));
    if (text.trimStart()[0] !== '{') throw new Error('does not start with {');
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`not a safetensors file (the header is not a JSON object: ${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('the header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataLen = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, StTensor>();
  const ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw bad(`__metadata__.${k} must be a string, got ${typeof s}`);
        metadata[k] = s;
      }
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof t !== 'object' || t === null) throw bad(`tensor '${name}': expected an object with dtype, shape, data_offsets`);
    if (typeof t.dtype !== 'string' || !(t.dtype in ST_ITEMSIZE)) throw bad(`tensor '${name}': unsupported dtype ${JSON.stringify(t.dtype)} (expected one of ${Object.keys(ST_ITEMSIZE).join(', ')})`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`tensor '${name}': shape must be a list of non-negative integers`);
    if (!Array.isArray(t.data_offsets) || t.data_offsets.length !== 2 || !t.data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`tensor '${name}': data_offsets must be [begin, end]`);
    }
    const dtype = t.dtype as StDtype;
    const shape = t.shape as number[];
    const [b, e] = t.data_offsets as number[];
    const count = shape.reduce((a, d) => a * d, 1);
    if (e < b) throw bad(`tensor '${name}': data_offsets [${b}, ${e}] end before begin`);
    if (e - b !== count * ST_ITEMSIZE[dtype]) throw bad(`tensor '${name}': ${e - b} bytes of data for shape [${shape.join(', ')}] ${dtype} (expected ${count * ST_ITEMSIZE[dtype]})`);
    if (e > dataLen) throw bad(`truncated: tensor '${name}' ends at data byte ${e} but only ${dataLen} data bytes are present`);
    ranges.push([b, e, name]);
    const abs = bytes.byteOffset + dataStart + b;
    let data: StData;
    if (abs % ST_ITEMSIZE[dtype] === 0) data = view(dtype, bytes.buffer as ArrayBuffer, abs, count);
    else {
      const copy = new Uint8Array(e - b);
      copy.set(bytes.subarray(dataStart + b, dataStart + e));
      data = view(dtype, copy.buffer, 0, count);
    }
    tensors.set(name, { dtype, shape, data });
  }
  ranges.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw bad(`tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  }
  const end = ranges.length ? ranges[ranges.length - 1][1] : 0;
  if (end !== dataLen) throw bad(`${dataLen - end} trailing bytes after the last tensor (a foreign or corrupted file?)`);
  return { tensors, metadata };
}

/** Read a safetensors file. */
export async function readSafetensors(file: string): Promise<StFile> {
  return parseSafetensors(await readFileBytes(file), file);
}

/** Serialise tensors (in the given order) and metadata as safetensors chunks. */
export function serializeSafetensors(tensors: Map<string, StTensor> | [string, StTensor][], metadata: Record<string, string> = {}): Uint8Array[] {
  // The format forbids holes between tensors, so natural alignment comes from ordering: larger item sizes
  // first (stable), with the data section starting on an 8-byte boundary.
  const entries = (tensors instanceof Map ? [...tensors.entries()] : [...tensors])
    .map((e, i) => [e, i] as const)
    .sort((a, b) => ST_ITEMSIZE[b[0][1].dtype] - ST_ITEMSIZE[a[0][1].dtype] || a[1] - b[1])
    .map((x) => x[0]);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  const chunks: Uint8Array[] = [];
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new FaceG2EError('E_INVALID_ARGUMENT', `a tensor may not be named __metadata__`);
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) throw new FaceG2EError('E_INVALID_ARGUMENT', `tensor '${name}': ${t.data.length} elements for shape [${t.shape.join(', ')}]`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (bytes.byteLength !== count * ST_ITEMSIZE[t.dtype]) throw new FaceG2EError('E_INVALID_ARGUMENT', `tensor '${name}': array type does not match dtype ${t.dtype}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes.byteLength] };
    chunks.push(bytes);
    off += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const jb = Buffer.from(json, 'utf8');
  const padded = jb.byteLength + ((8 - ((8 + jb.byteLength) % 8)) % 8);
  json = json + ' '.repeat(padded - jb.byteLength);
  const hdr = Buffer.from(json, 'utf8');
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hdr.byteLength), true);
  return [len, hdr, ...chunks];
}

/** Write a safetensors file atomically. */
export async function writeSafetensors(file: string, tensors: Map<string, StTensor> | [string, StTensor][], metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}
