// Readers under the model importers: .npy, safetensors, the pickle subset, MAT v5 / v7.3.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { parseNpy, float16ToFloat32, float32ToFloat16, halfToFloat, floatToHalf } from '../../lib/io/npy';
import { parseSafetensors, serializeSafetensors, readSafetensors, writeSafetensors } from '../../lib/models/safetensors';
import { unpickle, NdArray, PyObject, asArray, asDenseMatrix } from '../../lib/models/pickle';
import { readMat, formatMatV5 } from '../../lib/models/mat';
import { writeHdf5 } from '../../lib/models/hdf5';
import { FaceG2EError } from '../../lib/errors';
import { tmpDir } from '../helpers';
import { Pickler } from './models-pickle-writer';

const isFormat = (re: RegExp) => (e: unknown) => e instanceof FaceG2EError && e.code === 'E_FORMAT' && re.test(e.message);

function npy(descr: string, shape: number[], data: Uint8Array, version = 1, fortran = false): Uint8Array {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pre = version === 1 ? 10 : 12;
  while ((pre + h.length + 1) % 64) h += ' ';
  h += '\n';
  const out = new Uint8Array(pre + h.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(Buffer.from(h, 'latin1'), pre);
  out.set(data, pre + h.length);
  return out;
}
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

test('npy: v1/v2/v3 headers, float16/32/64, ints, Fortran order, big-endian, truncation', () => {
  const f = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const a = parseNpy(npy('<f4', [2, 3], bytesOf(f)), 'a.npy');
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(Array.from(a.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  const h = parseNpy(npy('<f2', [6], bytesOf(float32ToFloat16(f)), 2), 'h.npy');
  assert.equal(h.dtype, 'f2');
  assert.ok(h.data instanceof Uint16Array);
  assert.deepEqual(Array.from(float16ToFloat32(h.data as Uint16Array)), [1, 2, 3, 4, 5, 6]);
  const d = parseNpy(npy('<f8', [3], bytesOf(Float64Array.from([0.5, -1, 2])), 3), 'd.npy');
  assert.deepEqual(Array.from(d.data as Float64Array), [0.5, -1, 2]);
  const i = parseNpy(npy('<i8', [2], bytesOf(BigInt64Array.from([5n, -7n]))), 'i.npy');
  assert.deepEqual(Array.from(i.data as BigInt64Array), [5n, -7n]);
  const u = parseNpy(npy('|u1', [3], Uint8Array.from([1, 2, 255])), 'u.npy');
  assert.deepEqual(Array.from(u.data as Uint8Array), [1, 2, 255]);
  // Fortran order [2,3]: column-major storage of [[1,2,3],[4,5,6]] is 1,4,2,5,3,6
  const fo = parseNpy(npy('<f4', [2, 3], bytesOf(Float32Array.from([1, 4, 2, 5, 3, 6])), 1, true), 'fo.npy');
  assert.deepEqual(Array.from(fo.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  const be = new DataView(new ArrayBuffer(8));
  be.setInt32(0, 7, false);
  be.setInt32(4, -3, false);
  assert.deepEqual(Array.from(parseNpy(npy('>i4', [2], new Uint8Array(be.buffer)), 'be.npy').data as Int32Array), [7, -3]);
  assert.throws(() => parseNpy(npy('<f4', [2, 3], bytesOf(f)).subarray(0, 140), 't.npy'), isFormat(/^t\.npy: truncated data: shape \[2, 3\]/));
  assert.throws(() => parseNpy(Buffer.from('hello world, not numpy'), 'x.npy'), isFormat(/x\.npy: not a \.npy file/));
  assert.throws(() => parseNpy(npy('<c16', [1], new Uint8Array(16)), 'c.npy'), isFormat(/unsupported dtype '<c16'/));
});

test('float16 conversion is exact on representable values and rounds to nearest even', () => {
  for (const x of [0, -0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, 0.333251953125]) assert.equal(halfToFloat(floatToHalf(x)), x);
  assert.equal(halfToFloat(floatToHalf(1 + 2 ** -11)), 1); // tie → even
  assert.equal(halfToFloat(floatToHalf(1 + 3 * 2 ** -11)), 1 + 2 ** -9);
  assert.equal(halfToFloat(floatToHalf(1e6)), Infinity);
  assert.ok(Number.isNaN(halfToFloat(floatToHalf(NaN))));
  // every half value round-trips
  for (let h = 0; h < 65536; h++) {
    const x = halfToFloat(h);
    if (!Number.isNaN(x)) assert.equal(floatToHalf(x), h);
  }
});

test('safetensors: round trip, natural alignment, no holes, strict validation', async () => {
  const tensors = new Map([
    ['b', { dtype: 'U8' as const, shape: [3], data: Uint8Array.from([1, 2, 3]) }],
    ['a', { dtype: 'F32' as const, shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
    ['h', { dtype: 'F16' as const, shape: [1], data: Uint16Array.from([floatToHalf(1.5)]) }],
    ['l', { dtype: 'I64' as const, shape: [1], data: BigInt64Array.from([-9n]) }],
  ]);
  const bytes = Buffer.concat(serializeSafetensors(tensors, { k: 'v' }));
  const hlen = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + hlen) % 8, 0, 'data section starts 8-aligned');
  const header = JSON.parse(bytes.subarray(8, 8 + hlen).toString());
  const spans = Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets).sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < spans.length; i++) assert.equal(spans[i][0], spans[i - 1][1], 'contiguous');
  const back = parseSafetensors(bytes, 'm.safetensors');
  assert.deepEqual(back.metadata, { k: 'v' });
  assert.deepEqual(Array.from(back.tensors.get('a')!.data as Float32Array), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(back.tensors.get('b')!.data as Uint8Array), [1, 2, 3]);
  assert.equal(halfToFloat((back.tensors.get('h')!.data as Uint16Array)[0]), 1.5);
  assert.deepEqual(Array.from(back.tensors.get('l')!.data as BigInt64Array), [-9n]);

  const d = tmpDir();
  await writeSafetensors(path.join(d, 'x.safetensors'), tensors);
  assert.equal((await readSafetensors(path.join(d, 'x.safetensors'))).tensors.size, 4);

  for (let cut = 0; cut < bytes.length; cut += 7) {
    assert.throws(() => parseSafetensors(bytes.subarray(0, cut), 't.safetensors'), isFormat(/^t\.safetensors: /), `cut at ${cut}`);
  }
  assert.throws(() => parseSafetensors(Buffer.concat([bytes, Buffer.from('xx')]), 'p.st'), isFormat(/trailing bytes/));
  const mk = (h: object, data = 0) => {
    const j = Buffer.from(JSON.stringify(h));
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    return Buffer.concat([n, j, Buffer.alloc(data)]);
  };
  assert.throws(() => parseSafetensors(mk({ a: { dtype: 'F99', shape: [1], data_offsets: [0, 4] } }, 4), 'f.st'), isFormat(/unsupported dtype "F99"/));
  assert.throws(() => parseSafetensors(mk({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), 'f.st'), isFormat(/4 bytes of data for shape \[2\]/));
  assert.throws(() => parseSafetensors(mk({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, 6), 'f.st'), isFormat(/overlap/));
  assert.throws(() => parseSafetensors(mk({ __metadata__: { a: 1 } }), 'f.st'), isFormat(/__metadata__\.a must be a string/));
  assert.throws(() => parseSafetensors(mk([1, 2] as unknown as object), 'f.st'), isFormat(/not a JSON object/));
});

test('pickle: FLAME-style Python-2 pickle with numpy arrays, chumpy Ch and scipy csc_matrix', () => {
  const p = new Pickler();
  const v = Float64Array.from([0, 1, 2, 3, 4, 5]);
  p.dictStart();
  p.key('v');
  p.ndarray('<f8', [2, 3], bytesOf(v));
  p.key('ch');
  p.chumpy(() => p.ndarray('<f4', [3], bytesOf(Float32Array.from([7, 8, 9]))));
  p.key('fort');
  p.ndarray('<f8', [2, 3], bytesOf(Float64Array.from([0, 3, 1, 4, 2, 5])), true);
  p.key('sp');
  // 2x3 csc: [[1,0,2],[0,3,0]]
  p.cscMatrix([2, 3], Float64Array.from([1, 3, 2]), Int32Array.from([0, 1, 0]), Int32Array.from([0, 1, 2, 3]));
  p.key('n');
  p.int(-5);
  p.key('s');
  p.str('lbs');
  p.key('big');
  p.int(4294967295);
  const obj = unpickle(p.finish(), 'x.pkl') as Map<string, unknown>;
  assert.ok(obj instanceof Map);
  const a = obj.get('v') as NdArray;
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual(Array.from(a.toFloat64()), [0, 1, 2, 3, 4, 5]);
  assert.ok(obj.get('ch') instanceof PyObject);
  assert.deepEqual(Array.from(asArray(obj.get('ch'), 'ch', 'x.pkl').toFloat64()), [7, 8, 9]);
  assert.deepEqual(Array.from((obj.get('fort') as NdArray).toFloat64()), [0, 1, 2, 3, 4, 5]);
  const m = asDenseMatrix(obj.get('sp'), 'sp', 'x.pkl');
  assert.deepEqual([m.rows, m.cols, ...m.data], [2, 3, 1, 0, 2, 0, 3, 0]);
  assert.equal(obj.get('n'), -5);
  assert.equal(String(obj.get('s')), 'lbs');
  assert.equal(obj.get('big'), 4294967295);
  const bytes = p.finish();
  assert.throws(() => unpickle(bytes.subarray(0, bytes.length - 10), 't.pkl'), isFormat(/^t\.pkl: /));
  assert.throws(() => unpickle(Buffer.from('\x80\x02garbage'), 'g.pkl'), isFormat(/g\.pkl/));
});

test('MAT v5 (plain and compressed) and v7.3 (HDF5) read into row-major arrays', async () => {
  const d = tmpDir();
  const vars = [
    { name: 'A', dims: [2, 3], rowMajor: [1, 2, 3, 4, 5, 6] },
    { name: 'b', dims: [1, 4], rowMajor: [9, 8, 7, 6] },
  ];
  const plain = formatMatV5(vars);
  fs.writeFileSync(path.join(d, 'p.mat'), plain);
  const r = await readMat(path.join(d, 'p.mat'));
  assert.deepEqual(r.get('A'), { dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
  assert.deepEqual(r.get('b'), { dims: [1, 4], data: Float64Array.from([9, 8, 7, 6]) });
  // compress each top-level element (miCOMPRESSED = 15)
  const parts: Buffer[] = [plain.subarray(0, 128)];
  let p = 128;
  while (p < plain.length) {
    const n = plain.readUInt32LE(p + 4);
    const z = deflateSync(plain.subarray(p, p + 8 + n));
    const h = Buffer.alloc(8);
    h.writeUInt32LE(15, 0);
    h.writeUInt32LE(z.length, 4);
    parts.push(h, z);
    p += 8 + n;
  }
  fs.writeFileSync(path.join(d, 'z.mat'), Buffer.concat(parts));
  assert.deepEqual((await readMat(path.join(d, 'z.mat'))).get('A'), { dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
  // v7.3 is HDF5 with MATLAB's dims reversed (h5wasm cannot write MATLAB's 512-byte user block, so the
  // file is bare HDF5, which readMat accepts too)
  const f73 = path.join(d, 'h.mat');
  await writeHdf5(f73, [{ path: 'A', data: Float64Array.from([1, 4, 2, 5, 3, 6]), shape: [3, 2] }]);
  assert.deepEqual((await readMat(f73)).get('A'), { dims: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) });
  // truncated / foreign
  fs.writeFileSync(path.join(d, 't.mat'), plain.subarray(0, plain.length - 20));
  await assert.rejects(readMat(path.join(d, 't.mat')), isFormat(/t\.mat: truncated MAT element/));
  fs.writeFileSync(path.join(d, 'f.mat'), 'not a mat file at all');
  await assert.rejects(readMat(path.join(d, 'f.mat')), isFormat(/f\.mat: not a MATLAB \.mat file/));
});
