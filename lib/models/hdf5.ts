/** HDF5 reading through h5wasm (WebAssembly HDF5; works offline in Node). */
import * as fs from 'node:fs';
import { FaceG2EError } from '../errors';
import { importEsm } from './common';

const SIG = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Offset of the HDF5 superblock signature (0, 512, 1024, ...), or -1 when the file is not HDF5. */
export function hdf5SignatureOffset(file: string): number {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const b = Buffer.alloc(8);
    for (let off = 0; off + 8 <= size && off <= 1 << 20; off = off === 0 ? 512 : off * 2) {
      fs.readSync(fd, b, 0, 8, off);
      if (b.equals(SIG)) return off;
    }
    return -1;
  } catch (e) {
    throw new FaceG2EError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface H5Array {
  shape: number[];
  /** Row-major data as stored (HDF5 order). */
  data: Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array | Int8Array | Int16Array | Uint16Array | BigInt64Array | BigUint64Array;
}

export interface H5Reader {
  /** Dataset at a path, or undefined when absent. */
  get(p: string): H5Array | undefined;
  /** A string (or string list) dataset / attribute value, when present. */
  getString(p: string): string | undefined;
  has(p: string): boolean;
  keys(p?: string): string[];
  close(): void;
}

let h5mod: any;
async function h5(): Promise<any> {
  if (!h5mod) {
    const m = await importEsm('h5wasm/node');
    h5mod = m.default ?? m;
    await h5mod.ready;
  }
  return h5mod;
}

/** Open an HDF5 file (MATLAB v7.3 included) for reading; E_FORMAT when it is not HDF5. */
export async function openHdf5(file: string, what = 'an HDF5 file'): Promise<H5Reader> {
  if (!fs.existsSync(file)) throw new FaceG2EError('E_IO', `file not found: ${file}`);
  if (hdf5SignatureOffset(file) < 0) throw new FaceG2EError('E_FORMAT', `${file}: not ${what} (no HDF5 signature)`);
  const lib = await h5();
  let f: any;
  try {
    f = new lib.File(file, 'r');
  } catch (e) {
    throw new FaceG2EError('E_FORMAT', `${file}: HDF5 file could not be opened (truncated or corrupted?): ${(e as Error).message ?? e}`);
  }
  const getObj = (p: string) => {
    try {
      return f.get(p);
    } catch {
      return null;
    }
  };
  return {
    get(p) {
      const d = getObj(p);
      if (!d || d.type !== 'Dataset') return undefined;
      let v: unknown;
      try {
        v = d.value;
      } catch (e) {
        throw new FaceG2EError('E_FORMAT', `${file}: dataset '${p}' could not be read (truncated?): ${(e as Error).message ?? e}`);
      }
      if (!ArrayBuffer.isView(v)) throw new FaceG2EError('E_FORMAT', `${file}: dataset '${p}' is not numeric`);
      return { shape: (d.shape as number[]) ?? [], data: v as H5Array['data'] };
    },
    getString(p) {
      const d = getObj(p);
      if (!d || d.type !== 'Dataset') return undefined;
      const v = d.value;
      if (typeof v === 'string') return v;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.join('\n');
      return undefined;
    },
    has(p) {
      return !!getObj(p);
    },
    keys(p = '/') {
      const g = getObj(p);
      return g && typeof g.keys === 'function' ? (g.keys() as string[]) : [];
    },
    close() {
      try { f.close(); } catch { /* ignore */ }
    },
  };
}

/** Write datasets to a new HDF5 file (for tests and fixtures). Paths like 'shape/model/mean'. */
export async function writeHdf5(file: string, datasets: { path: string; data: ArrayBufferView | string; shape?: number[] }[], userblock = 0): Promise<void> {
  const lib = await h5();
  const f = userblock ? new lib.File(file, 'w', { userblock_size: userblock }) : new lib.File(file, 'w');
  try {
    for (const d of datasets) {
      const parts = d.path.split('/').filter(Boolean);
      let g = f;
      for (let i = 0; i < parts.length - 1; i++) {
        const sub = g.get(parts[i]);
        g = sub ?? g.create_group(parts[i]);
      }
      g.create_dataset({ name: parts[parts.length - 1], data: d.data, shape: d.shape });
    }
  } finally {
    f.close();
  }
}
