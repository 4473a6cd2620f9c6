/**
 * `faceg2e-native run config.json [--out DIR] [--seed N] [--device cuda|cpu] [--resume]`: the text-to-head job.
 * Progress: a bar with ETA on a TTY, JSON lines otherwise. Ctrl-C finishes the current iteration, writes a
 * checkpoint into the output folder and exits 130; `--resume` continues from it.
 */
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig, CLI_CONFIG_OPTIONS, type CliConfigArgs } from '../config';
import { checkOutputs, writeRunOutputs, writeAtomic } from '../outputs';
import { createProgressReporter } from './progress';
import { generate, deviceRecord, RunCancelledError } from '../pipeline';
import { readCheckpoint, writeCheckpoint, removeCheckpoint } from '../checkpoint';
import { FaceG2EError, fromNative } from '../errors';
import { collectVersions } from '../outputs/run-json';

interface RunArgs extends CliConfigArgs {
  config: string;
  resume: boolean;
  progress: 'auto' | 'bar' | 'json' | 'none';
}

export async function runCommandHandler(args: RunArgs): Promise<number> {
  const startedAt = new Date();
  const cfg = loadConfig({ configPath: args.config, cli: args });
  const outDir = path.resolve(cfg.output.dir);
  const checkpoint = args.resume ? await readCheckpoint(outDir, cfg) : undefined;
  checkOutputs(cfg.output);
  const reporter = createProgressReporter({ mode: args.progress });
  const ac = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      reporter.log('interrupted: finishing the current iteration and writing a checkpoint (Ctrl-C again to quit at once)', 'warn');
      ac.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  try {
    const result = await generate(cfg, {
      signal: ac.signal,
      checkpoint,
      onProgress: (p) =>
        reporter.update({
          phase: p.phase,
          iteration: p.iteration,
          total: p.total,
          metrics: { t: p.timestep, ...(p.targetMse !== null ? { mse: p.targetMse } : p.loss !== null ? { loss: p.loss } : {}) },
        }),
    });
    const finishedAt = new Date();
    const files = await writeRunOutputs(cfg.output, {
      mesh: result.mesh,
      texture: result.texture,
      coefficients: result.coefficients,
      previews: result.previews,
      turntable: result.turntable,
      glb: { scale: result.model.metresPerUnit },
      objComment: `faceg2e-native: ${cfg.prompt}`,
      run: {
        status: 'ok',
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
        config: cfg,
        versions: collectVersions(),
        device: deviceRecord(result.device),
        phases: {
          geometry: cfg.geometry.enabled
            ? { iterations: cfg.geometry.iterations, seconds: result.timings.geometryMs / 1000, itPerSecond: cfg.geometry.iterations / Math.max(1e-9, result.timings.geometryMs / 1000), metrics: { ...result.metrics.geometry } }
            : undefined,
          texture: cfg.texture.enabled
            ? { iterations: cfg.texture.iterations, seconds: result.timings.textureMs / 1000, itPerSecond: cfg.texture.iterations / Math.max(1e-9, result.timings.textureMs / 1000), metrics: { ...result.metrics.texture } }
            : undefined,
        },
        extras: {
          metrics: result.metrics,
          timings: result.timings,
          ...(result.profile ? { profile: result.profile } : {}),
          ...(checkpoint ? { resumedFrom: { phase: checkpoint.phase, iteration: checkpoint.iteration } } : {}),
        },
      },
    });
    if (result.profile) files.push(await writeProfile(outDir, result.profile, reporter.mode !== 'json'));
    removeCheckpoint(outDir);
    reporter.finish({ outputDir: outDir, files });
    return 0;
  } catch (e) {
    if (e instanceof RunCancelledError) {
      const file = await writeCheckpoint(outDir, cfg, e.checkpoint);
      reporter.fail({ code: e.code, message: `${e.message}; checkpoint written to ${file}; continue with --resume` });
      return 130;
    }
    const err = e instanceof FaceG2EError ? e : fromNative(e);
    reporter.fail({ code: err.code, message: err.message });
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** `--profile`: profile.json (per-op mean/total milliseconds and counts) and, on a terminal, a table of the top ops. */
async function writeProfile(outDir: string, profile: NonNullable<Awaited<ReturnType<typeof generate>>['profile']>, print: boolean): Promise<string> {
  const rows = Object.entries(profile).sort((a, b) => b[1].totalMs - a[1].totalMs);
  const file = path.join(outDir, 'profile.json');
  await writeAtomic(file, JSON.stringify(Object.fromEntries(rows), null, 2) + '\n');
  if (print) {
    const lines = ['op                                   calls    mean ms   total ms'];
    for (const [name, s] of rows.slice(0, 25)) lines.push(`${name.padEnd(34)} ${String(s.count).padStart(7)} ${s.meanMs.toFixed(4).padStart(10)} ${s.totalMs.toFixed(1).padStart(10)}`);
    process.stderr.write(lines.join('\n') + '\n');
  }
  return file;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <config>',
  describe: 'Run the text-to-head job described by a config file (see examples/ and docs/config.md)',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'The run config (JSON; // comments allowed)' })
      .options(CLI_CONFIG_OPTIONS)
      .option('resume', { type: 'boolean', default: false, describe: 'Continue an interrupted run from the checkpoint in the output folder' })
      .option('progress', { choices: ['auto', 'bar', 'json', 'none'] as const, default: 'auto' as const, describe: 'Progress display: a bar on a TTY, JSON lines otherwise' })
      .example('$0 run examples/reconstruct-ict.json --device cpu --out /tmp/rec', 'Reconstruct a known ICT head with the target denoiser')
      .example('$0 run examples/head.json --seed 7 --set geometry.iterations=300', 'The text-to-head job with overrides') as never,
  handler: async (args) => {
    process.exitCode = await runCommandHandler(args);
  },
};
