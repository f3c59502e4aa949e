/// <reference lib="esnext.disposable" preserve="true" />
/**
 * A BERT-family sentence-embedding model (GGUF) for the consistency scorer: pooled vectors for
 * short-text cosine and per-token vectors for BERTScore, batched, off the JS thread.
 */
import { SrfError, invalidArgument } from '../errors.js';
import { checkEmbedderFile } from '../gguf/check.js';
import { native } from './native.js';
import { defaultThreads } from './sizing.js';
import { INT32_MAX } from './option-checks.js';
import { integerOption } from '../util/validate.js';
import type { NativeEmbedder } from './native.js';
import type { Embedding, OpenEmbedderOptions } from './types.js';

export class Embedder implements AsyncDisposable {
  readonly dim: number;
  readonly path: string;
  #engine: NativeEmbedder;
  #closing: Promise<void> | undefined;

  private constructor(engine: NativeEmbedder, dim: number, path: string) {
    this.#engine = engine;
    this.dim = dim;
    this.path = path;
  }

  static async open(options: OpenEmbedderOptions): Promise<Embedder> {
    if (typeof options?.model !== 'string' || !options.model) throw invalidArgument('a GGUF file path', 'model', options?.model);
    const gpuLayers = integerOption(options.gpuLayers, 'gpuLayers', -1, INT32_MAX, -1);
    const threads = integerOption(options.threads, 'threads', 0, 4096, defaultThreads());
    const maxTokens = integerOption(options.maxTokens, 'maxTokens', 0, INT32_MAX, 0);
    await checkEmbedderFile(options.model);
    const engine = new (native().Embedder)();
    const { dim } = await engine.load({ model: options.model, gpuLayers, threads, maxTokens });
    return new Embedder(engine, dim, options.model);
  }

  /** One Embedding per text, in order; vectors are L2-normalised. */
  async embed(texts: string[]): Promise<Embedding[]> {
    if (this.#closing) throw new SrfError('CLOSED', 'the embedder is closed');
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === 'string')) throw invalidArgument('an array of strings', 'texts', texts);
    if (texts.length === 0) return [];
    const out = await this.#engine.embed(texts);
    return texts.map((_, i) => {
      const flat = out.tokens[i];
      const tokens: Float32Array[] = [];
      for (let k = 0; k + out.dim <= flat.length; k += out.dim) tokens.push(flat.subarray(k, k + out.dim));
      return { pooled: out.pooled.subarray(i * out.dim, (i + 1) * out.dim), tokens };
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#engine.close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
