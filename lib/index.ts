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
export { ClipTokenizer, clipClean, bytesToUnicode, CLIP_CONTEXT_LENGTH, type EncodePaddedOptions, type DecodeOptions } from './tokenizer';
export * as models from './models/index';
export { loadModel, saveModel, modelInfo, importModel, MODEL_KINDS, type HeadModel, type ModelInfo, type ModelKind } from './models/index';
export { parseObj, readObj, triangulate, readMtl, writeObj, writeMtl, type ObjMesh, type TriangleMesh } from './io/obj';
export { readNpy, float16ToFloat32, float32ToFloat16 } from './io/npy';
export * as sds from './sds';
export { loadSchedulerConfig, NoiseScheduler, Optimizer, type SchedulerConfig } from './sds';
export { MorphModel, evalMorph, morphBackward, vertexNormals, vertexNormalsBackward, coefL2, boundsPenalty, projectBounds, timeMorph, toHalf, fromHalf, floatToHalf, halfToFloat, type MorphModelData, type MorphSkinning, type MorphModelInfo, type MorphCoeffs, type MorphOptions, type MorphGradients, type Bounds, type MorphTiming } from './morph';
export { render, renderBackward, interpolate, interpolateBackward, mipPyramid, defaultSh, shFromDirection, shShade, encodeNormals, type RasterMesh, type Texture, type RenderOptions, type RenderResult, type RenderGradients, type BackwardOptions } from './raster';
export { lookAt, intrinsicsFromFov, meshBounds, orbitCameras, type PinholeCamera, type BoundingBox, type OrbitOptions, type Vec3 } from './camera';
export { writePng, encodePng, readImage, readImageFloat, type ImageData, type FloatImage } from './io/image';
export * from './config';
export * from './outputs';
export { createProgressReporter, type ProgressReporter, type ProgressUpdate, type ProgressEvent } from './cli/progress';
export { runPipelineNative, shPresets } from './pipeline-native';
export type { PipelineNativeInput, PipelineNativeResult, PipelineCheckpoint, PipelineProgress, PipelineCamera, PipelineModel } from './pipeline-native';
export { generate, renderPreviews, loadHeadModel, RunCancelledError, type GenerateOptions, type GenerateResult, type GenerateProgress } from './pipeline';
export { writeCheckpoint, readCheckpoint, CHECKPOINT_FILE } from './checkpoint';
