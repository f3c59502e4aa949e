/**
 * Opening a vision engine: one native engine, or with several `devices` one per device behind the
 * replica router. What callers get is a VisionEngine either way.
 */
import { availableParallelism } from 'node:os';
import { invalidArgument } from '../errors.js';
import { DeviceEngine } from './device-engine.js';
import { assertGpuWork, cannotRun, resolveDevices, type DeviceTarget } from './devices.js';
import { buildInfo } from './native.js';
import { ReplicaRouter } from './replicas.js';
import { defaultThreads } from './sizing.js';
import type { OpenVisionModelOptions, VisionEngine } from './types.js';

/** Checks the files, then loads them off the JS thread; with several `devices`, one engine replica per device. */
export async function openVisionEngine(options: OpenVisionModelOptions): Promise<VisionEngine> {
  if (typeof options !== 'object' || options === null) throw invalidArgument('an options object', 'options', options);
  assertGpuWork(options);
  // A GPU the loaded CUDA library cannot run must get no layers: llama.cpp's default split would use it.
  const devices = options.devices ?? (buildInfo().devices.some(cannotRun) ? 'all' : undefined);
  if (devices === undefined) return DeviceEngine.open(options, undefined);
  const targets = resolveDevices(devices);
  if (targets.length <= 1) return DeviceEngine.open(options, targets[0]);
  return openReplicas(options, targets);
}

/** One replica per target, each with its share of the CPU threads when on the CPU. */
async function openReplicas(options: OpenVisionModelOptions, targets: DeviceTarget[]): Promise<VisionEngine> {
  const onCpu = targets.filter((t) => !t.onGpu).length;
  const threads = onCpu > 0 ? Math.max(1, Math.floor((options.threads ?? defaultThreads()) / onCpu)) : options.threads;
  // Each engine samples its rows on a pool sized to the cores: replicas share them.
  const samplingThreads = options.samplingThreads ?? Math.max(1, Math.floor(availableParallelism() / targets.length));
  const opened = await Promise.allSettled(
    targets.map((t, replica) => DeviceEngine.open({ ...options, samplingThreads, ...(threads !== undefined && !t.onGpu ? { threads } : {}) }, { ...t, replica })),
  );
  const engines = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) {
    await Promise.all(engines.map((e) => e.close()));
    throw failed.reason;
  }
  return new ReplicaRouter(engines, targets.map((t) => t.label), options.onReplicaFailure);
}
