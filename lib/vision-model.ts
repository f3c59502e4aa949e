/// <reference lib="esnext.disposable" preserve="true" />
/**
 * VisionModel, the public class: a loaded LLaVA-style vision engine (engine/) plus the method's
 * three calls, I->QA, IA->Q and IQ->A, as the triangle's legs (srf/triangle.ts). Every call returns
 * a Promise and never blocks the JS thread; many calls in flight are decoded together.
 */
import { SrfError, isSrfError } from './errors.js';
import type { EngineStats } from './engine/native.js';
import type {
  GenerateRequest,
  GenerateResult,
  ImageInput,
  ItemResult,
  OpenVisionModelOptions,
  PreparedImage,
  ReplicaStats,
  SamplingOptions,
  VisionEngine,
  VisionModelInfo,
} from './engine/types.js';
import { openVisionEngine } from './engine/vision-engine.js';
import { parseQaReply } from './srf/parse.js';
import { DEFAULT_DECODING, DEFAULT_TEMPLATES, type PromptTemplates, type TaskName } from './srf/prompts.js';
import { askImage, imageSeed, reconstructAnswer, reconstructQuestion, type QAPair, type TextReply } from './srf/triangle.js';

export type { VisionModelInfo } from './engine/types.js';

export interface TaskCallOptions {
  /** Overrides of the task's decoding defaults (DEFAULT_DECODING). */
  sampling?: SamplingOptions;
  templates?: Partial<PromptTemplates>;
  signal?: AbortSignal;
}

/** The stable key of an image for its I->QA seed: the first 32 bits of its pixels' digest. */
function pixelKey(image: PreparedImage): number {
  return Number.parseInt(image.hash.slice(0, 8), 16) || 0;
}

export class VisionModel implements AsyncDisposable {
  readonly #engine: VisionEngine;

  private constructor(engine: VisionEngine) {
    this.#engine = engine;
  }

  /** Checks the files, then loads them off the JS thread; with several `devices`, one engine replica per device. */
  static async open(options: OpenVisionModelOptions): Promise<VisionModel> {
    return new VisionModel(await openVisionEngine(options));
  }

  get info(): VisionModelInfo {
    return this.#engine.info;
  }

  get closed(): boolean {
    return this.#engine.closed;
  }

  /** Decodes, orients, pads and resizes an image for this model (reusable across calls). */
  prepareImage(input: ImageInput): Promise<PreparedImage> {
    return this.#engine.prepareImage(input);
  }

  /** One reply to `{system} USER: <image>\n{prompt} ASSISTANT:`. */
  generate(request: GenerateRequest): Promise<GenerateResult> {
    return this.#engine.generate(request);
  }

  /** Many requests at once; each item settles on its own (a bad image fails only its item). */
  generateBatch(requests: GenerateRequest[]): Promise<ItemResult<GenerateResult>[]> {
    return settleAll(requests.map((r) => this.generate(r)));
  }

  /**
   * I->QA: each image in, one question and its answer out (sampled, held to `Question:/Answer:`).
   * An image is sampled with seed `sampling.seed` plus its pixels' key, as the pipeline seeds by an
   * image's stable key: the same image gets the same reply wherever it stands in the list.
   */
  async imageToQA(images: ImageInput[], options: TaskCallOptions = {}): Promise<ItemResult<QAPair>[]> {
    const settings = this.#settings(options, 'iToQa');
    return settleAll(
      images.map(async (input) => {
        const image = await this.prepareImage(input);
        const { text } = await askImage(this, image, settings, imageSeed(settings.sampling.iToQa.seed ?? 0, pixelKey(image)), options.signal);
        const parsed = parseQaReply(text);
        if (!parsed.ok) throw new SrfError('DATA_INVALID', `the I->QA reply could not be parsed (${parsed.reason}): ${JSON.stringify(text.slice(0, 200))}`);
        return { question: parsed.question, answer: parsed.answer, raw: text };
      }),
    );
  }

  /** IA->Q: image + answer in, the question that answer responds to out (greedy). */
  answerToQuestion(items: { image: ImageInput; answer: string }[], options: TaskCallOptions = {}): Promise<ItemResult<TextReply>[]> {
    const settings = this.#settings(options, 'iaToQ');
    return settleAll(items.map((it) => reconstructQuestion(this, it.image, it.answer, settings, '', options.signal)));
  }

  /** IQ->A: image + question in, the answer out (greedy): ordinary visual question answering. */
  questionToAnswer(items: { image: ImageInput; question: string }[], options: TaskCallOptions = {}): Promise<ItemResult<TextReply>[]> {
    const settings = this.#settings(options, 'iqToA');
    return settleAll(items.map((it) => reconstructAnswer(this, it.image, it.question, settings, '', options.signal)));
  }

  /** Scales of the LoRA adapters loaded with the model, one per adapter (0 = off). Applied between requests. */
  setLoraScales(scales: number[]): Promise<void> {
    return this.#engine.setLoraScales(scales);
  }

  get loraScales(): readonly number[] {
    return this.#engine.loraScales;
  }

  /** Counters of the batching loop (for progress and benchmarks). */
  stats(): EngineStats {
    return this.#engine.stats();
  }

  /** Per replica (device, requests, whether it failed, its counters); one entry without replicas. */
  replicaStats(): ReplicaStats[] {
    return this.#engine.replicaStats();
  }

  /** Frees the model and its GPU memory now; pending requests reject with CLOSED. */
  close(): Promise<void> {
    return this.#engine.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The templates and the one task's decoding for a library call: defaults, then the caller's overrides. */
  #settings(options: TaskCallOptions, task: TaskName) {
    const sampling = { ...DEFAULT_DECODING, [task]: { ...DEFAULT_DECODING[task], ...options.sampling } } as Record<TaskName, SamplingOptions>;
    return { templates: { ...DEFAULT_TEMPLATES, ...options.templates }, sampling, drafts: false };
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
