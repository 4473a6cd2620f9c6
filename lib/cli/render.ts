/** `faceg2e-native render`: not implemented yet in this build. */
import type { CommandModule } from 'yargs';
import { FaceG2EError } from '../errors';

export const renderCommand: CommandModule<object, object> = {
  command: 'render',
  describe: '(render: not available in this build yet)',
  handler: () => {
    throw new FaceG2EError('E_INTERNAL', 'the render command is not implemented in this build');
  },
};
