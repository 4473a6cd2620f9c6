/**
 * The run config's single source of truth: a zod schema whose defaults come from lib/config/defaults.ts and
 * whose descriptions, units and ranges feed
 *   - the JSON Schema for editors (schema/faceg2e-config.schema.json),
 *   - the TypeScript interfaces with TSDoc (lib/config/types.ts, generated),
 *   - the field reference (docs/config.md, generated),
 * all written by `tools/gen-schema.ts` (a test checks they are up to date).
 *
 * Metadata keys used beyond JSON Schema: `x-unit` (a unit for docs), `x-path` ('file' | 'dir': a path resolved
 * against the config file's folder). Named objects carry an `id`, which becomes the interface name.
 */
import * as z from 'zod';
import { DEFAULTS as D, type RunConfigDefaults } from './defaults';

type Meta = { description: string; unit?: string; path?: 'file' | 'dir' | 'any' | 'outdir' };

function meta(m: Meta): Record<string, unknown> {
  const out: Record<string, unknown> = { description: m.description };
  if (m.unit) out['x-unit'] = m.unit;
  if (m.path) out['x-path'] = m.path;
  return out;
}

const clone = <T>(v: T) => () => structuredClone(v) as T;

const int = (def: number, lo: number, hi: number, m: Meta) => z.int().min(lo).max(hi).default(def).meta(meta(m));
const num = (def: number, lo: number, hi: number, m: Meta) => z.number().min(lo).max(hi).default(def).meta(meta(m));
const pos = (def: number, hi: number, m: Meta) => z.number().positive().max(hi).default(def).meta(meta(m));
const bool = (def: boolean, m: Meta) => z.boolean().default(def).meta(meta(m));
const str = (def: string, m: Meta) => z.string().default(def).meta(meta(m));
const optPath = (kind: 'file' | 'dir', m: Omit<Meta, 'path'>) => z.string().min(1).nullable().default(null).meta(meta({ ...m, path: kind }));

/** A closed interval {min, max} with min <= max, each bounded by [lo, hi]. */
function range(def: { min: number; max: number }, lo: number, hi: number, m: Meta) {
  return z
    .strictObject({
      min: z.number().min(lo).max(hi).meta({ description: 'Lower end (inclusive).' }),
      max: z.number().min(lo).max(hi).meta({ description: 'Upper end (inclusive).' }),
    })
    .refine((r) => r.min <= r.max, { message: 'expected min <= max' })
    .default(clone(def))
    .meta({ ...meta(m), 'x-ts-name': 'NumberRange' });
}

// ---------------------------------------------------------------------------------------------------------------

export const ViewPromptsSchema = z
  .strictObject({
    enabled: bool(D.viewPrompts.enabled, { description: 'Append a view-dependent suffix to the prompt, chosen by the camera azimuth.' }),
    front: str(D.viewPrompts.front, { description: 'Suffix for front views (|azimuth| <= frontMaxAzimuth).' }),
    side: str(D.viewPrompts.side, { description: 'Suffix for side views (between the front and back sectors).' }),
    back: str(D.viewPrompts.back, { description: 'Suffix for back views (|azimuth| > backMinAzimuth).' }),
    frontMaxAzimuth: num(D.viewPrompts.frontMaxAzimuth, 0, 180, { description: 'Largest |azimuth| that counts as a front view.', unit: 'degrees' }),
    backMinAzimuth: num(D.viewPrompts.backMinAzimuth, 0, 180, { description: '|azimuth| above which a view counts as a back view.', unit: 'degrees' }),
  })
  .meta({ id: 'ViewPromptsConfig', description: 'View-dependent prompts. Azimuth 0 looks at the face; it is taken in (-180, 180].' });

