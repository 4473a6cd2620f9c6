/** `faceg2e-native models`: not implemented yet in this build. */
import type { CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';

export const modelsCommand: CommandModule<object, object> = {
  command: 'models',
  describe: '(models: not available in this build yet)',
  handler: () => {
    throw new FaceG2EError('E_INTERNAL', 'the models command is not implemented in this build');
  },
};
