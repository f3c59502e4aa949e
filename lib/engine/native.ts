/**
 * Loads the compiled engine (build/Release/srf_native.node) once, with a message that says what
 * to do when it is missing, and hands it the SrfError class so native failures arrive coded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SrfError } from '../errors.js';
import { describeKernels, readCudaKernels } from './cuda-kernels.js';
import { backendWarning, judgeLibrary, librariesToTry, verdictsFor, type CudaLibrary, type CudaLoadAttempt, type DriverFacts, type GpuVerdict } from './gpu-plan.js';
import type { PromptTextPart } from './chat-template.js';
import type { VocabFacts } from './families.js';

export interface NativeCompletion {
  text: string;
  finishReason: 'eos' | 'length' | 'grammar';
  promptTokens: number;
  prefixTokens: number;
  generatedTokens: number;
  prefixReused: boolean;
  tokens: number[];
  /** forceDraft: log P of each draft token taken. */
  draftLogProbs?: number[];
}

export type CompletionCallback = (id: number, error: SrfError | null, result?: NativeCompletion) => void;

export interface NativeVisionModelInfo {
  description: string;
  contextSize: number;
  kvLayout: 'unified' | 'per-sequence';
  /** KV cells one sequence can use: contextSize, or its per-sequence share. */
  sequenceCells: number;
  parallel: number;
  prefixCache: number;
  batchSize: number;
  embeddingLength: number;
  vocabSize: number;
  layers: number;
  parameters: number;
  sizeBytes: number;
  loras: number;
  /** The vocabulary's BOS, EOS and EOT tokens (id -1: none) and whether it adds BOS. */
  vocab: VocabFacts;
  /** The text model takes M-RoPE positions (Qwen2/2.5/3-VL). */
  mrope: boolean;
  /** Image tokens mtmd makes of a 32 x 32 and of a 4096 x 4096 image (-1: could not count). */
  imageTokenRange: [number, number];
}

export interface NativeGenerateRequest {
  beforeImage: string;
  afterImage: string;
  /** A chat template's text after the image, in parts: used instead of afterImage (see engine.h). */
  afterImageParts?: PromptTextPart[];
  prefixKey: string;
  rgb: Uint8Array;
  /** A square image's side, or nx and ny. */
  size?: number;
  nx?: number;
  ny?: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  maxTokens: number;
  ignoreEos: boolean;
  grammar: string;
  /** Greedy requests: the expected reply as text (the engine appends EOS) or as token ids. */
  draftText?: string;
  draftTokens?: number[];
  /** The token a text draft ends with (the family's reply end); -1: EOT where the vocabulary has one, else EOS. */
  draftEnd?: number;
  /** Take the draft whatever the model would choose, and return each token's log-probability. */
  forceDraft?: boolean;
}

export interface EngineStats {
  steps: number;
  generatedTokens: number;
  promptTokens: number;
  /** Image-prefix tokens evaluated (prefixes taken from the cache are not evaluated again). */
  prefixTokens: number;
  /**
   * Prefix tokens not evaluated but restored: the text before the image (system text, "USER: ") is
   * the same for every image, so its KV cells are copied from the last image's prefix.
   */
  prefixSharedTokens: number;
  prefixHits: number;
  prefixMisses: number;
  completed: number;
  failed: number;
  prefixEvalMs: number;
  /** The vision encoder's share of prefixEvalMs. */
  imageEncodeMs: number;
  decodeMs: number;
  /** Host time spent sampling steps' rows (and verifying draft rows), on the sampling pool. */
  sampleMs: number;
  /** Draft tokens put into decode steps, and how many of them the model confirmed. */
  draftTokens: number;
  draftAccepted: number;
  active: number;
  queued: number;
}

/** Every counter of EngineStats, once: the type below fails to compile when one is missing. */
const ENGINE_STATS_FIELDS = [
  'steps', 'generatedTokens', 'promptTokens', 'prefixTokens', 'prefixSharedTokens', 'prefixHits', 'prefixMisses', 'completed', 'failed',
  'prefixEvalMs', 'imageEncodeMs', 'decodeMs', 'sampleMs', 'draftTokens', 'draftAccepted', 'active', 'queued',
] as const satisfies readonly (keyof EngineStats)[];
type MissingStatsField = Exclude<keyof EngineStats, (typeof ENGINE_STATS_FIELDS)[number]>;
const everyField: [MissingStatsField] extends [never] ? true : MissingStatsField = true;
void everyField;

