/**
 * The run config: typed interfaces (generated from the schema), defaults, validation, loading, JSON Schema.
 *
 *   import { loadConfig } from 'faceg2e-native';
 *   const cfg = loadConfig({ configPath: 'run.json', cli: { seed: 7, set: ['geometry.iterations=300'] } });
 */
export * from './types';
export { DEFAULTS, type RunConfigDefaults } from './defaults';
export { RunConfigSchema, configJsonSchema } from './schema';
export { resolveConfig, defaultConfig, viewPrompt, deepMerge, type ResolveOptions, type RunConfigOverrides } from './validate';
export {
  readConfigFile,
  parseConfigText,
  configFromCliArgs,
  coerceCliValue,
  loadConfig,
  CLI_CONFIG_OPTIONS,
  type CliConfigArgs,
  type ConfigFile,
  type LoadConfigOptions,
} from './load';
