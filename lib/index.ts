/**
 * faceg2e-native: text-guided 3D head synthesis (FaceG2E) with a CUDA core.
 *
 *   import { generate, doctorReport, cudaStatus } from 'faceg2e-native';
 */
export { FaceG2EError, isFaceG2EError, ERROR_CODES, type ErrorCode, type ErrorDetail } from './errors';
export { cudaStatus, cudaAvailable, resolveDevice, type CudaStatus, type GpuInfo, type DeviceName } from './device';
export * as rng from './rng';
export { RngStream, RngSequence } from './rng';
export { doctorReport, type DoctorReport, type TensorRTStatus } from './cli/doctor';
export {
  readManifest, validateManifest, buildEngines, inspectEngineFolder, tensorrtInfo, targetDenoise, codecEncode, codecDecode, codecInfo, MANIFEST_FILE,
  type EngineManifest, type EngineSpec, type TensorSpec, type BuildOptions, type BuildResult, type TensorRTInfo, type CfgOrder, type CodecName,
} from './engines';
