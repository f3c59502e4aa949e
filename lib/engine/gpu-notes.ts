/**
 * What a run or an eval says about the GPU before it starts, and records in run.json: that the work
 * runs on the CPU though a driver is there (and why), or that the GPU's kernels are compiled from PTX
 * on first use (minutes, once, then cached), with where.
 */
import type { BuildInfo } from './native.js';

export interface GpuNote {
  level: 'warn' | 'info';
  message: string;
}

/** The notes for this machine's engine, in the order to say them. */
export function gpuStartNotes(info: BuildInfo): GpuNote[] {
  if (info.backendWarning) return [{ level: 'warn', message: info.backendWarning }];
  const jit = info.cuda.verdicts.filter((v) => v.verdict === 'jit');
  if (jit.length === 0 || !info.cuda.loaded) return [];
  const archs = [...new Set(jit.map((v) => `sm_${v.computeCapability.replace('.', '')}`))].join(', ');
  const { dir, maxSize, setBySrfNative } = info.cuda.kernelCache;
  const size = `CUDA_CACHE_MAXSIZE=${maxSize}${setBySrfNative ? ', set by srf-native' : ''}`;
  return [{
    level: 'info',
    message: `compiling GPU kernels for ${archs} on first use (the ${info.cuda.loaded} CUDA library has no native code for it), cached in ${dir} (${size}): the first images wait for it, once; \`npx srf-native build --from-source --gpu cuda\` builds native kernels instead`,
  }];
}

/** run.json's record of the GPU side: the driver, the library that ran, each GPU's verdict, the kernel cache. */
export function gpuRecord(info: BuildInfo): Record<string, unknown> {
  const { driver, loaded, verdicts, kernelCache, libraries } = info.cuda;
  return {
    backendWarning: info.backendWarning,
    driverCuda: driver.cudaVersion,
    driver: driver.present ? 'present' : driver.error,
    cudaLibrary: loaded ? { role: loaded, kernels: libraries.find((l) => l.role === loaded)?.kernelsText ?? '' } : null,
    verdicts: verdicts.map(({ gpu, name, computeCapability, verdict, reason }) => ({ gpu, name, computeCapability, verdict, reason })),
    kernelCache,
  };
}
