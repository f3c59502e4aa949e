/// <reference lib="esnext.disposable" preserve="true" />
/**
 * One native engine on one device: the text GGUF + mmproj GGUF (+ LoRA adapters) loaded off the JS
 * thread, its batching loop fed one request per `generate`. Every call returns a Promise; many in
 * flight are decoded together. Options are checked here, before C++ sees them.
 */
import { createHash } from 'node:crypto';
import { SrfError, invalidArgument } from '../errors.js';
import { checkLoraFile, checkVisionModelFiles } from '../gguf/check.js';
import type { DeviceTarget } from './devices.js';
import { draftFields } from './draft.js';
import { prepareImage } from './image.js';
import { DEFAULT_IMAGE_MAX_TOKENS, hasDynamicImageTokens, readChatTemplateOption, resolveFamily, type ModelFamily } from './families.js';
import { native } from './native.js';
import type { EngineStats, NativeCompletion, NativeVisionModel } from './native.js';
import { INT32_MAX, UINT32_MAX, checkLoraScales, checkSampling } from './option-checks.js';
import { booleanOption, integerOption, numberOption } from '../util/validate.js';
import { MAX_SEQUENCES, defaultThreads, kvSizing, sizeEngine } from './sizing.js';
import type { GenerateRequest, GenerateResult, ImageInput, OpenVisionModelOptions, PreparedImage, ReplicaStats, VisionEngine, VisionModelInfo } from './types.js';

interface Pending {
  resolve(result: NativeCompletion): void;
  reject(error: SrfError): void;
}

function positiveInt(value: unknown, name: string, fallback: number, max = INT32_MAX): number {
  return integerOption(value, name, 1, max, fallback);
}

/** A positive integer option, or undefined when not given (its default depends on the model and the device). */
function optionalPositiveInt(value: unknown, name: string, max: number): number | undefined {
  return value === undefined ? undefined : positiveInt(value, name, 1, max);
}

export class DeviceEngine implements VisionEngine {
  readonly info: VisionModelInfo;
  readonly #engine: NativeVisionModel;
  readonly #pending: Map<number, Pending>;
  #closed = false;
  #closing: Promise<void> | undefined;
  #loraScales: number[];
  /** One abort listener per signal, however many requests share it. */
  #abortGroups = new WeakMap<AbortSignal, Set<number>>();

  private constructor(engine: NativeVisionModel, pending: Map<number, Pending>, info: VisionModelInfo, scales: number[]) {
    this.#engine = engine;
    this.#pending = pending;
    this.info = info;
    this.#loraScales = scales;
  }

