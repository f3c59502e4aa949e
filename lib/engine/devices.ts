/**
 * Where engine replicas run: `devices` of VisionModel.open and refine(), `--devices` of the CLI.
 * One replica per entry; `all` is every GPU the engine sees (the CPU when it sees none).
 *
 *   'all'            every GPU, in the order `srf-native info` lists them
 *   0, 1, ...        the i-th GPU of that list
 *   'cpu'            the CPU (no layers offloaded); 'cpu' twice is two CPU replicas
 *   'CUDA1', ...     a device by its ggml name
 *   'split'          no replicas: one engine with the layers split over all GPUs by llama.cpp (for a
 *                    model that fits no single GPU)
 */
import { invalidArgument, SrfError } from '../errors.js';
import { buildInfo, type BuildInfo } from './native.js';

export type DeviceSpec = number | string;

export interface DeviceTarget {
  /** For logs and run.json: `cpu`, or `gpu 1 (CUDA1)`. */
  label: string;
  /** Its index among the replicas of one engine (set by the replica opener; scopes the engine's failpoints). */
  replica?: number;
  /** The ggml device the replica is pinned to; undefined on the CPU. */
  device?: string;
  onGpu: boolean;
}

type Devices = BuildInfo['devices'];

/** A device llama.cpp offloads to (a discrete or an integrated GPU). */
export const isGpu = (d: Devices[number]): boolean => d.type === 'gpu' || d.type === 'igpu';

/** True for the `split` value: one engine over all GPUs, no replicas. */
export function isSplitDevices(spec: unknown): boolean {
  return typeof spec === 'string' && spec.trim().toLowerCase() === 'split';
}

/** `all`, `split`, `0,1`, `cpu,cpu`: the text of --devices as a list (checked against the machine by resolveDevices). */
export function parseDevicesOption(text: string): 'all' | 'split' | DeviceSpec[] {
  if (typeof text !== 'string' || text.trim() === '') throw invalidArgument('all, split, a list of GPU numbers (0,1) or cpu', '--devices', text);
  if (text.trim().toLowerCase() === 'all') return 'all';
  if (isSplitDevices(text)) return 'split';
  return text.split(',').map((part) => {
    const item = part.trim();
    if (item === '') throw invalidArgument('all, a list of GPU numbers (0,1) or cpu', '--devices', text);
    return /^\d+$/.test(item) ? Number(item) : item;
  });
}

/** A GPU the loaded CUDA library cannot run (its first kernel would abort the process): it gets no work. */
export const cannotRun = (d: Devices[number]): boolean => d.cudaVerdict === 'cannot-run';

function gpuTarget(gpus: Devices, index: number): DeviceTarget {
  const gpu = gpus[index];
  if (!gpu) {
    const seen = gpus.length === 0 ? 'no GPU' : `${gpus.length} GPU${gpus.length === 1 ? '' : 's'} (${gpus.map((g, i) => `${i}: ${g.name}`).join(', ')})`;
    throw new SrfError('INVALID_ARGUMENT', `devices: GPU ${index} was asked for, but the engine sees ${seen}; see \`srf-native info\``);
  }
  if (cannotRun(gpu)) {
    throw new SrfError('INVALID_ARGUMENT', `devices: GPU ${index} (${gpu.name}) cannot run the CUDA library that loaded; \`srf-native info\` says why and what fixes it`);
  }
  return { label: `gpu ${index} (${gpu.name})`, device: gpu.name, onGpu: true };
}

