/** The GPU suite refuses to pass silently on a machine without a usable GPU. */
import { loadNative, type NativeCore } from '../../lib/native';

export function requireGpu(): void {
  const info = loadNative<NativeCore>().cudaInfo();
  if (!info.gpus.some((g) => g.supported)) {
    const banner = '#'.repeat(78);
    process.stderr.write(
      `\n${banner}\n# GPU SUITE: NO USABLE GPU ON THIS MACHINE\n# ${info.error ?? 'no supported GPU'}\n` +
        `# compiled with CUDA: ${info.compiledWithCuda}; built for: ${info.builtArchitectures || '-'}\n` +
        `# The GPU tests did not run. Run them on a GPU machine (tools/device/README.md).\n${banner}\n\n`,
    );
    throw new Error(`GPU suite needs a GPU: ${info.error ?? 'none supported'}`);
  }
}
