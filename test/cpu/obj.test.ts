import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseObj, readObj, triangulate, writeObj, writeMtl, readMtl, formatObj } from '../../lib/io/obj';
import { FaceG2EError } from '../../lib/errors';
import { tmpDir, hasShared, ICT_DIR } from '../helpers';

const isFormat = (re: RegExp) => (e: unknown) => e instanceof FaceG2EError && e.code === 'E_FORMAT' && re.test(e.message);

test('parseObj: quads, polygons, relative indices, groups, materials, normals', () => {
  const m = parseObj(
    [
      'mtllib a.mtl', 'o thing', 'v 0 0 0', 'v 1 0 0', 'v 1 1 0', 'v 0 1 0', 'v 0.5 1.5 0',
      'vt 0 0', 'vt 1 0', 'vt 1 1', 'vt 0 1', 'vn 0 0 1',
      'g top', 'usemtl skin', 'f 1/1/1 2/2/1 3/3/1 4/4/1', '# comment', 'g other', 'usemtl eye',
      'f -2/-1 -3/-2 -1/-1', 'f 1//1 2//1 3//1 4//1 5//1',
    ].join('\n'),
    'mem.obj',
  );
  assert.equal(m.positions.length, 15);
  assert.equal(m.uvs.length, 8);
  assert.deepEqual(Array.from(m.faces.vertexCounts), [4, 3, 5]);
  assert.deepEqual(Array.from(m.faces.positionIndex.subarray(4, 7)), [3, 2, 4]);
  assert.deepEqual(Array.from(m.faces.uvIndex.subarray(4, 7)), [3, 2, 3]);
  assert.deepEqual(Array.from(m.faces.uvIndex.subarray(7)), [-1, -1, -1, -1, -1]);
  assert.deepEqual(Array.from(m.faces.normalIndex!.subarray(0, 4)), [0, 0, 0, 0]);
  assert.equal(m.faces.normalIndex![4], -1);
  assert.deepEqual(m.groups, ['thing', 'top', 'other']);
  assert.deepEqual(Array.from(m.faceGroup!), [1, 2, 2]);
  assert.deepEqual(m.materials, ['skin', 'eye']);
  assert.deepEqual(Array.from(m.faceMaterial!), [0, 1, 1]);
  assert.deepEqual(m.mtllib, ['a.mtl']);

  const t = triangulate(m);
  assert.equal(t.tri.length / 3, 2 + 1 + 3);
  assert.deepEqual(Array.from(t.tri.subarray(0, 6)), [0, 1, 2, 0, 2, 3]);
  assert.deepEqual(Array.from(t.faceOfTriangle), [0, 0, 1, 2, 2, 2]);
  // the polygon without UVs points at an appended (0,0) UV
  assert.equal(t.uvs.length, 10);
  assert.deepEqual(Array.from(t.uvs.subarray(8)), [0, 0]);
  assert.deepEqual(Array.from(t.uvTri.subarray(9)), [4, 4, 4, 4, 4, 4, 4, 4, 4]);
  assert.deepEqual(Array.from(t.tri.subarray(9)), [0, 1, 2, 0, 2, 3, 0, 3, 4]);
});

test('parseObj: malformed input names the file and line', () => {
  assert.throws(() => parseObj('v 0 0 0\nv 1 0 0\nf 1 2\n', 'bad.obj'), isFormat(/^bad\.obj:3: a face needs at least 3 corners/));
  assert.throws(() => parseObj('v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 4\n', 'bad.obj'), isFormat(/bad\.obj:4: position index 4 out of range/));
  assert.throws(() => parseObj('v 0 0 x\n', 'bad.obj'), isFormat(/bad\.obj:1: 'v' component 3/));
  assert.throws(() => parseObj('v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1/9 2 3\n', 'bad.obj'), isFormat(/bad\.obj:4: uv index 9 out of range/));
  assert.throws(() => parseObj('v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 -4 3\n', 'bad.obj'), isFormat(/position index -4 out of range/));
  assert.throws(() => parseObj('hello\n', 'x.obj'), isFormat(/no vertices/));
  assert.throws(() => parseObj('\x00\x01\x02 binary', 'x.bin'), isFormat(/binary data/));
});

test('readObj of a missing file is E_IO', async () => {
  await assert.rejects(readObj('/nonexistent/x.obj'), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_IO' && /x\.obj/.test(e.message));
});

test('writeObj / writeMtl round-trip with separate UV topology and normals', async () => {
  const d = tmpDir();
  const mesh = {
    positions: new Float32Array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0.25]),
    tri: new Uint32Array([0, 1, 2, 0, 2, 3]),
    uvs: new Float32Array([0, 0, 1, 0, 1, 1, 0, 1, 0.5, 0.5]),
    uvTri: new Uint32Array([0, 1, 2, 4, 2, 3]),
    normals: new Float32Array([0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1]),
  };
  await writeObj(path.join(d, 'm.obj'), mesh, { mtllib: 'm.mtl', material: 'head', comment: 'test' });
  await writeMtl(path.join(d, 'm.mtl'), [{ name: 'head', mapKd: 'albedo.png' }]);
  assert.deepEqual(fs.readdirSync(d).sort(), ['m.mtl', 'm.obj'], 'no temporary files are left');
  const back = await readObj(path.join(d, 'm.obj'));
  const t = triangulate(back);
  assert.deepEqual(Array.from(t.positions), Array.from(mesh.positions));
  assert.deepEqual(Array.from(t.tri), Array.from(mesh.tri));
  assert.deepEqual(Array.from(t.uvTri), Array.from(mesh.uvTri));
  assert.deepEqual(Array.from(t.uvs), Array.from(mesh.uvs));
  assert.deepEqual(back.materials, ['head']);
  assert.deepEqual(back.mtllib, ['m.mtl']);
  assert.deepEqual(Array.from(back.faces.normalIndex!), [0, 1, 2, 0, 2, 3]);
  const mtl = await readMtl(path.join(d, 'm.mtl'));
  assert.equal(mtl.get('head')!.mapKd, path.join(d, 'albedo.png'));
  assert.throws(() => formatObj({ positions: mesh.positions, tri: new Uint32Array([0, 1, 7]) }), (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT');
});

test('the ICT neutral mesh parses: 26719 vertices, 28911 UVs, 26384 faces', { skip: !hasShared && 'no ../shared' }, async () => {
  const m = await readObj(path.join(ICT_DIR, 'generic_neutral_mesh.obj'));
  assert.equal(m.positions.length / 3, 26719);
  assert.equal(m.uvs.length / 2, 28911);
  assert.equal(m.faces.vertexCounts.length, 26384);
  const t = triangulate(m);
  let quads = 0;
  for (const n of m.faces.vertexCounts) if (n === 4) quads++;
  assert.equal(t.tri.length / 3, 26384 + quads);
  const mtl = await readMtl(path.join(ICT_DIR, 'ICTFaceModelMaterial.mtl'));
  assert.ok(mtl.has('M_Face'));
});