export const SchedulerSchema = z
  .strictObject({
    numTrainTimesteps: int(D.diffusion.scheduler.numTrainTimesteps, 1, 100000, { description: 'Number of training timesteps T of the diffusion model; SDS timesteps are fractions of T.' }),
    betaSchedule: z.enum(['scaled_linear', 'linear']).default(D.diffusion.scheduler.betaSchedule).meta(meta({ description: 'Noise schedule of the diffusion model (diffusers naming).' })),
    betaStart: pos(D.diffusion.scheduler.betaStart, 1, { description: 'First beta of the noise schedule.' }),
    betaEnd: pos(D.diffusion.scheduler.betaEnd, 1, { description: 'Last beta of the noise schedule.' }),
    predictionType: z.enum(['epsilon', 'v_prediction']).default(D.diffusion.scheduler.predictionType).meta(meta({ description: 'What the denoiser predicts (SD 2.1-base: epsilon; SD 2.1 768: v_prediction).' })),
  })
  .meta({ id: 'SchedulerConfig', description: 'The diffusion model\'s noise schedule; must match the denoiser.' });

export const TargetDenoiserSchema = z
  .strictObject({
    head: optPath('file', { description: 'Target head: a model-coefficients JSON (as written to coefficients.json). Required when diffusion.backend is \'target\'.' }),
    texture: optPath('file', { description: 'Target UV texture image (PNG/JPEG/WebP) in the model\'s UV layout. Required when diffusion.backend is \'target\'.' }),
  })
  .meta({ id: 'TargetDenoiserConfig', description: 'The target denoiser (reconstruction tests): it predicts noise so that x̂0 equals the render of this target head.' });

export const DiffusionSchema = z
  .strictObject({
    backend: z.enum(['tensorrt', 'target']).default(D.diffusion.backend).meta(meta({ description: '\'tensorrt\': Stable Diffusion engines (the real job). \'target\': a target denoiser for reconstruction tests.' })),
    engines: optPath('dir', { description: 'Folder with the TensorRT plans and their manifest.json (`faceg2e-native engines build`). Required for backend \'tensorrt\' and codec \'vae\'.' }),
    codec: z.enum(['vae', 'identity', 'pooling']).default(D.diffusion.codec).meta(meta({ description: 'Image <-> latent codec: \'vae\' (the engines\' VAE), or \'identity\' / \'pooling\' (only with the target denoiser).' })),
    scheduler: SchedulerSchema.prefault({}),
    sdsWeighting: z.enum(['one-minus-alphabar', 'uniform']).default(D.diffusion.sdsWeighting).meta(meta({ description: 'SDS weight w(t): 1 - ᾱ_t (as in DreamFusion/FaceG2E) or 1.' })),
    target: TargetDenoiserSchema.prefault({}),
  })
  .meta({ id: 'DiffusionConfig', description: 'The denoiser, codec and noise schedule shared by both phases.' });

type TimestepDefaults = RunConfigDefaults['geometry']['timestep'];
type LrDecayDefaults = RunConfigDefaults['geometry']['lrDecay'];

/** SDS timestep schedule (one per phase, each with its own defaults). */
function timestep(d: TimestepDefaults) {
  return z
    .strictObject({
      schedule: z.enum(['linear', 'random']).default(d.schedule).meta(meta({ description: '\'linear\': t falls linearly from max to min over the phase\'s iterations; \'random\': t ~ U[min, max] each iteration.' })),
      max: z.number().gt(0).lt(1).default(d.max).meta(meta({ description: 'Largest timestep, as a fraction of numTrainTimesteps.' })),
      min: z.number().gt(0).lt(1).default(d.min).meta(meta({ description: 'Smallest timestep, as a fraction of numTrainTimesteps.' })),
    })
    .refine((t) => t.min <= t.max, { message: 'expected min <= max' })
    .prefault({})
    .meta({ description: 'SDS timestep schedule.', 'x-ts-name': 'TimestepConfig' });
}

