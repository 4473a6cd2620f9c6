/** Reading whole files with one error shape: E_IO naming the file and the system's reason. */
import * as fsp from 'node:fs/promises';
import { FaceG2EError } from '../errors';

function ioError(file: string, e: unknown): FaceG2EError {
  return new FaceG2EError('E_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
}

/** The bytes of `file`, or E_IO. */
export async function readFileBytes(file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (e) {
    throw ioError(file, e);
  }
}

/** The UTF-8 text of `file`, or E_IO. */
export async function readFileText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    throw ioError(file, e);
  }
}
