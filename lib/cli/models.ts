/**
 * `faceg2e-native models`: convert the morphable head models users have (ICT-FaceKit, FLAME, Basel Face
 * Model, HIFI3D++) to the package's single-file model format (docs/model-format.md), and describe such a file.
 *
 *   faceg2e-native models import ict ./ICT-FaceKit/FaceXModel -o ict.safetensors
 *   faceg2e-native models import flame generic_model.pkl --uv-template head_template.obj -o flame.safetensors
 *   faceg2e-native models info ict.safetensors [--json]
 */
import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';
import { loadModel, saveModel, modelInfo, type ModelInfo, type ModelUnits } from '../models/format';
import { importModel, MODEL_KINDS, type ModelKind } from '../models/index';
import { ICT_DEFAULT_PARTS, ICT_PARTS } from '../models/ict';

interface ImportArgs {
  kind: ModelKind;
  source: string;
  output: string;
  parts?: string;
  'uv-template'?: string;
  'identity-modes'?: number;
  units?: ModelUnits;
  name?: string;
  json?: boolean;
}

interface InfoArgs {
  file: string;
  json?: boolean;
}

export function formatInfo(file: string, i: ModelInfo): string {
  const lines = [
    `${file}`,
    `  model:        ${i.name} (imported from ${i.source})`,
    `  units:        ${i.units} (${i.metresPerUnit} m per unit)`,
    `  vertices:     ${i.vertices}  (of ${i.sourceVertexCount} in the source model)`,
    `  triangles:    ${i.triangles}`,
    `  UVs:          ${i.uvs}${i.extra.uv_source === 'none' ? ' (none: the source has no UVs; import with --uv-template)' : ''}`,
    `  identity:     ${i.identityModes} modes`,
    `  expression:   ${i.expressionModes} modes (${i.expressionKind})${i.expressionKind === 'blendshape' && i.expressionModes ? `: ${i.expressionNames.slice(0, 6).join(', ')}${i.expressionModes > 6 ? ', ...' : ''}` : ''}`,
    `  parts:        ${i.parts.map((p) => `${p.name}${p.kind === 'region' ? ' (region)' : ''} ${p.vertices}`).join(', ') || 'none'}`,
    `  landmarks:    ${i.landmarks ? `${i.landmarks.count} (${i.landmarks.scheme}, ${i.landmarks.kind})` : 'none'}`,
    `  skinning:     ${i.skinning ? `${i.skinning.joints.length} joints (${i.skinning.joints.join(', ')}), ${i.skinning.poseBasis} pose-corrective shapes` : 'none'}`,
    `  colour:       ${i.colorModes ? `${i.colorModes} modes` : 'none'}`,
    `  bounds:       [${i.bounds.min.map((x) => x.toFixed(3)).join(', ')}] .. [${i.bounds.max.map((x) => x.toFixed(3)).join(', ')}]`,
  ];
  return lines.join('\n');
}

const importCommand: CommandModule<object, ImportArgs> = {
  command: 'import <kind> <source>',
  describe: 'Convert a morphable model to the faceg2e model file (safetensors)',
  builder: (y: Argv) =>
    y
      .positional('kind', { choices: MODEL_KINDS as ModelKind[], describe: 'source model kind', demandOption: true })
      .positional('source', {
        type: 'string',
        demandOption: true,
        describe:
          'ict: the ICT-FaceKit folder (FaceXModel OBJs, or an arrays bundle with identity_deltas.npy); flame: generic_model.pkl / flame2023.pkl; bfm: model2017-1_bfm_nomouth.h5 (or 2009/2019); hifi3d: the HIFI3D++ .mat',
      })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output model file (.safetensors)' })
      .option('parts', {
        type: 'string',
        describe: `ict: comma-separated parts to keep (default ${ICT_DEFAULT_PARTS.join(',')}; all: ${ICT_PARTS.map((p) => p[0]).join(', ')}; aliases eye_sockets, eyeballs, eyelashes, head, all)`,
      })
      .option('uv-template', { type: 'string', describe: 'flame/bfm: OBJ with the same vertices and UVs (FLAME head_template.obj)' })
      .option('identity-modes', { type: 'number', describe: 'flame: how many shapedirs modes are identity (default 300; the rest are expression)' })
      .option('units', { choices: ['m', 'cm', 'mm'] as ModelUnits[], describe: 'hifi3d: length unit of the file (guessed from the size when omitted)' })
      .option('name', { type: 'string', describe: 'model name stored in the file' })
      .option('json', { type: 'boolean', default: false, describe: 'print the summary of the written model as JSON' })
      .example('$0 models import ict ../shared/models/ict-facekit-light -o ict.safetensors', '')
      .example('$0 models import flame generic_model.pkl --uv-template head_template.obj -o flame2020.safetensors', '') as unknown as Argv<ImportArgs>,
  handler: async (a) => {
    const out = path.resolve(a.output);
    if (a.parts !== undefined && a.kind !== 'ict') throw new FaceG2EError('E_INVALID_ARGUMENT', `--parts applies to ict models only (kind is ${a.kind})`);
    if (a['uv-template'] !== undefined && a.kind !== 'flame' && a.kind !== 'bfm') throw new FaceG2EError('E_INVALID_ARGUMENT', `--uv-template applies to flame and bfm models only (kind is ${a.kind})`);
    if (a['identity-modes'] !== undefined && !(Number.isInteger(a['identity-modes']) && a['identity-modes'] >= 0)) {
      throw new FaceG2EError('E_INVALID_ARGUMENT', `--identity-modes must be a non-negative integer, got ${a['identity-modes']}`);
    }
    if (path.resolve(a.source) === out) throw new FaceG2EError('E_INVALID_ARGUMENT', '--output must differ from the source');
    const model = await importModel(a.kind, a.source, {
      parts: a.parts?.split(','),
      uvTemplate: a['uv-template'],
      identityModes: a['identity-modes'],
      units: a.units,
      name: a.name,
    });
    await saveModel(model, out);
    const info = modelInfo(model);
    if (a.json) process.stdout.write(`${JSON.stringify({ file: out, ...info }, null, 2)}\n`);
    else {
      process.stdout.write(`${formatInfo(out, info)}\n`);
      if (info.extra.uv_source === 'none') process.stderr.write('faceg2e-native: warning: this model has no UVs; texture generation needs them (re-import with --uv-template <obj>).\n');
    }
  },
};

const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info <file>',
  describe: 'Describe a faceg2e model file',
  builder: (y: Argv) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'model file (.safetensors)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON' }) as unknown as Argv<InfoArgs>,
  handler: async (a) => {
    const m = await loadModel(a.file);
    const info = modelInfo(m);
    if (a.json) process.stdout.write(`${JSON.stringify({ file: path.resolve(a.file), ...info }, null, 2)}\n`);
    else process.stdout.write(`${formatInfo(a.file, info)}\n`);
  },
};

export const modelsCommand: CommandModule<object, object> = {
  command: 'models <command>',
  describe: 'Import morphable head models (ICT-FaceKit, FLAME, BFM, HIFI3D++) and inspect model files',
  builder: (y: Argv) =>
    y
      .command(importCommand as unknown as CommandModule<object, object>)
      .command(infoCommand as unknown as CommandModule<object, object>)
      .demandCommand(1, 'Name a models command: import or info (see --help).') as Argv<object>,
  handler: () => undefined,
};