/** Counters all 0. */
export function emptyEngineStats(): EngineStats {
  return Object.fromEntries(ENGINE_STATS_FIELDS.map((field) => [field, 0])) as unknown as EngineStats;
}

/** Counters added up, field by field (replicas behind one engine). */
export function sumEngineStats(all: readonly EngineStats[]): EngineStats {
  const total = emptyEngineStats();
  for (const stats of all) for (const field of ENGINE_STATS_FIELDS) total[field] += stats[field];
  return total;
}

export interface NativeVisionModel {
  load(options: Record<string, unknown>): Promise<NativeVisionModelInfo>;
  submit(request: NativeGenerateRequest): number;
  cancel(id: number): void;
  setLoraScales(scales: number[]): number;
  stats(): EngineStats;
  close(): Promise<void>;
}

export interface NativeEmbedder {
  load(options: Record<string, unknown>): Promise<{ dim: number }>;
  embed(texts: string[]): Promise<{ dim: number; pooled: Float32Array; tokens: Float32Array[] }>;
  close(): Promise<void>;
}

/** What the binary was compiled with, known before any backend is loaded. */
export interface BuildConfig {
  backend: 'cuda' | 'cpu';
  gpuChoice: 'auto' | 'cuda' | 'cpu';
  cudaArchitectures: string;
  llamaCppVersion: string;
  llamaCppFrom: 'prebuilt' | 'source';
  prebuiltDir: string;
  prebuiltFallbackDir: string;
}

/** The GPU side of this process, found once when the engine loads: the driver, the CUDA libraries, what ran. */
export interface CudaReport {
  /** The NVIDIA driver's CUDA version and GPUs (present false where there is none). */
  driver: DriverFacts;
  /** The CUDA libraries this build can use, with their kernels: node-llama-cpp's main and fallback, or the addon's own (source build). */
  libraries: (CudaLibrary & {
    kernelsText: string;
    /** 'loaded', 'not tried: ...' (it cannot run on any GPU here, or no driver), or 'did not load: ...'. */
    status: string;
    /** Per GPU, what this library's kernels can do there. */
    verdicts: GpuVerdict[];
  })[];
  /** What loading each library tried did (prebuilt builds; in order). */
  attempts: CudaLoadAttempt[];
  /** The library running the GPUs: 'main', 'fallback', 'compiled-in', or '' (none: the CPU). */
  loaded: CudaLibrary['role'] | '';
  /** Per GPU: native kernels, JIT from PTX (a slow first start), or cannot run, with why and the fix. */
  verdicts: GpuVerdict[];
  /** Where JIT-compiled kernels are cached, and its size limit (srf-native sets CUDA_CACHE_MAXSIZE when you have not). */
  kernelCache: { dir: string; maxSize: string; setBySrfNative: boolean };
}

export interface BuildInfo extends Omit<BuildConfig, 'prebuiltFallbackDir'> {
  /** ggml backends registered (prebuilt: loaded at run time from prebuiltDir). */
  backends: string[];
  /** The prebuilt CPU library ggml picked for this machine ('zen4', 'haswell', ...); '' for a source build (its CPU code is compiled in). */
  cpuVariant: string;
  /** Why the work will not run on the GPU of a machine with an NVIDIA driver (the CUDA library did not load, or cannot run its GPUs); '' when none. */
  backendWarning: string;
  systemInfo: string;
  supportsGpuOffload: boolean;
  devices: {
    name: string;
    description: string;
    type: string;
    memoryTotal: number;
    memoryFree: number;
    /** A CUDA GPU's verdict for the library that loaded (a 'cannot-run' GPU gets no work). */
    cudaVerdict?: GpuVerdict['verdict'];
  }[];
  cuda: CudaReport;
}

/** What the addon's buildInfo() returns itself; the rest is engine/native.ts's. */
type NativeBuildInfo = Omit<BuildInfo, 'backendWarning' | 'cuda'>;

