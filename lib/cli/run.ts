/** `faceg2e-native run`: not implemented yet in this build. */
import type { CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';

export const runCommand: CommandModule<object, object> = {
  command: 'run',
  describe: '(run: not available in this build yet)',
  handler: () => {
    throw new FaceG2EError('E_INTERNAL', 'the run command is not implemented in this build');
  },
};
