/** The engine's types: what a request, a reply, an engine and its options are. */
import type { SrfError } from '../errors.js';
import type { VisionModelFileInfo } from '../gguf/check.js';
import type { DeviceSpec } from './devices.js';
import type { ModelFamily } from './families.js';
import type { EngineStats, NativeVisionModelInfo } from './native.js';

/** An image as the user hands it over: a file path, encoded bytes, or an already prepared image. */
export type ImageInput = string | Uint8Array | PreparedImage;

/**
 * Pixels ready for the vision encoder, RGB: for LLaVA-1.5 square, `size` x `size`, padded with the
 * CLIP mean colour; for the other families the image at its own size (`size` 0), which mtmd
 * preprocesses.
 */
export interface PreparedImage {
  readonly kind: 'prepared-image';
  /** Where the image came from (path, or '<buffer>'), for messages. */
  readonly source: string;
  /** The square side it was padded and resized to; 0 when it keeps its own size. */
  readonly size: number;
  /** Width and height of `rgb` (both `size` for a square). */
  readonly nx: number;
  readonly ny: number;
  /** nx*ny*3 bytes, RGB. */
  readonly rgb: Uint8Array;
  /** Hex digest of the pixels: the key of the image-prefix cache. */
  readonly hash: string;
  /** Original width/height after EXIF orientation, before padding. */
  readonly width: number;
  readonly height: number;
}

/** Numbers out of range (or NaN, or fractions where integers are meant) are INVALID_ARGUMENT. */
export interface SamplingOptions {
  /** A finite number >= 0; 0 (default) = greedy. */
  temperature?: number;
  /** Nucleus sampling, in [0, 1]; 1 = off. Default 1. */
  topP?: number;
  /**
   * Candidates kept before top-p (temperature > 0). Default 40, the first sampler of llama.cpp's
   * default chain too: without it, top-p over a flat distribution sorts the whole vocabulary for
   * every row of every step. An integer >= 0; 0 = off (the whole vocabulary).
   */
  topK?: number;
  /** Seed for temperature sampling, an integer in [0, 2^32 - 1]; same seed, same request, same text. Default 0. */
  seed?: number;
  /** An integer >= 1. Default 128. */
  maxTokens?: number;
  /** Keep generating past end-of-sequence (benchmarks). */
  ignoreEos?: boolean;
  /** A GBNF grammar (root rule `root`) the reply is held to. */
  grammar?: string;
}

export interface GenerateRequest {
  image: ImageInput;
  /** The user's text after the image (for LLaVA-1.5 the `{...}` in `USER: <image>\n{...} ASSISTANT:`; for the others the user turn's text in the model's chat template). */
  prompt: string;
  sampling?: SamplingOptions;
  signal?: AbortSignal;
  /**
   * Greedy requests without a grammar (temperature 0): the reply you expect, as text or token ids
   * (e.g. the question an IA->Q call should reconstruct). The engine verifies several draft tokens
   * per step and keeps those the model itself would have chosen, so the reply is the greedy reply,
   * only sooner when the draft is right (up to the rounding by which llama.cpp's kernels make any
   * greedy reply depend slightly on what else is decoded in its steps: bench/NOTES.md).
   * stats().draftTokens / draftAccepted count them. Text is tokenized as the start of a reply.
   */
  draft?: string | number[];
  /**
   * Score the draft instead of generating: the reply is the draft, every token taken whatever the
   * model would choose, and `draftLogProbs` holds each one's log-probability under the model (all of
   * them, past any token the model disagrees with). Greedy requests with a draft only.
   */
  scoreDraft?: boolean;
}

export type FinishReason = 'eos' | 'length' | 'grammar';

export interface GenerateResult {
  text: string;
  finishReason: FinishReason;
  /** Tokens evaluated for this request beyond the shared image prefix. */
  promptTokens: number;
  /** Tokens of the shared image prefix (system text + image embedding). */
  prefixTokens: number;
  /** Whether the image prefix came from the cache instead of being evaluated for this request. */
  prefixReused: boolean;
  generatedTokens: number;
  /** The reply's token ids (end token excluded): a later greedy request can take them as its `draft`. */
  tokens: number[];
  /** scoreDraft: log P of each draft token (end token included when the draft ends with one). */
  draftLogProbs?: number[];
}

/** One item of a batched call: it either worked or carries its own error; one bad image never fails the batch. */
export type ItemResult<T> = ({ ok: true } & T) | { ok: false; error: SrfError };

export interface LoraAdapterOptions {
  path: string;
  /** Default 1. */
  scale?: number;
}

export type KvLayout = 'unified' | 'per-sequence';