export interface NativeAddon {
  VisionModel: new (onComplete: CompletionCallback) => NativeVisionModel;
  Embedder: new () => NativeEmbedder;
  buildInfo(): NativeBuildInfo;
  buildConfig(): BuildConfig;
  driverFacts(): DriverFacts;
  loadBackends(cudaLibraries: string[]): { cpuLibrary: string; cuda: CudaLoadAttempt[] };
  /** fn runs on the JS thread when llama.cpp is about to abort the process, to write out what is buffered. */
  setFatalFlushHandler(fn: () => void): void;
  setErrorClass(ctor: unknown): void;
  setLogLevel(level: 'none' | 'error' | 'warn' | 'info' | 'debug'): void;
}

/** The folder holding srf-native's package.json, from lib/ or dist/lib/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'srf-native') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new SrfError('NATIVE_MISSING', 'cannot find the srf-native package folder');
    dir = parent;
  }
}

let addon: NativeAddon | undefined;

/** The one command that builds the engine in place, for every way srf-native is installed. */
export const BUILD_COMMAND = 'npx srf-native build';

export function native(): NativeAddon {
  if (addon) return addon;
  const path = process.env.SRF_NATIVE_ADDON ?? join(packageRoot(), 'build', 'Release', 'srf_native.node');
  if (!existsSync(path)) {
    throw new SrfError(
      'NATIVE_MISSING',
      `the srf-native engine is not built (${path} is missing): its install script did not run ` +
        '(`npm install --ignore-scripts`, or a package manager that blocks dependency install scripts) or failed. ' +
        `Build it with \`${BUILD_COMMAND}\` (add \`--gpu cuda\` for a GPU); it needs cmake >= 3.19, a C++17 compiler and git.`,
      { file: path },
    );
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new SrfError(
      'NATIVE_MISSING',
      `the srf-native engine at ${path} failed to load (${(cause as Error).message}): it was built for another ` +
        `machine, system or Node.js. Rebuild it here with \`${BUILD_COMMAND}\`.`,
      { file: path, cause },
    );
  }
  addon.setErrorClass(SrfError);
  addon.setLogLevel((process.env.SRF_LLAMA_LOG as 'error') ?? 'none');
  cudaReport = loadBackends(addon, path);
  addon.setFatalFlushHandler(runFatalFlushes);
  return addon;
}

let cudaReport: CudaReport | undefined;

/** The most the driver's JIT cache may hold (its own limit); the default is too small for ggml's kernels. */
const KERNEL_CACHE_MAX = String(4 * 2 ** 30);

/** The driver's facts: SRF_TEST_DRIVER_FACTS (JSON) in tests; SRF_ASSUME_NVIDIA_DRIVER=1 acts as if a driver with unknown GPUs answered. */
function driverFacts(addon: NativeAddon, config: BuildConfig): DriverFacts {
  const injected = process.env.SRF_TEST_DRIVER_FACTS;
  if (injected) return { installed: true, present: true, cudaVersion: 0, gpus: [], error: '', ...(JSON.parse(injected) as Partial<DriverFacts>) };
  const facts: DriverFacts = config.backend === 'cuda' ? addon.driverFacts() : { installed: false, present: false, cudaVersion: 0, gpus: [], error: 'a CPU build' };
  if (!facts.present && process.env.SRF_ASSUME_NVIDIA_DRIVER === '1') return { installed: true, present: true, cudaVersion: 0, gpus: [], error: '' };
  return facts;
}

/** The CUDA libraries this build can use: node-llama-cpp's two (prebuilt) or the addon itself (source build with CUDA). */
function cudaLibraries(config: BuildConfig, addonPath: string): CudaLibrary[] {
  const candidates: [CudaLibrary['role'], string][] = config.llamaCppFrom === 'prebuilt'
    ? [['main', config.prebuiltDir], ['fallback', config.prebuiltFallbackDir]].filter(([, dir]) => dir).map(([role, dir]) => [role as CudaLibrary['role'], join(dir as string, 'libggml-cuda.so')])
    : config.backend === 'cuda' ? [['compiled-in', addonPath]] : [];
  return candidates.filter(([, file]) => existsSync(file)).map(([role, file]) => {
    let kernels = null;
    try {
      kernels = readCudaKernels(file);
    } catch {
      // unreadable: judged as having no kernels
    }
    return { role, path: file, kernels };
  });
}