/** Learning-rate decay (one per phase, each with its own defaults). */
function lrDecay(d: LrDecayDefaults) {
  return z
    .strictObject({
      type: z.enum(['none', 'step', 'cosine']).default(d.type).meta(meta({ description: '\'step\': multiply the learning rate by gamma every stepEvery iterations; \'cosine\': cosine decay to minFactor × the learning rate at the last iteration; \'none\': constant.' })),
      stepEvery: z.int().min(1).max(1e7).default(d.stepEvery).meta(meta({ description: 'Step decay period (type \'step\').', unit: 'iterations' })),
      gamma: z.number().positive().max(1).default(d.gamma).meta(meta({ description: 'Step decay factor (type \'step\').' })),
      minFactor: z.number().min(0).max(1).default(d.minFactor).meta(meta({ description: 'Final learning rate as a fraction of the initial one (type \'cosine\').' })),
    })
    .prefault({})
    .meta({ description: 'Learning-rate decay.', 'x-ts-name': 'LrDecayConfig' });
}

export const CameraRangeSchema = z
  .strictObject({
    elevation: range(D.geometry.camera.elevation, -90, 90, { description: 'Camera elevation range; positive looks down on the head.', unit: 'degrees' }),
    azimuth: range(D.geometry.camera.azimuth, -180, 180, { description: 'Camera azimuth range; 0 looks at the face, positive turns towards the head\'s left.', unit: 'degrees' }),
    distance: range(D.geometry.camera.distance, 0.01, 100, { description: 'Camera distance range from the head\'s centre.', unit: 'metres' }),
    fovDegrees: num(D.geometry.camera.fovDegrees, 1, 120, { description: 'Vertical field of view.', unit: 'degrees' }),
  })
  .meta({ id: 'CameraRangeConfig', description: 'Random cameras: elevation, azimuth and distance drawn uniformly in their ranges each iteration.' });

const color = (def: number[], m: Meta) => z.array(z.number().min(0).max(1)).length(3).default(clone(def)).meta(meta(m));

