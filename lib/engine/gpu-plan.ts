/**
 * Which CUDA library to load, decided before ggml loads any: from the NVIDIA driver's facts (its
 * CUDA version, each GPU's compute capability) and each candidate library's kernels
 * (cuda-kernels.ts). A library that cannot run on any GPU here is not loaded (its first kernel
 * launch would abort the process); node-llama-cpp's fallback library is tried next; then the CPU.
 * Pure functions: engine/native.ts feeds them what the addon and the files say.
 */
import { cudaVersionText, describeKernels, judgeKernels, type CudaKernels, type KernelJudgement, type KernelVerdict } from './cuda-kernels.js';

export interface DriverFacts {
  /** The driver's libcuda.so.1 is there. */
  installed: boolean;
  /** And it started (or SRF_ASSUME_NVIDIA_DRIVER=1 says to act as if it had, GPUs unknown). */
  present: boolean;
  /** 1000 * major + 10 * minor; 0 when not known. */
  cudaVersion: number;
  gpus: { name: string; major: number; minor: number; memoryTotal: number }[];
  /** Why no driver answered, or what failed. */
  error: string;
}

export type CudaLibraryRole = 'main' | 'fallback' | 'compiled-in';

export interface CudaLibrary {
  role: CudaLibraryRole;
  path: string;
  /** null when the file has no CUDA code or could not be read. */
  kernels: CudaKernels | null;
}

export interface GpuVerdict {
  /** The GPU's number among the driver's (CUDA0 is 0). */
  gpu: number;
  name: string;
  computeCapability: string;
  library: CudaLibraryRole;
  verdict: KernelVerdict;
  reason: string;
  /** The command or change that fixes a slow first start or a GPU that cannot run; '' when none is needed. */
  fix: string;
}

export interface CudaLoadAttempt {
  path: string;
  loaded: boolean;
  gpus: number;
  error: string;
}

/** The command that builds native kernels for the GPUs of this machine. */
export const CUDA_SOURCE_BUILD_COMMAND = 'npx srf-native build --from-source --gpu cuda';

function fixFor(judged: KernelJudgement): string {
  if (judged.verdict === 'native') return '';
  if (judged.verdict === 'jit') return `${CUDA_SOURCE_BUILD_COMMAND} (native kernels for this GPU, no JIT; needs the CUDA toolkit)`;
  if (judged.needsDriverCuda) return `an NVIDIA driver for CUDA ${cudaVersionText(judged.needsDriverCuda)} or newer, or ${CUDA_SOURCE_BUILD_COMMAND} with a CUDA toolkit this driver supports`;
  return CUDA_SOURCE_BUILD_COMMAND;
}

/** Each GPU's verdict for one library. */
export function judgeLibrary(library: CudaLibrary, driver: DriverFacts): GpuVerdict[] {
  return driver.gpus.map((g, gpu) => {
    const judged: KernelJudgement = library.kernels
      ? judgeKernels(library.kernels, g.major, g.minor, driver.cudaVersion)
      : { verdict: 'cannot-run', reason: `no CUDA kernels could be read from ${library.path}` };
    return { gpu, name: g.name, computeCapability: `${g.major}.${g.minor}`, library: library.role, verdict: judged.verdict, reason: judged.reason, fix: fixFor(judged) };
  });
}

/** The libraries to hand the addon's loadBackends, in order: those that can run on at least one GPU here (all of them when the GPUs are not known). */
export function librariesToTry(libraries: CudaLibrary[], driver: DriverFacts): CudaLibrary[] {
  if (!driver.present) return [];
  return libraries.filter((library) => library.role !== 'compiled-in' && (driver.gpus.length === 0 || judgeLibrary(library, driver).some((v) => v.verdict !== 'cannot-run')));
}

/** What the GPUs can do with the library that loaded, or with the first candidate when none did. */
export function verdictsFor(libraries: CudaLibrary[], loaded: CudaLibrary | undefined, driver: DriverFacts): GpuVerdict[] {
  const library = loaded ?? libraries[0];
  return library ? judgeLibrary(library, driver) : [];
}

/**
 * The warning a user with an NVIDIA driver gets when the work will not run on the GPU, or '' when
 * it will (or when there is no driver: the CPU is then no news).
 */
export function backendWarning(driver: DriverFacts, libraries: CudaLibrary[], attempts: CudaLoadAttempt[]): string {
  if (libraries.length === 0) return '';
  // An installed driver that does not start (a driver/library mismatch, no GPU visible) is news.
  if (!driver.present) return driver.installed ? `an NVIDIA driver is installed, but ${driver.error}: running on the CPU` : '';
  if (attempts.some((a) => a.loaded) || libraries.some((l) => l.role === 'compiled-in')) return '';
  const why: string[] = [];
  for (const library of libraries) {
    const attempt = attempts.find((a) => a.path === library.path);
    if (attempt) {
      why.push(`${library.role} CUDA library: ${attempt.error}`);
      continue;
    }
    const cannot = judgeLibrary(library, driver).filter((v) => v.verdict === 'cannot-run');
    why.push(`${library.role} CUDA library not loaded: ${cannot.map((v) => `GPU ${v.gpu} (${v.name}, ${v.computeCapability}): ${v.reason}`).join('; ') || 'not tried'}`);
  }
  const main = libraries.find((l) => l.role === 'main');
  const verb = attempts.length > 0 ? 'did not load' : 'cannot run on this machine\'s GPUs';
  return `the CUDA backend of the prebuilt llama.cpp ${verb}, running on the CPU: ${why.join('; ')}` +
    (main?.kernels ? ` (its kernels: ${describeKernels(main.kernels)}; driver CUDA ${driver.cudaVersion ? cudaVersionText(driver.cudaVersion) : 'unknown'})` : '');
}
