/**
 * The similarity a run scores with: the paper's (a sentence-embedding model for cosines, an encoder
 * for BERTScore; the same model unless told otherwise) or, with no embedder, the documented lexical
 * fallback, which is not the paper's measure and is said so everywhere.
 */
import path from 'node:path';
import { Embedder } from '../engine/embedder.js';
import { embeddingSimilarityProvider, lexicalSimilarityProvider, type SimilarityProvider } from '../srf/similarity.js';
import type { ScoringRecord } from '../outputs/manifest.js';

export const LEXICAL_WARNING =
  'scores are NOT the paper\'s: no --embedder was given, so text similarity is the lexical fallback (token F1) ' +
  'instead of sentence-embedding cosine and BERTScore; pass --embedder MODEL.gguf for paper-faithful scores';

export interface ScorerOptions {
  /** Sentence-embedding model (GGUF) for the cosines. */
  embedder?: string | undefined;
  /** Encoder (GGUF) for BERTScore; defaults to the embedder. */
  bertscoreModel?: string | undefined;
  gpuLayers?: number | undefined;
  threads?: number | undefined;
}

export interface Scorer {
  provider: SimilarityProvider;
  record: ScoringRecord;
  close(): Promise<void>;
}

export async function openScorer(options: ScorerOptions): Promise<Scorer> {
  const sentencePath = options.embedder;
  const bertPath = options.bertscoreModel ?? options.embedder;
  const open = (model: string) => {
    const o: { model: string; gpuLayers?: number; threads?: number } = { model };
    if (options.gpuLayers !== undefined) o.gpuLayers = options.gpuLayers;
    if (options.threads !== undefined) o.threads = options.threads;
    return Embedder.open(o);
  };
  const opened: Embedder[] = [];
  const close = async () => {
    await Promise.all(opened.map((e) => e.close()));
  };
  try {
    const sentenceModel = sentencePath ? await open(sentencePath) : undefined;
    if (sentenceModel) opened.push(sentenceModel);
    let bertModel = sentenceModel;
    if (bertPath && bertPath !== sentencePath) {
      bertModel = await open(bertPath);
      opened.push(bertModel);
    }
    const sentence = sentenceModel ? embeddingSimilarityProvider((texts) => sentenceModel.embed(texts)) : lexicalSimilarityProvider;
    const bert =
      bertModel === sentenceModel ? sentence : bertModel ? embeddingSimilarityProvider((texts) => bertModel.embed(texts)) : lexicalSimilarityProvider;
    const paperFaithful = sentence.paperFaithful && bert.paperFaithful;
    const provider: SimilarityProvider = Object.freeze({
      paperFaithful,
      sentenceSimilarity: sentence.sentenceSimilarity,
      bertScore: bert.bertScore,
    });
    const record: ScoringRecord = {
      similarity: paperFaithful ? 'embedding' : sentence.paperFaithful || bert.paperFaithful ? 'mixed' : 'lexical',
      paperFaithful,
      sentenceModel: sentencePath ? path.resolve(sentencePath) : null,
      bertscoreModel: bertPath ? path.resolve(bertPath) : null,
    };
    if (!paperFaithful) {
      record.warning = sentence.paperFaithful || bert.paperFaithful
        ? `scores are NOT the paper's: ${sentence.paperFaithful ? 'BERTScore' : 'the sentence cosine'} uses the lexical fallback (token F1); pass --embedder for paper-faithful scores`
        : LEXICAL_WARNING;
    }
    return { provider, record, close };
  } catch (error) {
    await close();
    throw error;
  }
}
