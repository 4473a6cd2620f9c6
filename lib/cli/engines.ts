/** `faceg2e-native engines`: not implemented yet in this build. */
import type { CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';

export const enginesCommand: CommandModule<object, object> = {
  command: 'engines',
  describe: '(engines: not available in this build yet)',
  handler: () => {
    throw new FaceG2EError('E_INTERNAL', 'the engines command is not implemented in this build');
  },
};