export const GeometrySchema = z
  .strictObject({
    enabled: bool(D.geometry.enabled, { description: 'Run the geometry phase. When false, texture.coefficients gives the geometry.' }),
    iterations: int(D.geometry.iterations, 1, 1e7, { description: 'Optimisation steps.' }),
    learningRate: pos(D.geometry.learningRate, 1e3, { description: 'Learning rate of the coefficient optimiser.' }),
    renderSize: int(D.geometry.renderSize, 16, 2048, { description: 'Side of the square renders fed to the diffusion model (resized to its input size).', unit: 'pixels' }),
    identityComponents: z.int().min(1).max(100000).nullable().default(null).meta(meta({ description: 'Number of leading identity components to optimise; null: all that the model has.' })),
    optimizeExpression: bool(D.geometry.optimizeExpression, { description: 'Also optimise the expression coefficients (else they stay 0).' }),
    initCoefficients: optPath('file', { description: 'Start from these coefficients (a coefficients JSON) instead of the mean head.' }),
    inputs: z.array(z.enum(['grey', 'normal'])).min(1).default(clone(D.geometry.inputs)).meta(meta({ description: 'Renders used as SDS input: \'grey\' (untextured, shaded under a random SH light from lighting.presets) and \'normal\' (camera-space normals mapped to [0,1]).' })),
    inputSchedule: z.enum(['alternate', 'random']).default(D.geometry.inputSchedule).meta(meta({ description: 'How to pick among inputs each iteration: cycle in order, or draw uniformly (seeded).' })),
    lighting: z
      .strictObject({
        presets: z
          .union([z.literal('builtin'), z.array(z.union([z.array(z.number()).length(9), z.array(z.number()).length(27)])).min(1)])
          .default(D.geometry.lighting.presets)
          .meta(meta({ description: '\'builtin\': the package\'s preset set of second-order spherical-harmonic lights; or a list of lights, each 9 coefficients (grey) or 27 (RGB, 9 per channel). One is drawn per grey render.' })),
      })
      .prefault({})
      .meta({ id: 'LightingConfig', description: 'Spherical-harmonic lighting for grey renders.' }),
    background: color(D.geometry.background, { description: 'Background colour of the renders, RGB in [0, 1].' }),
    camera: CameraRangeSchema.prefault({}),
    timestep: timestep(D.geometry.timestep),
    guidanceScale: num(D.geometry.guidanceScale, 0, 1000, { description: 'Classifier-free guidance scale of the SDS term.' }),
    optimizer: z
      .strictObject({
        type: z.literal('adan').default('adan').meta(meta({ description: 'The Adan optimiser.' })),
        beta1: z.number().min(0).lt(1).default(D.geometry.optimizer.beta1).meta(meta({ description: 'Adan β1: decay of the gradient average.' })),
        beta2: z.number().min(0).lt(1).default(D.geometry.optimizer.beta2).meta(meta({ description: 'Adan β2: decay of the gradient-difference average.' })),
        beta3: z.number().min(0).lt(1).default(D.geometry.optimizer.beta3).meta(meta({ description: 'Adan β3: decay of the squared-gradient average.' })),
        eps: pos(D.geometry.optimizer.eps, 1, { description: 'Denominator epsilon.' }),
        weightDecay: num(D.geometry.optimizer.weightDecay, 0, 1, { description: 'Decoupled weight decay.' }),
        maxGradNorm: z.number().positive().nullable().default(D.geometry.optimizer.maxGradNorm).meta(meta({ description: 'Clip the gradient\'s global L2 norm to this; null: no clipping.' })),
      })
      .prefault({})
      .meta({ id: 'AdanConfig', description: 'Adan optimiser settings (betas as in the reference implementation: m ← β1·m + (1-β1)·g).' }),
    lrDecay: lrDecay(D.geometry.lrDecay),
    regularization: z
      .strictObject({
        identity: num(D.geometry.regularization.identity, 0, 1e6, { description: 'Weight of the L2 penalty on identity coefficients (in units of the model\'s standard deviations).' }),
        expression: num(D.geometry.regularization.expression, 0, 1e6, { description: 'Weight of the L2 penalty on expression coefficients.' }),
      })
      .prefault({})
      .meta({ id: 'GeometryRegularizationConfig', description: 'Coefficient regularisation.' }),
  })
  .meta({ id: 'GeometryConfig', description: 'Phase 1: 3DMM identity (and optionally expression) coefficients by SDS on grey and normal renders.' });

export const TextureCamerasSchema = z
  .strictObject({
    mode: z.enum(['fixed', 'random']).default(D.texture.cameras.mode).meta(meta({ description: '\'fixed\': draw each iteration one camera of the set elevations × azimuths × distances (as in FaceG2E); \'random\': draw from the random ranges.' })),
    fovDegrees: num(D.texture.cameras.fovDegrees, 1, 120, { description: 'Vertical field of view.', unit: 'degrees' }),
    fixed: z
      .strictObject({
        elevations: z.array(z.number().min(-90).max(90)).min(1).default(clone(D.texture.cameras.fixed.elevations)).meta(meta({ description: 'Elevations of the fixed set; positive looks down on the head.', unit: 'degrees' })),
        azimuths: z.array(z.number().min(-180).max(180)).min(1).default(clone(D.texture.cameras.fixed.azimuths)).meta(meta({ description: 'Azimuths of the fixed set; 0 looks at the face.', unit: 'degrees' })),
        distances: z.array(z.number().min(0.01).max(100)).min(1).default(clone(D.texture.cameras.fixed.distances)).meta(meta({ description: 'Distances of the fixed set from the head\'s centre.', unit: 'metres' })),
      })
      .prefault({})
      .meta({ id: 'FixedCameraSetConfig', description: 'The fixed camera set (mode \'fixed\').' }),
    random: z
      .strictObject({
        elevation: range(D.texture.cameras.random.elevation, -90, 90, { description: 'Elevation range.', unit: 'degrees' }),
        azimuth: range(D.texture.cameras.random.azimuth, -180, 180, { description: 'Azimuth range.', unit: 'degrees' }),
        distance: range(D.texture.cameras.random.distance, 0.01, 100, { description: 'Distance range.', unit: 'metres' }),
      })
      .prefault({})
      .meta({ id: 'RandomCameraSetConfig', description: 'Random camera ranges (mode \'random\').' }),
  })
  .meta({ id: 'TextureCamerasConfig', description: 'Cameras of the texture phase.' });

