/// <reference lib="esnext.disposable" preserve="true" />
/**
 * A loaded LLaVA-style vision model: the text GGUF + mmproj GGUF (+ LoRA adapters) in the native
 * engine. Every call returns a Promise and never blocks the JS thread; many calls in flight are
 * decoded together in one batch by the engine. The three Triangular Consistency calls are built
 * on the LLaVA-1.5 prompt (lib/srf/prompts.ts).
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { SrfError, invalidArgument, isSrfError } from './errors.js';
import { checkLoraFile, checkVisionModelFiles } from './gguf/check.js';
import type { VisionModelFileInfo } from './gguf/check.js';
import { draftFields } from './engine/draft.js';
import { prepareImage } from './engine/image.js';
import { isGpu, resolveDevices, type DeviceTarget } from './engine/devices.js';
import { chooseKvLayout, defaultParallel, kvBytesPerCell, perSequenceCells } from './engine/kv-layout.js';
import type { DeviceFacts } from './engine/kv-layout.js';
import { native } from './engine/native.js';
import { INT32_MAX, UINT32_MAX, booleanOption, checkSampling, integerOption, numberOption } from './engine/option-checks.js';
import type { EngineStats, NativeCompletion, NativeVisionModel, NativeVisionModelInfo } from './engine/native.js';
import { ReplicaRouter, type ReplicaStats } from './engine/replicas.js';
import { parseQaReply, cleanReply } from './srf/parse.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES, llavaPromptParts } from './srf/prompts.js';
import type { PromptTemplates } from './srf/prompts.js';
import type {
  GenerateRequest,
  GenerateResult,
  ImageInput,
  ItemResult,
  KvLayout,
  OpenVisionModelOptions,
  PreparedImage,
  QAPair,
  SamplingOptions,
  TextReply,
} from './engine/types.js';

export interface VisionModelInfo extends NativeVisionModelInfo {
  files: VisionModelFileInfo;
  imageSize: number;
  imageTokens: number;
  /** Where the engine runs: one entry per replica (`cpu`, `gpu 0 (CUDA0)`); parallel, contextSize etc. are per replica. */
  devices: string[];
}

export interface TaskCallOptions {
  /** Overrides of the task's decoding defaults (DEFAULT_DECODING). */
  sampling?: SamplingOptions;
  templates?: Partial<PromptTemplates>;
  signal?: AbortSignal;
}

interface Pending {
  resolve(result: NativeCompletion): void;
  reject(error: SrfError): void;
}

function positiveInt(value: unknown, name: string, fallback: number, max = INT32_MAX): number {
  return integerOption(value, name, 1, max, fallback);
}

/** Cache sequences llama.cpp allows in one context (running + cached prefixes). */
const MAX_SEQUENCES = 256;

/** What the sizing defaults (lib/engine/kv-layout.ts) need to know about a model and where it will run. */
export interface KvSizing {
  device: DeviceFacts;
  /** Cells per stream in the per-sequence layout. */
  cellsPerSequence: number;
  /** Per-sequence KV bytes for `running` sequences plus `cached` image prefixes. */
  perSequenceBytes: (running: number, cached: number) => number;
}

/** The sizing facts for these model files opened with `gpuLayers` and `requestTokens`. */
export async function kvSizing(files: VisionModelFileInfo, paths: { model: string; mmproj: string }, gpuLayers: number, requestTokens: number, target?: DeviceTarget): Promise<KvSizing> {
  const build = native().buildInfo();
  // A replica pinned to one GPU has that GPU's memory; one on the CPU has none; else llama.cpp splits over all.
  const gpus = build.devices.filter((d) => isGpu(d) && (target === undefined || (target.onGpu && d.name === target.device)));
  const onGpu = gpuLayers !== 0 && build.supportsGpuOffload && gpus.length > 0;
  const device: DeviceFacts = {
    onGpu,
    totalMemory: totalmem(),
    gpuMemoryFree: gpus.reduce((sum, d) => sum + d.memoryFree, 0),
    // Only the GPU choices read it.
    weightBytes: onGpu ? (await stat(paths.model)).size + (await stat(paths.mmproj)).size : 0,
  };
  const cellsPerSequence = perSequenceCells(files.vision.imageTokens, requestTokens);
  const bytesPerCell = kvBytesPerCell(files.text);
  return { device, cellsPerSequence, perSequenceBytes: (running, cached) => (running + cached) * cellsPerSequence * bytesPerCell };
}

export class VisionModel implements AsyncDisposable {
  readonly info: VisionModelInfo;
  /** Undefined when this model is replicas behind #router. */
  #engine: NativeVisionModel | undefined;
  #router: ReplicaRouter | undefined;
  #pending = new Map<number, Pending>();
  #closed = false;
  #closing: Promise<void> | undefined;
  #loraScales: number[];
  /** One abort listener per signal, however many requests share it. */
  #abortGroups = new WeakMap<AbortSignal, Set<number>>();

