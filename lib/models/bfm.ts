/**
 * Basel Face Model importer (BFM 2009 / 2017 / 2019 HDF5, statismo layout): shape/model/{mean, pcaBasis,
 * pcaVariance}, shape/representer/cells, optional expression/model/* and color/model/*. Units: millimetres.
 * pcaBasis columns are orthonormal, so each basis row is stored multiplied by sqrt(pcaVariance): a
 * coefficient of 1 is one standard deviation.
 */
import { FaceG2EError } from '../errors';
import { readObj, triangulate } from '../io/obj';
import type { HeadModel, ModelColor } from './format';
import { baseModel, basisToHalf, noUvs, uvFromTemplate } from './common';
import { openHdf5, type H5Array, type H5Reader } from './hdf5';

export interface BfmImportOptions {
  uvTemplate?: string;
  name?: string;
}

function pca(h: H5Reader, file: string, group: string, V: number | undefined): { mean: Float64Array; basis: Float64Array; K: number; std: Float64Array } | undefined {
  const mean = h.get(`${group}/model/mean`);
  if (!mean) return undefined;
  const basis = h.get(`${group}/model/pcaBasis`);
  const variance = h.get(`${group}/model/pcaVariance`);
  if (!basis || !variance) throw new FaceG2EError('E_FORMAT', `${file}: ${group}/model has a mean but no pcaBasis/pcaVariance`);
  const n = mean.data.length;
  if (n % 3 !== 0 || (V !== undefined && n !== 3 * V)) throw new FaceG2EError('E_FORMAT', `${file}: ${group}/model/mean has ${n} values, expected 3*V${V !== undefined ? ` = ${3 * V}` : ''}`);
  if (basis.shape.length !== 2 || basis.shape[0] !== n) throw new FaceG2EError('E_FORMAT', `${file}: ${group}/model/pcaBasis has shape [${basis.shape.join(', ')}], expected [${n}, K]`);
  const K = basis.shape[1];
  if (variance.data.length !== K) throw new FaceG2EError('E_FORMAT', `${file}: ${group}/model/pcaVariance has ${variance.data.length} values, expected ${K}`);
  const f64 = (a: H5Array) => Float64Array.from(a.data as ArrayLike<number>);
  const v = f64(variance);
  const std = v.map((x) => Math.sqrt(Math.max(0, x)));
  return { mean: f64(mean), basis: f64(basis), K, std };
}

export async function importBfm(file: string, options: BfmImportOptions = {}): Promise<HeadModel> {
  const h = await openHdf5(file, 'a Basel Face Model (HDF5)');
  try {
    const shape = pca(h, file, 'shape', undefined);
    if (!shape) throw new FaceG2EError('E_FORMAT', `${file}: no shape/model/mean (is this a Basel Face Model h5 file?)`);
    const V = shape.mean.length / 3;
    const cells = h.get('shape/representer/cells') ?? h.get('representer/cells');
    if (!cells || cells.shape.length !== 2 || (cells.shape[0] !== 3 && cells.shape[1] !== 3)) throw new FaceG2EError('E_FORMAT', `${file}: shape/representer/cells missing or not [3, T]`);
    const colMajor = cells.shape[0] === 3; // statismo stores [3, T]; accept [T, 3] too
    const T = colMajor ? cells.shape[1] : cells.shape[0];
    const tri = new Uint32Array(T * 3);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < 3; k++) {
        const x = Number(colMajor ? cells.data[k * T + t] : cells.data[t * 3 + k]);
        if (!(x >= 0 && x < V)) throw new FaceG2EError('E_FORMAT', `${file}: cells has vertex index ${x} (V = ${V})`);
        tri[3 * t + k] = x;
      }
    }
    const template = Float32Array.from(shape.mean);
    const K = shape.K;
    const identityBasis = basisToHalf(shape.basis, K, V, { k: 1, v: 3 * K, c: K }, shape.std, `${file}: shape/model/pcaBasis`);
    const expr = pca(h, file, 'expression', V);
    let expressionBasis: Uint16Array = new Uint16Array(0);
    let Ke = 0;
    const extra: Record<string, string> = {
      license: 'Basel Face Model: licensed by the University of Basel; see https://faces.dmi.unibas.ch',
      identity_normalisation: 'basis rows are pcaBasis columns times sqrt(pcaVariance); coefficients are in standard deviations',
    };
    if (expr) {
      Ke = expr.K;
      expressionBasis = basisToHalf(expr.basis, Ke, V, { k: 1, v: 3 * Ke, c: Ke }, expr.std, `${file}: expression/model/pcaBasis`);
      let nz = false;
      for (let i = 0; i < template.length; i++) if (expr.mean[i] !== 0) { nz = true; template[i] += expr.mean[i]; }
      if (nz) extra.template_note = 'template = shape mean + expression mean';
    }
    let color: ModelColor | undefined;
    const col = pca(h, file, 'color', V);
    if (col) {
      color = {
        mean: Float32Array.from(col.mean),
        basis: basisToHalf(col.basis, col.K, V, { k: 1, v: 3 * col.K, c: col.K }, col.std, `${file}: color/model/pcaBasis`),
        names: Array.from({ length: col.K }, (_, k) => `color${String(k).padStart(3, '0')}`),
      };
    }
    let uv: Float32Array;
    let uvTri: Uint32Array;
    if (options.uvTemplate) {
      ({ uv, uvTri } = uvFromTemplate(triangulate(await readObj(options.uvTemplate)), tri, V, options.uvTemplate));
      extra.uv_source = options.uvTemplate.split(/[\\/]/).pop()!;
    } else {
      ({ uv, uvTri } = noUvs(T));
      extra.uv_source = 'none';
    }
    const version = V === 53490 ? '2009' : V === 53149 ? '2017' : V === 47439 || V === 58203 ? '2019' : '';
    return {
      name: options.name ?? `Basel Face Model${version ? ` ${version}` : ''}`,
      source: 'bfm',
      ...baseModel('mm'),
      vertexCount: V,
      triangleCount: T,
      uvCount: uv.length / 2,
      template,
      tri,
      uv,
      uvTri,
      identityBasis,
      identityNames: Array.from({ length: K }, (_, k) => `shape${String(k).padStart(3, '0')}`),
      identityScale: new Float32Array(K).fill(1),
      expressionBasis,
      expressionNames: Array.from({ length: Ke }, (_, k) => `expr${String(k).padStart(3, '0')}`),
      expressionScale: new Float32Array(Ke).fill(1),
      expressionKind: 'pca',
      parts: [{ name: 'face', kind: 'geometry', vertices: Uint32Array.from({ length: V }, (_, i) => i) }],
      sourceVertex: Uint32Array.from({ length: V }, (_, i) => i),
      sourceVertexCount: V,
      color,
      extra,
    };
  } finally {
    h.close();
  }
}
