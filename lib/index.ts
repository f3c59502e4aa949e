/** srf-native: what users import. */
export { SrfError, isSrfError, ERROR_CODES } from './errors.js';
export type { SrfErrorCode } from './errors.js';
export { VisionModel } from './model.js';
export type { VisionModelInfo, TaskCallOptions } from './model.js';
export { Embedder } from './embedder.js';
export { prepareImage, CLIP_MEAN_RGB } from './image.js';
export { buildInfo } from './native.js';
export { defaultDevices, isSplitDevices, parseDevicesOption, resolveDevices } from './devices.js';
export type { DeviceSpec, DeviceTarget } from './devices.js';
export type { ReplicaFailure, ReplicaStats } from './replicas.js';
export type { BuildInfo, EngineStats } from './native.js';
export type * from './types.js';
export * from './run/index.js';
export * from './srf/index.js';
export * from './emit/index.js';
