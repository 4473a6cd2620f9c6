/**
 * Atomic output files. Every output goes to a temporary file in its destination's folder, is flushed to disk
 * (fsync) and renamed over the destination; on any error the temporary file is removed. A reader (or a crash)
 * never sees a half-written output.
 *
 * - `writeAtomic(dest, produce)`: one file whose bytes a producer streams in (`sink.write(chunk)`);
 * - `OutputBatch` / `withOutputBatch(dir, fn)`: several files that appear together: each is staged as a
 *   temporary file, and only when all of them are written are they renamed into place (mesh.obj + mesh.mtl +
 *   texture.png: no OBJ pointing at a missing texture). If anything fails, every staged file is removed.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FaceG2EError } from '../errors';

export type Chunk = string | ArrayBufferView;

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

function ioError(dest: string, e: unknown): FaceG2EError {
  if (e instanceof FaceG2EError) return e;
  const err = e as NodeJS.ErrnoException;
  return new FaceG2EError('E_IO', `cannot write ${dest}: ${err?.code ? `${err.code}: ` : ''}${err?.message ?? String(e)}`, { cause: e });
}

function bytesOf(c: Chunk): Uint8Array {
  return typeof c === 'string' ? Buffer.from(c, 'utf8') : new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
}

/** Flush a folder's entries (the renames) to disk; best effort (some file systems refuse). */
async function syncDir(dir: string): Promise<void> {
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
async function stage(dest: string, produce: (sink: AtomicSink) => Promise<void> | void): Promise<string> {
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

/**
 * Write a file atomically. `data` is the content (chunks written in order) or a producer that streams it into a
 * sink; if the producer throws, nothing appears at `dest` and the temporary file is removed.
 */
export async function writeAtomic(dest: string, data: Chunk | Chunk[] | ((sink: AtomicSink) => Promise<void> | void)): Promise<void> {
  const produce =
    typeof data === 'function'
      ? data
      : async (sink: AtomicSink) => {
          for (const c of Array.isArray(data) ? data : [data]) await sink.write(c);
        };
  const tmp = await stage(dest, produce);
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(dest, e);
  }
  await syncDir(path.dirname(dest));
}

/** A set of files that appear together (see the module comment). Use through `withOutputBatch`. */
export class OutputBatch {
  private readonly staged: Array<{ tmp: string; dest: string }> = [];
  private done = false;
  constructor(readonly dir: string) {}

  /** Stage `name` (relative to the batch folder, or absolute). */
  async add(name: string, data: Chunk | Chunk[] | ((sink: AtomicSink) => Promise<void> | void)): Promise<string> {
    if (this.done) throw new FaceG2EError('E_INTERNAL', 'OutputBatch.add after commit/abort');
    const dest = path.resolve(this.dir, name);
    const produce =
      typeof data === 'function'
        ? data
        : async (sink: AtomicSink) => {
            for (const c of Array.isArray(data) ? data : [data]) await sink.write(c);
          };
    const tmp = await stage(dest, produce);
    this.staged.push({ tmp, dest });
    return dest;
  }

  /** Rename every staged file into place. */
  async commit(): Promise<string[]> {
    if (this.done) throw new FaceG2EError('E_INTERNAL', 'OutputBatch committed twice');
    this.done = true;
    const out: string[] = [];
    try {
      for (const s of this.staged) {
        await fsp.rename(s.tmp, s.dest);
        out.push(s.dest);
      }
    } catch (e) {
      await Promise.all(this.staged.map((s) => fsp.rm(s.tmp, { force: true }).catch(() => undefined)));
      throw ioError(this.staged[out.length]?.dest ?? this.dir, e);
    }
    for (const d of new Set(this.staged.map((s) => path.dirname(s.dest)))) await syncDir(d);
    return out;
  }

  /** Remove every staged file. */
  async abort(): Promise<void> {
    this.done = true;
    await Promise.all(this.staged.map((s) => fsp.rm(s.tmp, { force: true }).catch(() => undefined)));
  }
}

/** Run `fn` with a batch in `dir` (created if missing); commit when it returns, abort when it throws. */
export async function withOutputBatch<T>(dir: string, fn: (batch: OutputBatch) => Promise<T>): Promise<{ result: T; files: string[] }> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    throw ioError(dir, e);
  }
  const batch = new OutputBatch(dir);
  let result: T;
  try {
    result = await fn(batch);
  } catch (e) {
    await batch.abort();
    throw e;
  }
  const files = await batch.commit();
  return { result, files };
}