export const TexturePriorSchema = z
  .strictObject({
    type: z.enum(['canny', 'unet', 'none']).default(D.texture.prior.type).meta(meta({ description: 'Texture prior on the UV map: \'canny\' (SDS with a canny ControlNet on a template texture), \'unet\' (the engines\' texture-tuned UNet), \'none\'.' })),
    weight: num(D.texture.prior.weight, 0, 1e6, { description: 'Weight of the prior\'s SDS term relative to the render term.' }),
    guidanceScale: num(D.texture.prior.guidanceScale, 0, 1000, { description: 'Classifier-free guidance scale of the prior term.' }),
    prompt: z.string().nullable().default(null).meta(meta({ description: 'Prompt of the prior term; null: \'face texture\' for \'canny\', \'a diffuse texture map of a human face in UV space\' for \'unet\'.' })),
    template: optPath('file', { description: 'Template texture (image in the model\'s UV layout) whose canny edges condition the prior; null: derived from the model\'s UV layout.' }),
    cannyLow: num(D.texture.prior.cannyLow, 0, 255, { description: 'Canny low threshold on 8-bit gradients.' }),
    cannyHigh: num(D.texture.prior.cannyHigh, 0, 255, { description: 'Canny high threshold on 8-bit gradients.' }),
  })
  .meta({ id: 'TexturePriorConfig', description: 'The texture-prior SDS term on the UV map.' });

export const TextureSchema = z
  .strictObject({
    enabled: bool(D.texture.enabled, { description: 'Run the texture phase.' }),
    iterations: int(D.texture.iterations, 1, 1e7, { description: 'Optimisation steps in all (latent part first, then RGB).' }),
    coefficients: optPath('file', { description: 'Geometry for this phase (a coefficients JSON) when the geometry phase does not run; ignored otherwise.' }),
    learningRate: pos(D.texture.learningRate, 1e3, { description: 'Learning rate of the texture optimiser.' }),
    latent: z
      .strictObject({
        iterations: int(D.texture.latent.iterations, 0, 1e7, { description: 'Steps on the latent UV texture (SDS in latent space, no VAE); 0 skips it.' }),
        init: z.enum(['zeros', 'randn']).default(D.texture.latent.init).meta(meta({ description: 'Initial latent texture: zeros, or seeded normal noise times initScale.' })),
        initScale: num(D.texture.latent.initScale, 0, 100, { description: 'Scale of the \'randn\' initialisation.' }),
        textureSize: int(D.texture.latent.textureSize, 8, 1024, { description: 'Side of the 4-channel latent UV texture.', unit: 'latent pixels' }),
        renderSize: int(D.texture.latent.renderSize, 8, 1024, { description: 'Side of the latent renders (the denoiser\'s latent size: 64 for 512-pixel SD).', unit: 'latent pixels' }),
      })
      .prefault({})
      .meta({ id: 'LatentTextureConfig', description: 'First part: a latent UV texture rendered straight into latent space.' }),
    rgb: z
      .strictObject({
        textureSize: int(D.texture.rgb.textureSize, 16, 8192, { description: 'Side of the RGB UV texture (initialised from the decoded latent texture).', unit: 'pixels' }),
        renderSize: int(D.texture.rgb.renderSize, 16, 4096, { description: 'Side of the RGB renders (supervised through the decoded x̂0 target).', unit: 'pixels' }),
      })
      .prefault({})
      .meta({ id: 'RgbTextureConfig', description: 'Second part: an RGB UV texture.' }),
    guidanceScale: num(D.texture.guidanceScale, 0, 1000, { description: 'Classifier-free guidance scale of the render SDS term.' }),
    timestep: timestep(D.texture.timestep),
    controlNet: z
      .strictObject({
        enabled: bool(D.texture.controlNet.enabled, { description: 'Condition the render term on a depth ControlNet.' }),
        type: z.literal('depth').default('depth').meta(meta({ description: 'ControlNet kind (depth renders of the fixed geometry).' })),
        scale: num(D.texture.controlNet.scale, 0, 10, { description: 'ControlNet conditioning scale.' }),
      })
      .prefault({})
      .meta({ id: 'ControlNetConfig', description: 'Depth ControlNet on the render term.' }),
    prior: TexturePriorSchema.prefault({}),
    background: color(D.texture.background, { description: 'Background colour of the renders, RGB in [0, 1].' }),
    cameras: TextureCamerasSchema.prefault({}),
    optimizer: z
      .strictObject({
        type: z.enum(['adam', 'adamw']).default(D.texture.optimizer.type).meta(meta({ description: 'Adam, or AdamW (decoupled weight decay).' })),
        beta1: z.number().min(0).lt(1).default(D.texture.optimizer.beta1).meta(meta({ description: 'β1.' })),
        beta2: z.number().min(0).lt(1).default(D.texture.optimizer.beta2).meta(meta({ description: 'β2.' })),
        eps: pos(D.texture.optimizer.eps, 1, { description: 'Denominator epsilon.' }),
        weightDecay: num(D.texture.optimizer.weightDecay, 0, 1, { description: 'Weight decay (decoupled for \'adamw\', L2 for \'adam\').' }),
      })
      .prefault({})
      .meta({ id: 'AdamConfig', description: 'Adam/AdamW optimiser settings.' }),
    lrDecay: lrDecay(D.texture.lrDecay),
  })
  .meta({ id: 'TextureConfig', description: 'Phase 2: a UV texture on the fixed geometry, latent first, then RGB.' });

