/**
 * Every default of the run config, in one place. The schema (lib/config/schema.ts) reads its defaults from
 * here, so the JSON Schema, the generated docs (docs/config.md) and `resolveConfig` all agree.
 *
 * Values follow the FaceG2E paper and its reference implementation unless noted:
 * - geometry: 200 Adan steps at lr 0.05 (eps 1e-8, weight decay 2e-5, gradient-norm clip 5), renders 224 px,
 *   timesteps falling linearly 0.98 → 0.02, guidance 100, random views with elevation ±20°, azimuth ±45°,
 *   field of view 12.59°, grey (random SH light) and normal renders;
 * - texture: 400 AdamW steps at lr 0.05 (betas 0.9/0.99, eps 1e-15), step decay ×0.9 every 100 steps, the first
 *   200 steps on a zero-initialised 4×64×64 latent texture, then a 512×512 RGB texture; texture-prior weight 3 with
 *   guidance 1; fixed cameras at elevations {0°, 30°} × azimuths {0°, ±60°, ±120°} × two distances;
 * - seed 42.
 * Distances are in metres from the head's centre (the reference camera sits 10 dm from a head in decimetres and
 * moves it 0–3 dm closer).
 */
import type { RunConfig } from './types';

/** The config without its required fields (`prompt`, `model`). */
export type RunConfigDefaults = Omit<RunConfig, 'prompt' | 'model' | '$schema'>;

export const DEFAULTS: RunConfigDefaults = {
  negativePrompt: '',
  viewPrompts: {
    enabled: true,
    front: ', front view',
    side: ', side view',
    back: ', back view',
    frontMaxAzimuth: 45,
    backMinAzimuth: 135,
  },
  seed: 42,
  device: 'auto',
  profile: false,
  diffusion: {
    backend: 'tensorrt',
    engines: null,
    codec: 'vae',
    scheduler: {
      numTrainTimesteps: 1000,
      betaSchedule: 'scaled_linear',
      betaStart: 0.00085,
      betaEnd: 0.012,
      predictionType: 'epsilon',
    },
    sdsWeighting: 'one-minus-alphabar',
    target: { head: null, texture: null },
  },
  geometry: {
    enabled: true,
    iterations: 200,
    learningRate: 0.05,
    renderSize: 224,
    identityComponents: null,
    optimizeExpression: false,
    initCoefficients: null,
    inputs: ['grey', 'normal'],
    inputSchedule: 'alternate',
    lighting: { presets: 'builtin' },
    background: [0, 0, 0],
    camera: {
      elevation: { min: -20, max: 20 },
      azimuth: { min: -45, max: 45 },
      distance: { min: 0.7, max: 1.0 },
      fovDegrees: 12.593637,
    },
    timestep: { schedule: 'linear', max: 0.98, min: 0.02 },
    guidanceScale: 100,
    optimizer: { type: 'adan', beta1: 0.98, beta2: 0.92, beta3: 0.99, eps: 1e-8, weightDecay: 2e-5, maxGradNorm: 5 },
    lrDecay: { type: 'none', stepEvery: 100, gamma: 1, minFactor: 0.1 },
    regularization: { identity: 1e-4, expression: 1e-3 },
  },
  texture: {
    enabled: true,
    iterations: 400,
    coefficients: null,
    learningRate: 0.05,
    latent: { iterations: 200, init: 'zeros', initScale: 1, textureSize: 64, renderSize: 64 },
    rgb: { textureSize: 512, renderSize: 512 },
    guidanceScale: 100,
    timestep: { schedule: 'linear', max: 0.98, min: 0.02 },
    controlNet: { enabled: true, type: 'depth', scale: 1 },
    prior: { type: 'canny', weight: 3, guidanceScale: 1, prompt: null, template: null, cannyLow: 100, cannyHigh: 200 },
    background: [0, 0, 0],
    cameras: {
      mode: 'fixed',
      fovDegrees: 12.593637,
      fixed: { elevations: [0, 30], azimuths: [0, 60, 120, -120, -60], distances: [0.85, 0.7] },
      random: {
        elevation: { min: -10, max: 30 },
        azimuth: { min: -180, max: 180 },
        distance: { min: 0.7, max: 0.85 },
      },
    },
    optimizer: { type: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-15, weightDecay: 0.01 },
    lrDecay: { type: 'step', stepEvery: 100, gamma: 0.9, minFactor: 0.1 },
  },
  output: {
    dir: 'faceg2e-out',
    overwrite: true,
    files: { obj: true, glb: true, coefficients: true, previews: true, turntable: true, runJson: true },
    previews: {
      views: [
        { azimuth: 0, elevation: 0 },
        { azimuth: 45, elevation: 0 },
        { azimuth: 90, elevation: 0 },
        { azimuth: -45, elevation: 0 },
        { azimuth: -90, elevation: 0 },
        { azimuth: 180, elevation: 0 },
      ],
      kinds: ['textured', 'grey', 'normal'],
      size: 512,
      distance: 0.85,
    },
    turntable: { frames: 60, size: 512, fps: 24, elevation: 10, distance: 0.85, quality: 90 },
    snapshotEvery: 0,
  },
};
