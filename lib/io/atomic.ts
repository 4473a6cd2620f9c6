/**
 * Atomic file writes: the data goes to a temporary file in the destination's folder, is flushed (fsync), and is
 * renamed over the destination, so readers never see a half-written file and a crash leaves the old file; on
 * any error the temporary file is removed. lib/outputs/atomic.ts builds multi-file batches on this.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FaceG2EError } from '../errors';

export type Chunk = string | ArrayBufferView;
/** @deprecated alias of Chunk */
export type WriteChunk = Chunk;

/** Where a producer writes its bytes. */
export interface AtomicSink {
  write(chunk: Chunk): Promise<void>;
  /** Bytes written so far. */
  readonly bytesWritten: number;
}

/** Temporary names start with '.' and end with '.tmp', next to the destination. */
export function tempNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** True for a name `tempNameFor` produces (for tests and clean-up). */
export function isTempName(name: string): boolean {
  return /^\..*\.\d+\.[0-9a-f]{8}\.tmp$/.test(path.basename(name));
}

export function ioError(dest: string, e: unknown): FaceG2EError {
  if (e instanceof FaceG2EError) return e;
  const err = e as NodeJS.ErrnoException;
  return new FaceG2EError('E_IO', `cannot write ${dest}: ${err?.code ? `${err.code}: ` : ''}${err?.message ?? String(e)}`, { cause: e });
}

export function bytesOf(c: Chunk): Uint8Array {
  return typeof c === 'string' ? Buffer.from(c, 'utf8') : new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
}

/** Flush a folder's entries (the renames) to disk; best effort (some file systems refuse). */
export async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    /* not supported here */
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Write `produce`'s bytes into a new temporary file next to `dest`, flushed; returns the temporary path. */
export async function stage(dest: string, produce: (sink: AtomicSink) => Promise<void> | void): Promise<string> {
  const tmp = tempNameFor(dest);
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(tmp, 'wx', 0o644);
    const handle = fh;
    let written = 0;
    const sink: AtomicSink = {
      async write(chunk: Chunk) {
        const b = bytesOf(chunk);
        let off = 0;
        while (off < b.byteLength) {
          const { bytesWritten } = await handle.write(b, off, Math.min(b.byteLength - off, 1 << 30));
          off += bytesWritten;
        }
        written += b.byteLength;
      },
      get bytesWritten() {
        return written;
      },
    };
    await produce(sink);
    await fh.sync();
    await fh.close();
    fh = undefined;
    return tmp;
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(dest, e);
  }
}

/** What an atomic write takes: the content (chunks written in order) or a producer that streams it into a sink. */
export type AtomicData = Chunk | Chunk[] | ((sink: AtomicSink) => Promise<void> | void);
/** The producer of `data` (content becomes a producer that writes its chunks in order). */
export function producerOf(data: AtomicData): (sink: AtomicSink) => Promise<void> | void {
  if (typeof data === 'function') return data;
  return async (sink: AtomicSink) => {
    for (const c of Array.isArray(data) ? data : [data]) await sink.write(c);
  };
}

/**
 * Write a file atomically. `data` is the content (chunks written in order) or a producer that streams it into a
 * sink; if the producer throws, nothing appears at `dest` and the temporary file is removed.
 */
export async function writeAtomic(dest: string, data: AtomicData): Promise<void> {
  const tmp = await stage(dest, producerOf(data));
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(dest, e);
  }
  await syncDir(path.dirname(dest));
}

/** Write `data` (one chunk or a list of chunks, written in order) to `dest` atomically. */
export async function writeFileAtomic(dest: string, data: Chunk | Chunk[]): Promise<void> {
  await writeAtomic(dest, data);
}

/** Synchronous twin of writeFileAtomic. */
export function writeFileAtomicSync(dest: string, data: Chunk | Chunk[], options: { mode?: number } = {}): void {
  const chunks = Array.isArray(data) ? data : [data];
  const tmp = tempNameFor(dest);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644);
    for (const c of chunks) {
      const b = bytesOf(c);
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
