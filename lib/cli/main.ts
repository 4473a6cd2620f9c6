/**
 * The `faceg2e-native` command line (yargs). Each command lives in its own module and exports a yargs
 * CommandModule; errors are printed as one clear paragraph (no stack trace) with the error code, and the
 * exit status is non-zero.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { FaceG2EError, fromNative } from '../errors';
import { doctorCommand } from './doctor';
import { renderCommand } from './render';
import { modelsCommand } from './models';
import { enginesCommand } from './engines';
import { runCommand } from './run';

export const commands: CommandModule<any, any>[] = [runCommand, doctorCommand, renderCommand, modelsCommand, enginesCommand];

/** A command-line usage error (exit status 2). */
class UsageError extends Error {}

/** Print an error the way every command does, and return the exit code. */
export function reportError(e: unknown): number {
  const err = e instanceof FaceG2EError ? e : fromNative(e);
  process.stderr.write(`faceg2e-native: error ${err.code}: ${err.message}\n`);
  for (const d of err.details) process.stderr.write(`  - ${d.path}: ${d.message}\n`);
  if (err.code === 'E_INTERNAL' && process.env.FACEG2E_DEBUG) process.stderr.write(`${(err.cause as Error)?.stack ?? err.stack}\n`);
  return 1;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const parser = yargs(hideBin(argv))
    .scriptName('faceg2e-native')
    .usage('$0 <command> [options]\n\nText-guided 3D head synthesis (FaceG2E) on a CUDA core.')
    .strict()
    .demandCommand(1, 'Name a command: run, doctor, render, models or engines (see --help).')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
  for (const c of commands) parser.command(c);
  try {
    await parser.parseAsync();
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`faceg2e-native: ${e.message}\nRun with --help for usage.\n`);
      return 2;
    }
    return reportError(e);
  }
  return (process.exitCode as number | undefined) || 0;
}
