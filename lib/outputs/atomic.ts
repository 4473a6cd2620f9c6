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
import { FaceG2EError } from '../errors';
import { ioError, producerOf, stage, syncDir, type AtomicData } from '../io/atomic';

export { writeAtomic, tempNameFor, isTempName, type AtomicSink, type Chunk } from '../io/atomic';

/** A set of files that appear together (see the module comment). Use through `withOutputBatch`. */
export class OutputBatch {
  private readonly staged: Array<{ tmp: string; dest: string }> = [];
  private done = false;
  constructor(readonly dir: string) {}

  /** Stage `name` (relative to the batch folder, or absolute). */
  async add(name: string, data: AtomicData): Promise<string> {
    if (this.done) throw new FaceG2EError('E_INTERNAL', 'OutputBatch.add after commit/abort');
    const dest = path.resolve(this.dir, name);
    const tmp = await stage(dest, producerOf(data));
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
