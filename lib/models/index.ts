/** Morphable head models: the file format and the importers. */
export * from './format';
export { importIct, ICT_PARTS, ICT_DEFAULT_PARTS, resolveIctParts, type IctImportOptions } from './ict';
export { importFlame, FLAME_JOINTS, type FlameImportOptions } from './flame';
export { importBfm, type BfmImportOptions } from './bfm';
export { importHifi3d, guessUnits, type Hifi3dImportOptions } from './hifi3d';
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors, type StTensor, type StDtype, type StFile } from './safetensors';

import type { HeadModel } from './format';
import { importIct } from './ict';
import { importFlame } from './flame';
import { importBfm } from './bfm';
import { importHifi3d } from './hifi3d';
import type { ModelUnits } from './format';

export type ModelKind = 'ict' | 'flame' | 'bfm' | 'hifi3d';
export const MODEL_KINDS: readonly ModelKind[] = ['ict', 'flame', 'bfm', 'hifi3d'];

export interface ImportOptions {
  parts?: string[];
  uvTemplate?: string;
  identityModes?: number;
  units?: ModelUnits;
  name?: string;
}

/** Import a model of the given kind from its source file or folder. */
export async function importModel(kind: ModelKind, source: string, options: ImportOptions = {}): Promise<HeadModel> {
  switch (kind) {
    case 'ict': return importIct(source, { parts: options.parts });
    case 'flame': return importFlame(source, { uvTemplate: options.uvTemplate, identityModes: options.identityModes, name: options.name });
    case 'bfm': return importBfm(source, { uvTemplate: options.uvTemplate, name: options.name });
    case 'hifi3d': return importHifi3d(source, { units: options.units, name: options.name });
  }
}