export const ViewAngleSchema = z
  .strictObject({
    azimuth: z.number().min(-180).max(180).meta(meta({ description: 'Azimuth; 0 looks at the face.', unit: 'degrees' })),
    elevation: z.number().min(-90).max(90).default(0).meta(meta({ description: 'Elevation; positive looks down on the head.', unit: 'degrees' })),
  })
  .meta({ id: 'ViewAngle', description: 'A camera direction.' });

export const OutputSchema = z
  .strictObject({
    dir: z.string().min(1).default(D.output.dir).meta(meta({ description: 'Output folder (created if missing). The default is relative to the working directory.', path: 'outdir' })),
    overwrite: bool(D.output.overwrite, { description: 'Replace existing output files; when false, a run whose outputs exist fails before it starts.' }),
    files: z
      .strictObject({
        obj: bool(D.output.files.obj, { description: 'mesh.obj + mesh.mtl + texture.png.' }),
        glb: bool(D.output.files.glb, { description: 'head.glb (binary glTF, texture embedded).' }),
        coefficients: bool(D.output.files.coefficients, { description: 'coefficients.json (model coefficients).' }),
        previews: bool(D.output.files.previews, { description: 'preview.png (a grid of rendered views).' }),
        turntable: bool(D.output.files.turntable, { description: 'turntable.webp (an animated turntable).' }),
        runJson: bool(D.output.files.runJson, { description: 'run.json (resolved config, versions, timings, metrics).' }),
      })
      .prefault({})
      .meta({ id: 'OutputFilesConfig', description: 'Which files to write.' }),
    previews: z
      .strictObject({
        views: z.array(ViewAngleSchema).min(1).max(64).default(clone(D.output.previews.views)).meta(meta({ description: 'Views of the preview grid, one column each.' })),
        kinds: z.array(z.enum(['textured', 'grey', 'normal'])).min(1).default(clone(D.output.previews.kinds)).meta(meta({ description: 'Render kinds, one row each.' })),
        size: int(D.output.previews.size, 16, 4096, { description: 'Side of each preview image.', unit: 'pixels' }),
        distance: num(D.output.previews.distance, 0.01, 100, { description: 'Camera distance.', unit: 'metres' }),
      })
      .prefault({})
      .meta({ id: 'PreviewConfig', description: 'The preview grid.' }),
    turntable: z
      .strictObject({
        frames: int(D.output.turntable.frames, 1, 3600, { description: 'Frames per revolution.' }),
        size: int(D.output.turntable.size, 16, 4096, { description: 'Side of each frame.', unit: 'pixels' }),
        fps: num(D.output.turntable.fps, 1, 120, { description: 'Frame rate.', unit: 'frames/s' }),
        elevation: num(D.output.turntable.elevation, -90, 90, { description: 'Camera elevation.', unit: 'degrees' }),
        distance: num(D.output.turntable.distance, 0.01, 100, { description: 'Camera distance.', unit: 'metres' }),
        quality: int(D.output.turntable.quality, 1, 100, { description: 'WebP quality.' }),
      })
      .prefault({})
      .meta({ id: 'TurntableConfig', description: 'The turntable animation.' }),
    snapshotEvery: int(D.output.snapshotEvery, 0, 1e7, { description: 'Write a preview grid every N iterations under snapshots/; 0: never.', unit: 'iterations' }),
  })
  .meta({ id: 'OutputConfig', description: 'What to write, and where.' });

