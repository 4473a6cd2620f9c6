/** Mip-mapped texture minification in the rasteriser (RenderOptions.mip): pyramid, level of detail, trilinear
 * sampling, texel gradients through the pyramid's adjoint, and the unchanged default path. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { render, renderBackward, interpolate, mipPyramid, type RasterMesh, type RenderOptions, type Texture } from '../../lib/raster';
import type { PinholeCamera } from '../../lib/camera';
import { finiteDiff, assertClose, relErr } from '../helpers';
import { identityCamera, bumpGrid, randomTexture, hashRand, boxPyramid, frontQuad, checkerboard, trilinearRef } from './raster_scenes';
import { FaceG2EError } from '../../lib/errors';

function weighted(mesh: RasterMesh, cam: PinholeCamera, o: RenderOptions, w: Float64Array): number {
  const r = render(mesh, [cam], o);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * r.color![i];
  return s;
}

test('mip off: results and gradients are bit-identical to a render without the new options', () => {
  const mesh = bumpGrid(5, 1, 3, 0.2);
  const cam = identityCamera(40, 40, 40, 20.3, 19.6);
  const tex = randomTexture(64, 48, 3, 9);
  const base: RenderOptions = { texture: tex, sh: Float32Array.from([0.5, 0.2, -0.4, 0.3, 0.1, -0.1, 0.2, 0.05, -0.1]) };
  const a = render(mesh, [cam], base);
  const b = render(mesh, [cam], { ...base, mip: false, mipLevels: 3, lodBias: 2 });
  for (const key of ['triId', 'bary', 'depth', 'mask', 'normal', 'depthImage', 'grey', 'color'] as const)
    assert.deepEqual(Buffer.from(b[key]!.buffer), Buffer.from(a[key]!.buffer), `${key} must be bit-identical`);
  const n = 40 * 40;
  const g = { dColor: Float32Array.from(hashRand(n * 3, 1), (v) => v - 0.5), dGrey: Float32Array.from(hashRand(n, 2), (v) => v - 0.5), dMask: Float32Array.from(hashRand(n, 3), (v) => v - 0.5) };
  const ga = renderBackward(mesh, [cam], base, g);
  const gb = renderBackward(mesh, [cam], { ...base, mip: false, lodBias: -1 }, g);
  assert.deepEqual(Buffer.from(gb.dPositions.buffer), Buffer.from(ga.dPositions.buffer));
  assert.deepEqual(Buffer.from(gb.dTexture!.buffer), Buffer.from(ga.dTexture!.buffer));
  // and mip on actually changes this (minified) render
  const m = render(mesh, [cam], { ...base, mip: true });
  assert.ok(m.color!.some((v, i) => Math.abs(v - a.color![i]) > 1e-3), 'mip on must change a minified render');
});

test('mip pyramid levels are the 2x2 box averages (odd sizes: floor and clamped reads), any channel count', () => {
  for (const [w, h, c, maxL] of [[13, 6, 3, 0], [8, 8, 4, 0], [1, 9, 2, 0], [20, 7, 1, 3], [5, 5, 5, 1]] as const) {
    const tex = randomTexture(w, h, c, 31 + w);
    const got = mipPyramid(tex, { mipLevels: maxL });
    const want = boxPyramid(tex, maxL);
    assert.equal(got.length, want.length, `${w}x${h}: level count`);
    assert.deepEqual(got.map((l) => [l.width, l.height]), want.map((l) => [l.width, l.height]), `${w}x${h}: level sizes`);
    got.forEach((l, i) => assertClose(l.data, want[i].data, 2e-7, 1e-6, `${w}x${h}x${c} level ${i}`));
    assert.deepEqual(Array.from(got[0].data), Array.from(tex.data));
  }
  assert.deepEqual(mipPyramid(randomTexture(13, 6, 1)).map((l) => `${l.width}x${l.height}`), ['13x6', '6x3', '3x1', '1x1']);
});

test('mip on, magnified texture (lod <= 0): equal to bilinear, values and gradients', () => {
  const mesh = bumpGrid(4);
  const cam = identityCamera(24, 24, 25);
  const tex = randomTexture(5, 4, 3);
  for (const wrap of ['clamp', 'repeat'] as const) {
    const o: RenderOptions = { texture: tex, wrap, sh: null };
    const a = render(mesh, [cam], o);
    const b = render(mesh, [cam], { ...o, mip: true });
    assertClose(b.color!, a.color!, 1e-7, 0, `color (${wrap})`);
    const g = { dColor: Float32Array.from(hashRand(24 * 24 * 3, 7), (v) => v - 0.5) };
    const ga = renderBackward(mesh, [cam], o, g);
    const gb = renderBackward(mesh, [cam], { ...o, mip: true }, g);
    assertClose(gb.dTexture!, ga.dTexture!, 1e-6, 0, `dTexture (${wrap})`);
    assertClose(gb.dPositions, ga.dPositions, 1e-5, 1e-5, `dPositions (${wrap})`);
  }
});

test('strongly minified checkerboard: mip gives the texture mean, bilinear aliases', () => {
  // a camera-facing quad filling a 32x32 image, UVs spanning [0,1] shifted by half a texel of a 512² 1-texel
  // checkerboard: every pixel centre lands on a texel centre of the same colour (16 texels per pixel)
  const cam = identityCamera(32, 32, 32, 16, 16);
  const quad = frontQuad(0.5 / 512);
  const tex = checkerboard(512, 512);
  const bil = render(quad, [cam], { texture: tex, sh: null, antialias: false, wrap: 'repeat' }).color!;
  const mip = render(quad, [cam], { texture: tex, sh: null, antialias: false, wrap: 'repeat', mip: true }).color!;
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(bil) - 0.5) > 0.45, `bilinear aliases to one colour: mean ${mean(bil)}`);
  for (let i = 0; i < mip.length; i++) assert.ok(Math.abs(mip[i] - 0.5) < 1e-3, `mip pixel ${i}: ${mip[i]}`);
  // capping the levels at 2 (lod clamped to 1): level 1 of a 1-texel checkerboard is already the mean
  const capped = render(quad, [cam], { texture: tex, sh: null, antialias: false, wrap: 'repeat', mip: true, mipLevels: 2 }).color!;
  for (let i = 0; i < capped.length; i++) assert.ok(Math.abs(capped[i] - 0.5) < 1e-3);
  // one level only: plain bilinear
  const one = render(quad, [cam], { texture: tex, sh: null, antialias: false, wrap: 'repeat', mip: true, mipLevels: 1 }).color!;
  assertClose(one, bil, 1e-7, 0, 'mipLevels 1 == bilinear');
});

test('trilinear sampling at lod = log2(texels per pixel) + lodBias matches a TypeScript reference', () => {
  // the quad fills the 32x32 image: du/dx = 1/32, dv/dy = 1/32, so lod = log2(max(W, H) / 32)
  const cam = identityCamera(32, 32, 32, 16, 16);
  const quad = frontQuad(0);
  for (const [w, h, c, bias, maxL, wrap] of [
    [96, 80, 3, 0, 0, 'clamp'],
    [96, 80, 4, -1, 0, 'repeat'],
    [96, 80, 2, 0.3, 0, 'clamp'],
    [200, 130, 3, 0, 3, 'clamp'],
    [1024, 40, 1, 1.5, 0, 'repeat'],
  ] as const) {
    const tex = randomTexture(w, h, c, 40 + w + c);
    const r = render(quad, [cam], { texture: tex, sh: null, antialias: false, wrap, mip: true, lodBias: bias, mipLevels: maxL });
    const uv = interpolate({ attr: quad.uvs!, numAttr: 2, attrTri: quad.uvTri!, triId: r.triId, bary: r.bary });
    const levels = boxPyramid(tex, maxL);
    const lod = Math.min(Math.max(Math.log2(Math.max(w, h) / 32) + bias, 0), levels.length - 1);
    const want = trilinearRef(levels, uv, lod, wrap);
    let covered = 0;
    for (let p = 0; p < 32 * 32; p++) {
      if (r.triId[p] < 0) continue;
      covered++;
      for (let k = 0; k < c; k++)
        assert.ok(Math.abs(r.color![p * c + k] - want[p * c + k]) < 2e-4, `${w}x${h} bias ${bias}: pixel ${p}/${k}: ${r.color![p * c + k]} vs ${want[p * c + k]} (lod ${lod})`);
    }
    assert.equal(covered, 32 * 32);
  }
});

test('texel gradients with mip on (every level pushed back to level 0) match finite differences', () => {
  // a curved grid seen small: the lod varies over the image and spans several levels
  const mesh = bumpGrid(5, 1, 3, 0.4);
  const cam = identityCamera(14, 12, 13);
  for (const [what, tex, o] of [
    ['24x20x4 clamp', randomTexture(24, 20, 4, 21), { wrap: 'clamp' }],
    ['17x9x3 repeat bias 0.7', randomTexture(17, 9, 3, 22), { wrap: 'repeat', lodBias: 0.7 }],
    ['3x23x2 (side of 1 in the pyramid), 3 levels', randomTexture(3, 23, 2, 23), { mipLevels: 3, lodBias: 1.2 }],
  ] as [string, Texture, RenderOptions][]) {
    const opts: RenderOptions = { ...o, texture: tex, sh: null, mip: true };
    const wc = Float64Array.from(hashRand(14 * 12 * tex.channels, 24), (v) => v - 0.5);
    const { dTexture } = renderBackward(mesh, [cam], opts, { dColor: Float32Array.from(wc) });
    const fd = finiteDiff((x) => weighted(mesh, cam, { ...opts, texture: { ...tex, data: Float32Array.from(x) } }, wc), tex.data, 0.25);
    assertClose(dTexture!, fd, 2e-3, 1e-3, `dTexture (${what})`);
    assert.ok(Math.hypot(...dTexture!) > 0.05, `${what}: gradient must be non-zero`);
    // and it differs from the bilinear one (the coarse levels take part)
    const bil = renderBackward(mesh, [cam], { ...opts, mip: false }, { dColor: Float32Array.from(wc) }).dTexture!;
    assert.ok(relErr(dTexture!, bil) > 0.05, `${what}: mip gradient equals the bilinear one`);
  }
});

test('mip on: position gradients through the UVs (lod held fixed) match finite differences where the lod is clamped', () => {
  // a tiny texture seen large: lod <= 0 everywhere, so holding the lod fixed is exact
  const mesh = bumpGrid(5);
  const cam = identityCamera(28, 28, 30);
  const tex = randomTexture(6, 6, 3, 11);
  const o: RenderOptions = { texture: tex, antialias: false, sh: null, mip: true };
  const r0 = render(mesh, [cam], o);
  const W = 28;
  const wc = new Float64Array(W * W * 3);
  const rc = hashRand(W * W * 3, 5);
  for (let p = 0; p < W * W; p++) {
    const x = p % W, y = Math.floor(p / W);
    let inside = true;
    for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
      const xx = x + dx, yy = y + dy;
      if (xx < 0 || yy < 0 || xx >= W || yy >= W || r0.triId[yy * W + xx] < 0) inside = false;
    }
    if (inside) for (let c = 0; c < 3; c++) wc[3 * p + c] = rc[3 * p + c] - 0.5;
  }
  const { dPositions } = renderBackward(mesh, [cam], o, { dColor: Float32Array.from(wc) });
  const fd = finiteDiff((x) => weighted({ ...mesh, positions: Float32Array.from(x) }, cam, o, wc), mesh.positions, 3e-4);
  assert.ok(relErr(dPositions, fd) < 2e-2, `relative error ${relErr(dPositions, fd)}`);
});

test('bad mip options are E_INVALID_ARGUMENT naming the field', () => {
  const mesh = bumpGrid(3);
  const cam = identityCamera(8, 8, 8);
  const bad = (fn: () => unknown, field: string) =>
    assert.throws(fn, (e: unknown) => e instanceof FaceG2EError && e.code === 'E_INVALID_ARGUMENT' && e.message.includes(field));
  const texture = randomTexture(4, 4, 3);
  bad(() => render(mesh, [cam], { texture, mip: true, mipLevels: -1 }), 'mipLevels');
  bad(() => render(mesh, [cam], { texture, mip: true, mipLevels: 40 }), 'mipLevels');
  bad(() => render(mesh, [cam], { texture, mip: true, mipLevels: 1.5 }), 'mipLevels');
  bad(() => render(mesh, [cam], { texture, mip: true, lodBias: Number.NaN }), 'lodBias');
  bad(() => mipPyramid({ data: new Float32Array(5), width: 2, height: 2, channels: 1 }), 'texture');
});