  /** Checks the options and the files, sizes the engine, then loads it off the JS thread (on `target` when given). */
  static async open(options: OpenVisionModelOptions, target: DeviceTarget | undefined): Promise<DeviceEngine> {
    if (typeof options.model !== 'string' || !options.model) throw invalidArgument('a GGUF file path', 'model', options.model);
    if (typeof options.mmproj !== 'string' || !options.mmproj) throw invalidArgument('a GGUF file path', 'mmproj', options.mmproj);
    const parallel = optionalPositiveInt(options.parallel, 'parallel', MAX_SEQUENCES - 1);
    const prefixCache = optionalPositiveInt(options.prefixCache, 'prefixCache', MAX_SEQUENCES - 1);
    if (parallel !== undefined && prefixCache !== undefined && parallel + prefixCache > MAX_SEQUENCES) {
      throw invalidArgument(`parallel + prefixCache of at most ${MAX_SEQUENCES}`, 'parallel + prefixCache', parallel + prefixCache);
    }
    const batchSize = positiveInt(options.batchSize, 'batchSize', 512);
    // Every running sequence puts one token into each step's batch: more sequences than the batch
    // holds cannot be decoded together (llama.cpp aborts the process on it).
    if (parallel !== undefined && parallel > batchSize) throw invalidArgument(`parallel of at most batchSize (${batchSize})`, 'parallel', parallel);
    const contextSize = optionalPositiveInt(options.contextSize, 'contextSize', UINT32_MAX);
    const gpuLayersOption = integerOption(options.gpuLayers, 'gpuLayers', -1, INT32_MAX, -1);
    // A replica pinned to the CPU keeps every layer there, whatever was asked for the GPUs.
    const gpuLayers = target && !target.onGpu ? 0 : gpuLayersOption;
    // 0 asks for every core (llama.cpp's own choice); unset is every core but one.
    const threads = integerOption(options.threads, 'threads', 0, 4096, defaultThreads());
    const samplingThreads = integerOption(options.samplingThreads, 'samplingThreads', 0, 256, 0);
    if (options.flashAttention !== undefined) booleanOption(options.flashAttention, 'flashAttention', false);
    const gpuVision = booleanOption(options.gpuVision, 'gpuVision', true);
    const requestTokens = positiveInt(options.requestTokens, 'requestTokens', 448);
    const imageMinTokens = optionalPositiveInt(options.imageMinTokens, 'imageMinTokens', 1 << 20);
    const imageMaxTokensAsked = optionalPositiveInt(options.imageMaxTokens, 'imageMaxTokens', 1 << 20);
    if (imageMinTokens !== undefined && imageMaxTokensAsked !== undefined && imageMinTokens > imageMaxTokensAsked) {
      throw invalidArgument(`imageMinTokens of at most imageMaxTokens (${imageMaxTokensAsked})`, 'imageMinTokens', imageMinTokens);
    }
    const chatTemplate = await readChatTemplateOption(options.chatTemplate);
    const loras = options.loras ?? [];
    if (!Array.isArray(loras)) throw invalidArgument('an array of { path, scale }', 'loras', loras);

    const files = await checkVisionModelFiles(options.model, options.mmproj);
    for (const lora of loras) {
      if (typeof lora?.path !== 'string') throw invalidArgument('a LoRA GGUF path', 'loras[].path', lora?.path);
      numberOption(lora.scale, 'loras[].scale', -1e6, 1e6, 1);
      await checkLoraFile(lora.path, files.text);
    }
    // The dynamic-resolution families (Qwen-VL) get a cap on image tokens unless the caller sets one,
    // and the KV sizing counts that many per image.
    const dynamic = hasDynamicImageTokens(files);
    const imageMaxTokens = dynamic ? (imageMaxTokensAsked ?? Math.max(DEFAULT_IMAGE_MAX_TOKENS, imageMinTokens ?? 0)) : undefined;
    const sizedFiles = imageMaxTokens !== undefined ? { ...files, vision: { ...files.vision, imageTokens: imageMaxTokens } } : files;
    const sizing = await kvSizing(sizedFiles, options, gpuLayers, requestTokens, target);
    const sizes = sizeEngine({ parallel, prefixCache, contextSize, kvLayout: options.kvLayout, batchSize, requestTokens }, sizedFiles, sizing);

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
      contextSize: sizes.contextSize,
      unifiedKv: sizes.kvLayout === 'unified',
      parallel: sizes.parallel,
      prefixCache: sizes.prefixCache,
      batchSize,
      threads,
      samplingThreads,
      flashAttention: options.flashAttention,
      gpuVision: target && !target.onGpu ? false : gpuVision,
      ...(target?.device ? { device: target.device } : {}),
      label: target?.label ?? 'the engine',
      replica: target?.replica ?? -1,
      ...(dynamic && imageMinTokens !== undefined ? { imageMinTokens } : {}),
      ...(imageMaxTokens !== undefined ? { imageMaxTokens } : {}),
    });
    let family: ModelFamily;
    try {
      const [low, high] = nativeInfo.imageTokenRange;
      family = resolveFamily(files, nativeInfo.vocab, [low, high], chatTemplate);
    } catch (error) {
      await engine.close();
      throw error;
    }
    const imageTokens = family.images === 'pad-square' ? files.vision.imageTokens : sizedFiles.vision.imageTokens;
    const info = { ...nativeInfo, files, family, imageSize: family.images === 'pad-square' ? files.vision.imageSize : 0, imageTokens, devices: [target?.label ?? 'default'] };
    return new DeviceEngine(engine, pending, info, scales);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get loraScales(): readonly number[] {
    return this.#loraScales;
  }

  prepareImage(input: ImageInput): Promise<PreparedImage> {
    return prepareImage(input, this.info.family.images === 'pad-square' ? this.info.imageSize : 'native');
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    this.#assertOpen();
    if (typeof request?.prompt !== 'string') throw invalidArgument('a string', 'prompt', request?.prompt);
    const sampling = checkSampling(request.sampling);
    const signal = request.signal;
    if (signal?.aborted) throw new SrfError('ABORTED', 'the request was cancelled before it started');
    const image = await this.prepareImage(request.image);
    this.#assertOpen();
    if (signal?.aborted) throw new SrfError('ABORTED', 'the request was cancelled before it started');
    const prompt = this.info.family.prompt(request.prompt);
    const beforeImage = prompt.beforeImage;
    // Keyed on the pixels the engine receives, not on image.hash: a PreparedImage is a plain
    // object whose rgb a caller may have changed since it was prepared. (A square image keeps its
    // old key: `size`; any other its width and height.)
    const shape = image.size > 0 ? `${image.size}` : `${image.nx}x${image.ny}`;
    const prefixKey = createHash('sha256').update(beforeImage).update(`\0${shape}\0`).update(image.rgb).digest('hex');
    const id = this.#engine.submit({
      beforeImage,
      afterImage: prompt.afterImage,
      ...(prompt.afterImageParts ? { afterImageParts: prompt.afterImageParts } : {}),
      prefixKey,
      rgb: image.rgb,
      ...(image.size > 0 ? { size: image.size } : { nx: image.nx, ny: image.ny }),
      ...sampling,
      ...draftFields(request.draft, sampling, this.info.vocabSize, request.scoreDraft),
      draftEnd: this.info.family.replyEndToken,
    });
    const group = signal ? this.#abortGroup(signal) : undefined;
    group?.add(id);
    try {
      return await this.#wait(id);
    } finally {
      group?.delete(id);
    }
  }

  /** Scales of the LoRA adapters loaded with the model, one per adapter (0 = off). Applied between requests. */
  async setLoraScales(scales: number[]): Promise<void> {
    this.#assertOpen();
    const checked = checkLoraScales(scales, this.info.loras);
    await this.#wait(this.#engine.setLoraScales(checked));
    this.#loraScales = checked;
  }

  stats(): EngineStats {
    return this.#engine.stats();
  }

  replicaStats(): ReplicaStats[] {
    const engine = this.stats();
    return [{ device: this.info.devices[0] ?? 'default', down: false, engine, requests: engine.completed + engine.failed }];
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this.#engine.close();
    }
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closed) throw new SrfError('CLOSED', 'the model is closed');
  }

  #abortGroup(signal: AbortSignal): Set<number> {
    let group = this.#abortGroups.get(signal);
    if (!group) {
      const ids = new Set<number>();
      signal.addEventListener('abort', () => ids.forEach((id) => this.#engine.cancel(id)), { once: true });
      this.#abortGroups.set(signal, ids);
      group = ids;
    }
    return group;
  }

  #wait(id: number): Promise<NativeCompletion> {
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }
}