  private constructor(engine: NativeVisionModel | undefined, pending: Map<number, Pending>, info: VisionModelInfo, scales: number[], router?: ReplicaRouter) {
    this.#engine = engine;
    this.#router = router;
    this.#pending = pending;
    this.info = info;
    this.#loraScales = scales;
  }

  /** Checks the files, then loads them off the JS thread; with several `devices`, one engine replica per device. */
  static async open(options: OpenVisionModelOptions): Promise<VisionModel> {
    if (typeof options !== 'object' || options === null) throw invalidArgument('an options object', 'options', options);
    if (options.devices === undefined) return VisionModel.#openOne(options, undefined);
    const targets = resolveDevices(options.devices);
    if (targets.length <= 1) return VisionModel.#openOne(options, targets[0]);
    return VisionModel.#openReplicas(options, targets);
  }

  /** One replica per target, each with its share of the CPU threads when on the CPU. */
  static async #openReplicas(options: OpenVisionModelOptions, targets: DeviceTarget[]): Promise<VisionModel> {
    const onCpu = targets.filter((t) => !t.onGpu).length;
    const threads = onCpu > 0 ? Math.max(1, Math.floor((options.threads ?? availableParallelism()) / onCpu)) : options.threads;
    // Each engine samples its rows on a pool sized to the cores: replicas share them.
    const samplingThreads = options.samplingThreads ?? Math.max(1, Math.floor(availableParallelism() / targets.length));
    const opened = await Promise.allSettled(
      targets.map((t) => VisionModel.#openOne({ ...options, samplingThreads, ...(threads !== undefined && !t.onGpu ? { threads } : {}) }, t)),
    );
    const models = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) {
      await Promise.all(models.map((m) => m.close()));
      throw failed.reason;
    }
    const router = new ReplicaRouter(models, targets.map((t) => t.label), options.onReplicaFailure);
    const first = models[0] as VisionModel;
    return new VisionModel(undefined, new Map(), { ...first.info, devices: router.devices }, [...first.loraScales], router);
  }

  static async #openOne(options: OpenVisionModelOptions, target: DeviceTarget | undefined): Promise<VisionModel> {
    if (typeof options.model !== 'string' || !options.model) throw invalidArgument('a GGUF file path', 'model', options.model);
    if (typeof options.mmproj !== 'string' || !options.mmproj) throw invalidArgument('a GGUF file path', 'mmproj', options.mmproj);
    // Validated now; their defaults depend on the model and the device (below).
    const explicitParallel = options.parallel === undefined ? undefined : positiveInt(options.parallel, 'parallel', 1, MAX_SEQUENCES - 1);
    const explicitPrefixCache = options.prefixCache === undefined ? undefined : positiveInt(options.prefixCache, 'prefixCache', 1, MAX_SEQUENCES - 1);
    if (explicitParallel !== undefined && explicitPrefixCache !== undefined && explicitParallel + explicitPrefixCache > MAX_SEQUENCES) {
      throw invalidArgument(`parallel + prefixCache of at most ${MAX_SEQUENCES}`, 'parallel + prefixCache', explicitParallel + explicitPrefixCache);
    }
    const batchSize = positiveInt(options.batchSize, 'batchSize', 512);
    // Every running sequence puts one token into each step's batch: more sequences than the batch
    // holds cannot be decoded together (llama.cpp aborts the process on it).
    if (explicitParallel !== undefined && explicitParallel > batchSize) {
      throw invalidArgument(`parallel of at most batchSize (${batchSize})`, 'parallel', explicitParallel);
    }
    const gpuLayersOption = integerOption(options.gpuLayers, 'gpuLayers', -1, INT32_MAX, -1);
    // A replica pinned to the CPU keeps every layer there, whatever was asked for the GPUs.
    const gpuLayers = target && !target.onGpu ? 0 : gpuLayersOption;
    const threads = integerOption(options.threads, 'threads', 0, 4096, 0);
    if (options.flashAttention !== undefined) booleanOption(options.flashAttention, 'flashAttention', false);
    const gpuVision = booleanOption(options.gpuVision, 'gpuVision', true);
    const loras = options.loras ?? [];
    if (!Array.isArray(loras)) throw invalidArgument('an array of { path, scale }', 'loras', loras);

    const files = await checkVisionModelFiles(options.model, options.mmproj);
    for (const lora of loras) {
      if (typeof lora?.path !== 'string') throw invalidArgument('a LoRA GGUF path', 'loras[].path', lora?.path);
      numberOption(lora.scale, 'loras[].scale', -1e6, 1e6, 1);
      await checkLoraFile(lora.path, files.text);
    }
    const imageTokens = files.vision.imageTokens;
    const requestTokens = positiveInt(options.requestTokens, 'requestTokens', 448);
    const sizing = await kvSizing(files, options, gpuLayers, requestTokens, target);
    // A given contextSize fixes the memory: the default count stays 8 rather than split it 32 ways.
    // A default count never exceeds the batch (see batchSize above) nor the sequence limit.
    const parallel =
      explicitParallel ??
      Math.min(
        options.contextSize === undefined ? defaultParallel(sizing.device, (n) => sizing.perSequenceBytes(n, explicitPrefixCache ?? n)) : 8,
        batchSize,
        MAX_SEQUENCES - (explicitPrefixCache ?? 1),
      );
    const prefixCache = explicitPrefixCache ?? Math.min(parallel, MAX_SEQUENCES - parallel);
    const kvLayout = chooseKvLayout(options.kvLayout, {
      ...sizing.device,
      perSequenceBytes: options.contextSize !== undefined ? options.contextSize * kvBytesPerCell(files.text) : sizing.perSequenceBytes(parallel, prefixCache),
    });
    // unified: room for every cached image prefix plus each running sequence's prompt and reply.
    // per-sequence: every sequence (running, or a cached prefix) gets a whole request's room.
    const contextSize = positiveInt(
      options.contextSize,
      'contextSize',
      kvLayout === 'unified' ? prefixCache * (imageTokens + 64) + parallel * Math.max(512, requestTokens) : (parallel + prefixCache) * sizing.cellsPerSequence,
      UINT32_MAX,
    );
    const pending = new Map<number, Pending>();
    const engine = new (native().VisionModel)((id, error, result) => {
      const waiter = pending.get(id);
      if (!waiter) return;
      pending.delete(id);
      if (error) waiter.reject(error);
      else waiter.resolve(result!);
    });
    const scales = loras.map((l) => l.scale ?? 1);
    const nativeInfo = await engine.load({
      model: options.model,
      mmproj: options.mmproj,
      loras: loras.map((l, i) => ({ path: l.path, scale: scales[i] })),
      gpuLayers,
      contextSize,
      unifiedKv: kvLayout === 'unified',
      parallel,
      prefixCache,
      batchSize,
      threads,
      samplingThreads: integerOption(options.samplingThreads, 'samplingThreads', 0, 256, 0),
      flashAttention: options.flashAttention,
      gpuVision: target && !target.onGpu ? false : gpuVision,
      ...(target?.device ? { device: target.device } : {}),
    });
    return new VisionModel(engine, pending, { ...nativeInfo, files, imageSize: files.vision.imageSize, imageTokens, devices: [target?.label ?? 'default'] }, scales);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Decodes, orients, pads and resizes an image for this model (reusable across calls). */
  prepareImage(input: ImageInput): Promise<PreparedImage> {
    return prepareImage(input, this.info.imageSize);
  }

  /** One reply to `{system} USER: <image>\n{prompt} ASSISTANT:`. */
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    this.#assertOpen();
    if (this.#router) return this.#router.generate(request);
    const engine = this.#engine as NativeVisionModel;
    if (typeof request?.prompt !== 'string') throw invalidArgument('a string', 'prompt', request?.prompt);
    const sampling = checkSampling(request.sampling);
    const signal = request.signal;
    if (signal?.aborted) throw new SrfError('ABORTED', 'the request was cancelled before it started');
    const image = await this.prepareImage(request.image);
    this.#assertOpen();
    if (signal?.aborted) throw new SrfError('ABORTED', 'the request was cancelled before it started');
    const { beforeImage, afterImage } = llavaPromptParts(request.prompt);
    // Keyed on the pixels the engine receives, not on image.hash: a PreparedImage is a plain
    // object whose rgb a caller may have changed since it was prepared.
    const prefixKey = createHash('sha256').update(beforeImage).update(`\0${image.size}\0`).update(image.rgb).digest('hex');
    const id = engine.submit({
      beforeImage,
      afterImage,
      prefixKey,
      rgb: image.rgb,
      size: image.size,
      ...sampling,
      ...draftFields(request.draft, sampling, this.info.vocabSize),
    });
    const group = signal ? this.#abortGroup(signal) : undefined;
    group?.add(id);
    try {
      return await this.#wait(id);
    } finally {
      group?.delete(id);
    }
  }

  /** Many requests at once; each item settles on its own (a bad image fails only its item). */
  generateBatch(requests: GenerateRequest[]): Promise<ItemResult<GenerateResult>[]> {
    return settleAll(requests.map((r) => this.generate(r)));
  }

  /**
   * I->QA: each image in, one question and its answer out (sampled, held to `Question:/Answer:`).
   * Item i is sampled with seed `sampling.seed + i`.
   */
  async imageToQA(images: ImageInput[], options: TaskCallOptions = {}): Promise<ItemResult<QAPair>[]> {
    const templates = { ...DEFAULT_TEMPLATES, ...options.templates };
    const sampling = { ...DEFAULT_DECODING.iToQa, ...options.sampling };
    return settleAll(
      images.map(async (image, i) => {
        const seeded = { ...sampling, seed: (sampling.seed ?? 0) + i };
        const { text } = await this.generate({ image, prompt: templates.iToQaInstruction, sampling: seeded, signal: options.signal });
        const parsed = parseQaReply(text);
        if (!parsed.ok) throw new SrfError('DATA_INVALID', `the I->QA reply could not be parsed (${parsed.reason}): ${JSON.stringify(text.slice(0, 200))}`);
        return { question: parsed.question, answer: parsed.answer, raw: text };
      }),
    );
  }

  /** IA->Q: image + answer in, the question that answer responds to out (greedy). */
  answerToQuestion(items: { image: ImageInput; answer: string }[], options: TaskCallOptions = {}): Promise<ItemResult<TextReply>[]> {
    const templates = { ...DEFAULT_TEMPLATES, ...options.templates };
    return this.#textTask(items.map((it) => ({ image: it.image, prompt: templates.iaToQInstruction(it.answer) })), 'iaToQ', options);
  }

  /** IQ->A: image + question in, the answer out (greedy): ordinary visual question answering. */
  questionToAnswer(items: { image: ImageInput; question: string }[], options: TaskCallOptions = {}): Promise<ItemResult<TextReply>[]> {
    const templates = { ...DEFAULT_TEMPLATES, ...options.templates };
    return this.#textTask(items.map((it) => ({ image: it.image, prompt: templates.iqToAInstruction(it.question) })), 'iqToA', options);
  }

  /** Scales of the LoRA adapters loaded with the model, one per adapter (0 = off). Applied between requests. */
  async setLoraScales(scales: number[]): Promise<void> {
    this.#assertOpen();
    if (!Array.isArray(scales) || scales.length !== this.info.loras || !scales.every(Number.isFinite)) {
      throw invalidArgument(`an array of ${this.info.loras} finite numbers`, 'scales', scales);
    }
    if (this.#router) await this.#router.setLoraScales(scales);
    else await this.#wait((this.#engine as NativeVisionModel).setLoraScales(scales));
    this.#loraScales = [...scales];
  }

  get loraScales(): readonly number[] {
    return this.#loraScales;
  }

  /** Counters of the batching loop (for progress and benchmarks). */
  stats(): EngineStats {
    return this.#router ? this.#router.stats() : (this.#engine as NativeVisionModel).stats();
  }

  /** Per replica (device, requests, whether it failed, its counters); one entry without replicas. */
  replicaStats(): ReplicaStats[] {
    if (this.#router) return this.#router.replicaStats();
    const engine = this.stats();
    return [{ device: this.info.devices[0] ?? 'default', down: false, engine, requests: engine.completed + engine.failed }];
  }

  /** Frees the model and its GPU memory now; pending requests reject with CLOSED. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this.#router ? this.#router.close() : (this.#engine as NativeVisionModel).close();
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new SrfError('CLOSED', 'the model is closed');
  }

  #abortGroup(signal: AbortSignal): Set<number> {
    let group = this.#abortGroups.get(signal);
    if (!group) {
      const ids = new Set<number>();
      signal.addEventListener('abort', () => ids.forEach((id) => this.#engine?.cancel(id)), { once: true });
      this.#abortGroups.set(signal, ids);
      group = ids;
    }
    return group;
  }

  #wait(id: number): Promise<NativeCompletion> {
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  #textTask(
    requests: { image: ImageInput; prompt: string }[],
    task: 'iaToQ' | 'iqToA',
    options: TaskCallOptions,
  ): Promise<ItemResult<TextReply>[]> {
    const sampling = { ...DEFAULT_DECODING[task], ...options.sampling };
    return settleAll(
      requests.map(async ({ image, prompt }) => {
        const { text } = await this.generate({ image, prompt, sampling, signal: options.signal });
        return { text: cleanReply(text), raw: text };
      }),
    );
  }
}

async function settleAll<T extends object>(promises: Promise<T>[]): Promise<ItemResult<T>[]> {
  const settled = await Promise.allSettled(promises);
  return settled.map((s) => {
    if (s.status === 'fulfilled') return { ok: true as const, ...s.value };
    const error = isSrfError(s.reason)
      ? s.reason
      : new SrfError('DECODE_FAILED', (s.reason as Error)?.message ?? String(s.reason), { cause: s.reason });
    return { ok: false as const, error };
  });
}