export const RunConfigSchema = z
  .strictObject({
    $schema: z.string().optional().meta({ description: 'Path or URL of the JSON Schema (for editors); ignored.' }),
    prompt: z.string().trim().min(1).meta(meta({ description: 'The text prompt, e.g. "a zoomed out DSLR photo of an old man with a beard". Required.' })),
    negativePrompt: str(D.negativePrompt, { description: 'Negative prompt for classifier-free guidance.' }),
    viewPrompts: ViewPromptsSchema.prefault({}),
    seed: z.int().min(0).max(Number.MAX_SAFE_INTEGER).default(D.seed).meta(meta({ description: 'Seed of every random draw (Philox): cameras, lights, noise, initialisation.' })),
    device: z.enum(['auto', 'cuda', 'cpu']).default(D.device).meta(meta({ description: '\'cuda\', \'cpu\' (only the target denoiser), or \'auto\' (CUDA when usable).' })),
    model: z.string().min(1).meta(meta({ description: 'The head model: a .safetensors model file (`faceg2e-native models import`), or an ICT-FaceKit folder, imported on the fly with the default parts. Required.', path: 'any' })),
    profile: bool(D.profile, { description: 'Record per-stage GPU timings (NVTX ranges and CUDA events) into run.json.' }),
    diffusion: DiffusionSchema.prefault({}),
    geometry: GeometrySchema.prefault({}),
    texture: TextureSchema.prefault({}),
    output: OutputSchema.prefault({}),
  })
  .meta({ id: 'RunConfig', title: 'FaceG2E run config', description: 'A faceg2e-native run: the prompt, the model, the diffusion backend, the two phases and the outputs.' });

/** The resolved (output) type of the schema; lib/config/types.ts is generated to match it exactly. */
export type RunConfigFromSchema = z.output<typeof RunConfigSchema>;

/** The JSON Schema of the config file (input side: defaulted fields are optional). */
export function configJsonSchema(opts: { internal?: boolean; io?: 'input' | 'output' } = {}): Record<string, unknown> {
  const s = z.toJSONSchema(RunConfigSchema, { io: opts.io ?? 'input', target: 'draft-7', unrepresentable: 'throw' }) as Record<string, unknown>;
  return opts.internal ? s : stripInternal(s);
}

function stripInternal(v: unknown): any {
  if (Array.isArray(v)) return v.map(stripInternal);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'x-path' && k !== 'x-ts-name') out[k] = stripInternal(x);
    return out;
  }
  return v;
}