/** The replicas' devices for a `devices` value, checked against what the engine sees; [] for `split` (one engine). */
export function resolveDevices(spec: 'all' | 'split' | DeviceSpec[] | string, devices: Devices = buildInfo().devices): DeviceTarget[] {
  const list = typeof spec === 'string' ? parseDevicesOption(spec) : spec;
  if (list === 'split') return [];
  const gpus = devices.filter(isGpu);
  if (list === 'all') {
    const runnable = gpus.flatMap((g, i) => (cannotRun(g) ? [] : [i]));
    return runnable.length === 0 ? [{ label: 'cpu', onGpu: false }] : runnable.map((i) => gpuTarget(gpus, i));
  }
  if (!Array.isArray(list) || list.length === 0) throw invalidArgument("'all' or a non-empty list of devices", 'devices', spec);
  return list.map((item) => {
    if (typeof item === 'number') {
      if (!Number.isInteger(item) || item < 0) throw invalidArgument('a GPU number (0, 1, ...)', 'devices', item);
      return gpuTarget(gpus, item);
    }
    if (typeof item !== 'string') throw invalidArgument("a GPU number, 'cpu' or a device name", 'devices', item);
    if (item.toLowerCase() === 'cpu') return { label: 'cpu', onGpu: false };
    const index = gpus.findIndex((g) => g.name === item);
    if (index < 0) throw new SrfError('INVALID_ARGUMENT', `devices: no device named ${JSON.stringify(item)}; the engine sees ${devices.map((d) => d.name).join(', ')} (\`srf-native info\`)`);
    return gpuTarget(gpus, index);
  });
}

/** The default of `srf-native run`: every GPU when there are several (and layers go to the GPU), else one engine as before. */
export function defaultDevices(gpuLayers: number | undefined, devices: Devices = buildInfo().devices): 'all' | undefined {
  // Also where a GPU cannot run the library: 'all' leaves it out, llama.cpp's split would not.
  return gpuLayers !== 0 && (devices.filter(isGpu).length > 1 || devices.some(cannotRun)) ? 'all' : undefined;
}

/** Whether the caller asked that the work run on a GPU: the option, else SRF_REQUIRE_GPU=1. */
export function gpuRequired(requireGpu: boolean | undefined): boolean {
  return requireGpu ?? process.env.SRF_REQUIRE_GPU === '1';
}

/** Why work opened with these options would not run on a GPU; '' when it would. */
export function whyNotOnGpu(o: { gpuLayers?: number; devices?: 'all' | 'split' | DeviceSpec[] | string }, info: BuildInfo = buildInfo()): string {
  const runnable = info.devices.filter((d) => isGpu(d) && !cannotRun(d));
  if (runnable.length === 0) {
    if (info.backendWarning) return info.backendWarning;
    if (info.llamaCppFrom === 'source' && info.backend !== 'cuda') return 'the engine was built without CUDA (`npx srf-native build --from-source --gpu cuda` builds it with)';
    if (!info.cuda.driver.present) return `no GPU on this machine: ${info.cuda.driver.error || 'no NVIDIA driver'}`;
    return info.devices.some(cannotRun) ? 'no GPU here can run the CUDA library that loaded (`srf-native info` says why)' : 'the CUDA library sees no GPU';
  }
  if (o.gpuLayers === 0) return 'gpuLayers 0 (--gpu-layers 0) keeps every layer on the CPU';
  if (o.devices !== undefined && !isSplitDevices(o.devices) && resolveDevices(o.devices, info.devices).every((t) => !t.onGpu)) return `devices ${JSON.stringify(o.devices)} put every replica on the CPU`;
  return '';
}

/** With requireGpu (or SRF_REQUIRE_GPU=1), a GPU_REQUIRED error when the work would not run on a GPU, before anything is loaded. */
export function assertGpuWork(o: { requireGpu?: boolean; gpuLayers?: number; devices?: 'all' | 'split' | DeviceSpec[] | string }, info?: BuildInfo): void {
  if (!gpuRequired(o.requireGpu)) return;
  const why = whyNotOnGpu(o, info);
  if (why) throw new SrfError('GPU_REQUIRED', `a GPU is required (${o.requireGpu ? '--require-gpu' : 'SRF_REQUIRE_GPU=1'}), but this work would run on the CPU: ${why}`);
}