/**
 * Loads the prebuilt backends: the CPU variant, then the CUDA libraries that can run on this
 * machine's GPUs (judged from the driver and their kernels before loading), and says what it found.
 */
function loadBackends(addon: NativeAddon, addonPath: string): CudaReport {
  const config = addon.buildConfig();
  // Read by the driver when it starts (the facts below start it): JIT-compiled kernels must fit.
  const setBySrfNative = process.env.CUDA_CACHE_MAXSIZE === undefined;
  if (setBySrfNative) process.env.CUDA_CACHE_MAXSIZE = KERNEL_CACHE_MAX;
  const driver = driverFacts(addon, config);
  const libraries = cudaLibraries(config, addonPath);
  const tried = librariesToTry(libraries, driver);
  const { cuda: attempts } = addon.loadBackends(tried.map((l) => l.path));
  const loaded = libraries.find((l) => (l.role === 'compiled-in' && driver.gpus.length > 0) || attempts.some((a) => a.loaded && a.path === l.path));
  return {
    driver,
    libraries: libraries.map((l) => ({
      ...l,
      kernelsText: l.kernels ? describeKernels(l.kernels) : 'no CUDA kernels found',
      status: libraryStatus(l, loaded, attempts, driver),
      verdicts: judgeLibrary(l, driver),
    })),
    attempts,
    loaded: loaded?.role ?? '',
    verdicts: verdictsFor(libraries, loaded, driver),
    kernelCache: { dir: process.env.CUDA_CACHE_PATH || join(homedir(), '.nv', 'ComputeCache'), maxSize: process.env.CUDA_CACHE_MAXSIZE ?? '', setBySrfNative },
  };
}

function libraryStatus(library: CudaLibrary, loaded: CudaLibrary | undefined, attempts: CudaLoadAttempt[], driver: DriverFacts): string {
  if (library === loaded) return 'loaded';
  const attempt = attempts.find((a) => a.path === library.path);
  if (attempt) return `did not load: ${attempt.error}`;
  if (!driver.present) return `not tried: ${driver.error || 'no NVIDIA driver'}`;
  if (library.role === 'compiled-in') return 'not used: the driver sees no GPU';
  return loaded ? `not tried: the ${loaded.role} library loaded` : 'not tried: it cannot run on any GPU here';
}

/** What the engine was built with (CUDA or CPU, archs, llama.cpp version), the devices it sees, and what the GPUs can run. */
export function buildInfo(): BuildInfo {
  const raw = native().buildInfo();
  const cuda = cudaReport as CudaReport;
  const running = cuda.libraries.find((l) => l.role === (cuda.loaded || 'main'));
  // On a prebuilt install CMAKE_CUDA_ARCHITECTURES did nothing: say what the library holds.
  const cudaArchitectures = raw.llamaCppFrom === 'prebuilt' ? (running?.kernels?.cubins.join(',') ?? '') : raw.cudaArchitectures;
  // ggml names the CUDA devices CUDA0, CUDA1, ... in the driver's order, the verdicts' order.
  const devices = raw.devices.map((d) => {
    const verdict = /^CUDA(\d+)$/.exec(d.name) ? cuda.verdicts[Number(d.name.slice(4))]?.verdict : undefined;
    return verdict ? { ...d, cudaVerdict: verdict } : d;
  });
  return { ...raw, devices, cudaArchitectures, backendWarning: backendWarning(cuda.driver, cuda.libraries, cuda.attempts), cuda };
}

const fatalFlushes = new Set<() => void>();

function runFatalFlushes(): void {
  for (const flush of fatalFlushes) {
    try {
      flush();
    } catch {
      // the process is ending: the next one may still succeed
    }
  }
}

/**
 * `flush` runs (synchronously, on the JS thread) when llama.cpp is about to abort the process (a
 * CUDA fault): the journal writes out its buffered lines. Returns the function that removes it.
 */
export function onFatalAbort(flush: () => void): () => void {
  fatalFlushes.add(flush);
  return () => fatalFlushes.delete(flush);
}