export interface OpenVisionModelOptions {
  /** Text model GGUF (LLaVA-1.5's language model, or Qwen2.5-VL's, Gemma 3's, ...: engine/families.ts). */
  model: string;
  /** mmproj GGUF (vision encoder + projector; its clip.projector_type names the family). */
  mmproj: string;
  loras?: LoraAdapterOptions[];
  /** Layers to offload to the GPU; default all when a GPU is present. */
  gpuLayers?: number;
  /**
   * KV cache size in tokens, all sequences together; default sized from parallel, prefixCache and
   * the image size. With kvLayout 'per-sequence' each of the parallel + prefixCache sequences gets
   * an equal share, which bounds one request: image prefix + prompt + maxTokens.
   */
  contextSize?: number;
  /**
   * How sequences share the KV cache. 'unified': one pool; a request's image prefix is shared, not
   * copied, and the pool is budgeted across requests (least memory). 'per-sequence': one stream per
   * sequence; a request gets a copy of its prefix and attention reads only its own cells (on CPU
   * ~25 % more triplets/s with the small bench model, less for wide models, bench/NOTES.md; about twice the KV memory). 'auto' (default):
   * per-sequence when the model runs on the CPU and that KV cache takes at most a quarter of the
   * machine's memory, unified otherwise (and on a GPU). `info.kvLayout` says which was used.
   */
  kvLayout?: KvLayout | 'auto';
  /**
   * The most tokens one request needs after its image (prompt text + maxTokens); sizes the default
   * contextSize. Default 448 (the method's I->QA call: ~45 prompt + 256 reply tokens, with room).
   */
  requestTokens?: number;
  /**
   * Sequences decoded together, at most batchSize (each puts a token into every step's batch);
   * parallel + prefixCache at most 256. Default 8 on CPU; on a GPU the most of 32, 24, 16 whose
   * per-sequence KV cache fits beside the weights in 80 % of its free memory (else 8); a default is
   * lowered to batchSize when that is smaller.
   */
  parallel?: number;
  /** Image prefixes kept evaluated in the KV cache. Default = parallel. */
  prefixCache?: number;
  /** CPU threads. Default: every core but one (one is left to the JS thread, sampling and images); 0: every core. */
  threads?: number;
  /**
   * Threads sampling the rows of a decode step in parallel (each request's sampler is its own, so
   * the tokens do not depend on this number). An integer in [0, 256]; 0 (default): the machine's
   * cores, at most 16.
   */
  samplingThreads?: number;
  /** Tokens per llama_batch. Default 512. */
  batchSize?: number;
  /** Flash attention in the text model. Default: llama.cpp's choice (on where supported). */
  flashAttention?: boolean;
  /** Use the GPU for the vision encoder when present. Default true. */
  gpuVision?: boolean;
  /**
   * One engine replica per device, all behind this model (engine/replicas.ts): 'all' (every GPU), GPU
   * numbers as `srf-native info` lists them, 'cpu' (repeatable), or a list such as '0,1'; 'split':
   * one engine, layers split over the GPUs by llama.cpp (also the default here).
   */
  devices?: 'all' | 'split' | DeviceSpec[] | string;
  /** Called when a replica fails and its requests move to the others. */
  onReplicaFailure?: (failure: ReplicaFailure) => void;
  /**
   * Fail with GPU_REQUIRED, before loading anything, when the work would not run on a GPU (no CUDA
   * library loaded, gpuLayers 0, every device the CPU); the message says why. Default: the
   * SRF_REQUIRE_GPU=1 environment variable.
   */
  requireGpu?: boolean;
  /**
   * The prompt format instead of the model's own: 'vicuna_v1' (LLaVA-1.5's), 'chatml', 'gguf' (the
   * text GGUF's tokenizer.chat_template), or a Jinja template file. Default: the family's (vicuna_v1
   * for LLaVA-1.5 and MobileVLM, the GGUF's template for the others, chatml where there is none).
   */
  chatTemplate?: string;
  /** Families with dynamic image resolution (Qwen-VL): the fewest image tokens an image becomes. Default mtmd's. */
  imageMinTokens?: number;
  /** Families with dynamic image resolution (Qwen-VL): the most image tokens an image becomes. Default 1024. */
  imageMaxTokens?: number;
}

export interface OpenEmbedderOptions {
  /** BERT-family GGUF. */
  model: string;
  gpuLayers?: number;
  threads?: number;
  /** Longest text in tokens; longer texts are truncated. Default: the model's context length (max 512). */
  maxTokens?: number;
}

export interface Embedding {
  /** Pooled sentence vector, L2-normalised. */
  pooled: Float32Array;
  /** One vector per token (no special tokens), L2-normalised, for BERTScore. */
  tokens: Float32Array[];
}

export interface VisionModelInfo extends NativeVisionModelInfo {
  files: VisionModelFileInfo;
  /** The model's family: its prompt format, image handling, end tokens and trainer format (engine/families.ts). */
  family: ModelFamily;
  /** The square side images are padded to (LLaVA-1.5, MobileVLM); 0 where images keep their own size. */
  imageSize: number;
  /** Image tokens per image: the count (LLaVA-1.5), or the most one image can become (what the KV cache is sized for). */
  imageTokens: number;
  /** Where the engine runs: one entry per replica (`cpu`, `gpu 0 (CUDA0)`); parallel, contextSize etc. are per replica. */
  devices: string[];
}

export interface ReplicaFailure {
  /** 0-based replica number, in the order of `devices`. */
  replica: number;
  device: string;
  error: SrfError;
  /** Requests it held besides the failing one, sent to the other replicas. */
  handedBack: number;
  /** Replicas still running. */
  remaining: number;
}

export interface ReplicaStats {
  device: string;
  /** Whether it failed (and was closed). */
  down: boolean;
  engine: EngineStats;
  /** Requests routed to this replica (retries included). */
  requests: number;
}

/**
 * A loaded vision engine: one native engine on one device, or replicas of it behind a router
 * (engine/replicas.ts). It knows requests and replies, nothing of the method.
 */
export interface VisionEngine {
  readonly info: VisionModelInfo;
  readonly closed: boolean;
  readonly loraScales: readonly number[];
  /** Decodes, orients, pads and resizes an image for this model (reusable across calls). */
  prepareImage(input: ImageInput): Promise<PreparedImage>;
  /** One reply to an image and `prompt` in the family's prompt format (LLaVA-1.5: `{system} USER: <image>\n{prompt} ASSISTANT:`). */
  generate(request: GenerateRequest): Promise<GenerateResult>;
  setLoraScales(scales: number[]): Promise<void>;
  stats(): EngineStats;
  replicaStats(): ReplicaStats[];
  /** Frees the model and its GPU memory now; pending requests reject with CLOSED. */
  close(): Promise<void>;
}
