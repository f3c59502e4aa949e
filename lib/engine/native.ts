/**
 * Loads the compiled engine (build/Release/srf_native.node) once, with a message that says what
 * to do when it is missing, and hands it the SrfError class so native failures arrive coded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SrfError } from '../errors.js';

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
}

export interface NativeGenerateRequest {
  beforeImage: string;
  afterImage: string;
  prefixKey: string;
  rgb: Uint8Array;
  size: number;
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

export interface BuildInfo {
  backend: 'cuda' | 'cpu';
  gpuChoice: 'auto' | 'cuda' | 'cpu';
  cudaArchitectures: string;
  llamaCppVersion: string;
  /** 'prebuilt': linked against node-llama-cpp's prebuilt libraries (in prebuiltDir); 'source': compiled from its bundle. */
  llamaCppFrom: 'prebuilt' | 'source';
  prebuiltDir: string;
  /** ggml backends registered (prebuilt: loaded at run time from prebuiltDir). */
  backends: string[];
  /** The prebuilt CPU library ggml picked for this machine ('zen4', 'haswell', ...); '' for a source build (its CPU code is compiled in). */
  cpuVariant: string;
  /** Why a backend the build could use is not there (e.g. the CUDA library did not load: no libcublas.so.13); '' when none. */
  backendWarning: string;
  systemInfo: string;
  supportsGpuOffload: boolean;
  devices: { name: string; description: string; type: string; memoryTotal: number; memoryFree: number }[];
}

export interface NativeAddon {
  VisionModel: new (onComplete: CompletionCallback) => NativeVisionModel;
  Embedder: new () => NativeEmbedder;
  buildInfo(): BuildInfo;
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
  return addon;
}

/** What the engine was built with (CUDA or CPU, archs, llama.cpp version) and the devices it sees. */
export function buildInfo(): BuildInfo {
  return native().buildInfo();
}
