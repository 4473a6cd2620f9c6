/**
 * `faceg2e-native engines build|info`: build TensorRT plans from an exported ONNX folder, and report what a
 * manifest folder holds. See docs/tensorrt.md.
 */
import type { CommandModule, Argv } from 'yargs';
import { FaceG2EError } from '../errors';
import { buildEngines, inspectEngineFolder } from '../engines';

interface BuildArgs {
  onnx: string;
  out: string;
  resolution: string[];
  batch: number;
  'max-batch'?: number;
  'min-batch': number;
  engines?: string;
  'workspace-gib': number;
  'opt-level': number;
  force: boolean;
}

export function parseResolution(s: string): [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(String(s).trim());
  if (!m) throw new FaceG2EError('E_INVALID_ARGUMENT', `--resolution: expected HEIGHT or HEIGHTxWIDTH (e.g. 512 or 512x768), got "${s}"`);
  const h = Number(m[1]);
  const w = m[2] ? Number(m[2]) : h;
  if (h < 64 || w < 64 || h > 4096 || w > 4096) throw new FaceG2EError('E_INVALID_ARGUMENT', `--resolution: ${h}x${w} is outside 64..4096`);
  return [h, w];
}

const buildCommand: CommandModule<object, BuildArgs> = {
  command: 'build',
  describe: 'Build TensorRT plans (fp16, strongly typed) from an exported ONNX folder; plans are cached by TensorRT version, GPU and shapes',
  builder: (y: Argv<object>) =>
    y
      .option('onnx', { type: 'string', demandOption: true, describe: 'Folder with the ONNX files and faceg2e-engines.json (from tools/export/)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output folder for the plans and the built manifest' })
      .option('resolution', { type: 'string', array: true, default: ['512'], describe: 'Image resolution(s) the profiles cover: 512 or 512x768; repeatable, the first is the optimum' })
      .option('batch', { type: 'number', default: 1, describe: 'Views per call the profiles are optimised for (the CFG batch is twice this)' })
      .option('min-batch', { type: 'number', default: 1, describe: 'Smallest views per call' })
      .option('max-batch', { type: 'number', describe: 'Largest views per call (default: --batch)' })
      .option('engines', { type: 'string', describe: 'Comma-separated subset (default: every engine in the manifest)' })
      .option('workspace-gib', { type: 'number', default: 8, describe: 'Builder workspace limit in GiB' })
      .option('opt-level', { type: 'number', default: 3, describe: 'TensorRT builder optimisation level 0..5' })
      .option('force', { type: 'boolean', default: false, describe: 'Rebuild plans even when a cached plan matches' })
      .example('$0 engines build --onnx models/sd15-onnx --out models/sd15-trt --resolution 512 --batch 4', 'Build every engine for 512×512 and 1..4 views') as unknown as Argv<BuildArgs>,
  handler: async (a) => {
    const res = await buildEngines({
      onnx: a.onnx,
      out: a.out,
      resolutions: a.resolution.map(parseResolution),
      batch: a.batch,
      minBatch: a['min-batch'],
      maxBatch: a['max-batch'] ?? a.batch,
      engines: a.engines ? a.engines.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
      workspaceBytes: Math.round(a['workspace-gib'] * 2 ** 30),
      optLevel: a['opt-level'],
      force: a.force,
      onProgress: (p) => process.stderr.write(`[${p.engine}] ${p.message}\n`),
    });
    process.stdout.write(`built: ${res.built.join(', ') || 'none'}; reused: ${res.reused.join(', ') || 'none'}\nmanifest: ${res.manifestFile}\n`);
  },
};

const infoCommand: CommandModule<object, { dir: string; json: boolean }> = {
  command: 'info <dir>',
  describe: 'Validate a faceg2e-engines.json folder and report which engines, ONNX files and plans are there or missing',
  builder: (y: Argv<object>) =>
    y.positional('dir', { type: 'string', demandOption: true, describe: 'Folder with faceg2e-engines.json' }).option('json', { type: 'boolean', default: false }) as unknown as Argv<{ dir: string; json: boolean }>,
  handler: (a) => {
    const r = inspectEngineFolder(a.dir);
    if (a.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    } else {
      const lines = [`${r.file}: valid manifest (${r.manifest.model.id})`];
      for (const e of r.engines) {
        const parts: string[] = [];
        if (e.onnx) parts.push(`onnx ${e.onnx.present ? 'ok' : 'MISSING'}`);
        if (e.plan) parts.push(`plan ${e.plan.present ? `ok (${(e.plan.bytes / 2 ** 20).toFixed(1)} MiB)` : 'MISSING'}`);
        lines.push(`  ${e.name.padEnd(18)} ${parts.join(', ')}`);
      }
      if (r.manifest.build) lines.push(`  built with TensorRT ${r.manifest.build.tensorrt} on ${r.manifest.build.gpu.name} (sm_${r.manifest.build.gpu.computeCapability.replace('.', '')})`);
      if (r.compatible) lines.push(r.compatible.ok ? '  compatible with this machine' : `  NOT usable here: ${r.compatible.reason}`);
      for (const m of r.missing) lines.push(`  missing: ${m}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    process.exitCode = r.missing.length === 0 && (r.compatible === null || r.compatible.ok) ? 0 : 1;
  },
};

export const enginesCommand: CommandModule<object, object> = {
  command: 'engines <command>',
  describe: 'Build and inspect the TensorRT diffusion engines (text encoder, UNet, ControlNets, VAE)',
  builder: (y) => y.command(buildCommand as CommandModule<object, any>).command(infoCommand as CommandModule<object, any>).demandCommand(1, 'Name an engines command: build or info'),
  handler: () => {},
};
