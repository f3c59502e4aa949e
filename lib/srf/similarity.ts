/**
 * Text similarity providers for scoring: an embedder-backed one (the paper's sentence-embedding
 * cosine and BERTScore) and a lexical fallback for when no embedder is loaded.
 */
import { invalidArgument } from '../errors.js';
import type { Embedding } from '../engine/types.js';
import { checkPositiveInteger } from '../util/validate.js';
import { bertScoreF1, cosine, lexicalSimilarity } from './metrics.js';

/** What score.ts needs to compare texts. Both methods return a number in [0, 1]. */
export interface SimilarityProvider {
  /** Sentence-embedding cosine (short answers, short free text, questions). */
  sentenceSimilarity(a: string, b: string): Promise<number>;
  /** BERTScore F1 (long text). */
  bertScore(a: string, b: string): Promise<number>;
  /** Whether this provider computes what the paper computes; results carry this flag on. */
  readonly paperFaithful: boolean;
}

/** The fallback: lexicalSimilarity (token F1) for both measures. Marked not paper-faithful. */
export const lexicalSimilarityProvider: SimilarityProvider = Object.freeze({
  paperFaithful: false,
  sentenceSimilarity: async (a: string, b: string) => lexicalSimilarity(a, b),
  bertScore: async (a: string, b: string) => lexicalSimilarity(a, b),
});

/** Embeds texts in one batch; one Embedding per text, in order (see Embedding in lib/engine/types.ts). */
export type EmbedFunction = (texts: string[]) => Promise<Embedding[]>;

export interface EmbeddingSimilarityOptions {
  /** Embeddings kept for repeated strings (least recently used go first). Default 4096. */
  cacheSize?: number;
}

const ignore = () => {};

/**
 * Sentence cosine over pooled vectors and BERTScore F1 over token vectors, from one embedder.
 * Texts repeat a lot (the same question for several checks, short answers like "yes"), so
 * embeddings are kept in a small least-recently-used map; concurrent requests for the same text
 * share one embedding call. An empty text is similar to nothing (0) and is not embedded.
 */
export function embeddingSimilarityProvider(embed: EmbedFunction, options: EmbeddingSimilarityOptions = {}): SimilarityProvider {
  if (typeof embed !== 'function') throw invalidArgument('a function', 'embed', embed);
  const cacheSize = checkPositiveInteger(options.cacheSize ?? 4096, 'cacheSize');
  const cache = new Map<string, Promise<Embedding>>();

  async function embeddingsOf(a: string, b: string): Promise<[Embedding, Embedding]> {
    const wanted = a === b ? [a] : [a, b];
    const pending = new Map<string, Promise<Embedding>>();
    const missing: string[] = [];
    for (const text of wanted) {
      const cached = cache.get(text);
      if (cached) {
        cache.delete(text); // refresh its place in the eviction order
        cache.set(text, cached);
        pending.set(text, cached);
      } else {
        missing.push(text);
      }
    }
    if (missing.length > 0) {
      const batch = embed(missing).then((result) => {
        if (!Array.isArray(result) || result.length !== missing.length) {
          throw invalidArgument(`${missing.length} embeddings from embed()`, 'embed result', Array.isArray(result) ? `${result.length}` : result);
        }
        return result;
      });
      missing.forEach((text, i) => {
        const one = batch.then((result) => result[i] as Embedding);
        one.catch(() => {
          if (cache.get(text) === one) cache.delete(text); // a failed embedding is not kept
        });
        one.catch(ignore); // evicted before anyone awaited it: not an unhandled rejection
        cache.set(text, one);
        pending.set(text, one);
      });
      while (cache.size > cacheSize) cache.delete(cache.keys().next().value as string);
    }
    return Promise.all([pending.get(a) as Promise<Embedding>, pending.get(b) as Promise<Embedding>]);
  }

  return Object.freeze({
    paperFaithful: true,
    async sentenceSimilarity(a: string, b: string): Promise<number> {
      if (a.trim() === '' || b.trim() === '') return 0;
      const [left, right] = await embeddingsOf(a, b);
      return cosine(left.pooled, right.pooled);
    },
    async bertScore(a: string, b: string): Promise<number> {
      if (a.trim() === '' || b.trim() === '') return 0;
      const [left, right] = await embeddingsOf(a, b);
      return bertScoreF1(left.tokens, right.tokens);
    },
  });
}
