/**
 * Atomic file writes: the data goes to a temporary file in the destination's folder, is flushed, and is
 * renamed over the destination, so readers never see a half-written file and a crash leaves the old file.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FaceG2EError } from '../errors';

export type WriteChunk = string | ArrayBufferView;

function tmpName(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function ioError(dest: string, e: unknown): FaceG2EError {
  if (e instanceof FaceG2EError) return e;
  const err = e as NodeJS.ErrnoException;
  return new FaceG2EError('E_IO', `cannot write ${dest}: ${err?.code ? `${err.code} ` : ''}${err?.message ?? String(e)}`, { cause: e });
}

function toBuf(c: WriteChunk): Uint8Array {
  return typeof c === 'string' ? Buffer.from(c, 'utf8') : new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
}

/** Write `data` (one chunk or a list of chunks, written in order) to `dest` atomically. */
export async function writeFileAtomic(dest: string, data: WriteChunk | WriteChunk[], options: { mode?: number } = {}): Promise<void> {
  const chunks = Array.isArray(data) ? data : [data];
  const tmp = tmpName(dest);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', options.mode ?? 0o644);
    for (const c of chunks) {
      const b = toBuf(c);
      let off = 0;
      while (off < b.byteLength) {
        const { bytesWritten } = await fh.write(b, off, Math.min(b.byteLength - off, 1 << 30));
        off += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, dest);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(dest, e);
  }
}

/** Synchronous twin of writeFileAtomic. */
export function writeFileAtomicSync(dest: string, data: WriteChunk | WriteChunk[], options: { mode?: number } = {}): void {
  const chunks = Array.isArray(data) ? data : [data];
  const tmp = tmpName(dest);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644);
    for (const c of chunks) {
      const b = toBuf(c);
      let off = 0;
      while (off < b.byteLength) off += fs.writeSync(fd, b, off, Math.min(b.byteLength - off, 1 << 30));
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, dest);
  } catch (e) {
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* already failing */ }
    try { fs.rmSync(tmp, { force: true }); } catch { /* ignore */ }
    throw ioError(dest, e);
  }
}
