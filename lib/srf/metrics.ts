/**
 * The similarity measures of Triangular Consistency. All return numbers in [0, 1]; which one a
 * pair gets is decided in score.ts.
 */
import { invalidArgument } from '../errors.js';
import type { Box } from './box.js';
import { normalizeForExactMatch, normalizedWords } from './normalize.js';

type Vector = ArrayLike<number>;

/**
 * Intersection over union of two boxes. Boxes that touch or miss give 0. When the union is empty
 * (two zero-area boxes) the answer is 1 if they are the same box, else 0.
 */
export function boxIoU(a: Box, b: Box): number {
  const width = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const height = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  const intersection = width > 0 && height > 0 ? width * height : 0;
  const area = (box: Box) => Math.max(0, box[2] - box[0]) * Math.max(0, box[3] - box[1]);
  const union = area(a) + area(b) - intersection;
  if (union <= 0) return a.every((value, i) => value === b[i]) ? 1 : 0;
  return Math.min(1, Math.max(0, intersection / union));
}

/** 1 when both answers are non-empty and equal after normalizeForExactMatch, else 0. */
export function exactMatch(a: string, b: string): 0 | 1 {
  const left = normalizeForExactMatch(a);
  return left !== '' && left === normalizeForExactMatch(b) ? 1 : 0;
}

function dot(u: Vector, v: Vector): number {
  let sum = 0;
  for (let i = 0; i < u.length; i++) sum += (u[i] as number) * (v[i] as number);
  return sum;
}

function clamp01(value: number): number {
  if (Number.isNaN(value)) throw invalidArgument('a number', 'similarity', value);
  return Math.min(1, Math.max(0, value));
}

/** Cosine similarity clamped to [0, 1] (docs/METHOD.md: negative similarity counts as none). A zero vector gives 0. */
export function cosine(u: Vector, v: Vector): number {
  if (u.length !== v.length) {
    throw invalidArgument(`a vector of length ${u.length}`, 'v', `a vector of length ${v.length}`);
  }
  const norms = Math.sqrt(dot(u, u) * dot(v, v));
  return norms > 0 ? clamp01(dot(u, v) / norms) : 0;
}

export interface BertScore {
  precision: number;
  recall: number;
  f1: number;
}

/**
 * BERTScore by greedy matching (Zhang et al. 2020), without idf weighting or baseline rescaling
 * (the paper names neither): each candidate token is matched to its most similar reference token
 * (precision = mean of those maxima), each reference token to its most similar candidate token
 * (recall), F1 their harmonic mean. Cosines are clamped to [0, 1]. An empty side gives all zeros.
 */
export function bertScore(candidateTokens: readonly Vector[], referenceTokens: readonly Vector[]): BertScore {
  if (candidateTokens.length === 0 || referenceTokens.length === 0) return { precision: 0, recall: 0, f1: 0 };
  const dimension = (candidateTokens[0] as Vector).length;
  for (const token of [...candidateTokens, ...referenceTokens]) {
    if (token.length !== dimension) throw invalidArgument(`token vectors of length ${dimension}`, 'tokens', `one of length ${token.length}`);
  }
  // Norms once per token: the pairwise loop is the hot part for long texts.
  const norm = (v: Vector) => Math.sqrt(dot(v, v));
  const referenceNorms = referenceTokens.map(norm);
  const bestForReference = new Float64Array(referenceTokens.length);
  let precisionSum = 0;
  for (const candidate of candidateTokens) {
    const candidateNorm = norm(candidate);
    let best = 0;
    for (let j = 0; j < referenceTokens.length; j++) {
      const denominator = candidateNorm * (referenceNorms[j] as number);
      const similarity = denominator > 0 ? clamp01(dot(candidate, referenceTokens[j] as Vector) / denominator) : 0;
      if (similarity > best) best = similarity;
      if (similarity > (bestForReference[j] as number)) bestForReference[j] = similarity;
    }
    precisionSum += best;
  }
  const precision = precisionSum / candidateTokens.length;
  const recall = bestForReference.reduce((sum, value) => sum + value, 0) / referenceTokens.length;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/** BERTScore F1; symmetric in its arguments. */
export function bertScoreF1(tokensA: readonly Vector[], tokensB: readonly Vector[]): number {
  return bertScore(tokensA, tokensB).f1;
}

/** S = sqrt(a * b); 0 when either side is 0 (or below). NaN is a bug upstream and throws. */
export function geometricMean(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) throw invalidArgument('two numbers', 'geometricMean', `${a}, ${b}`);
  if (a <= 0 || b <= 0) return 0;
  return Math.sqrt(a * b);
}

/**
 * Not in the paper: the text similarity used when no sentence encoder is loaded. SQuAD-style token
 * F1 over the bags of normalised words (normalizedWords: lowercase, punctuation and articles out,
 * number words as digits). Chosen over character n-gram cosine because it uses the same
 * normalisation as exact match, has no parameters, is 1 only for the same bag of words and 0 for
 * no shared word, and is the standard lexical answer metric. It misses paraphrases, so results
 * scored with it are marked `paperFaithful: false`. Two empty texts give 0.
 */
export function lexicalSimilarity(a: string, b: string): number {
  const left = normalizedWords(a);
  const right = normalizedWords(b);
  if (left.length === 0 || right.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const word of left) counts.set(word, (counts.get(word) ?? 0) + 1);
  let shared = 0;
  for (const word of right) {
    const count = counts.get(word) ?? 0;
    if (count > 0) {
      shared++;
      counts.set(word, count - 1);
    }
  }
  if (shared === 0) return 0;
  const precision = shared / right.length;
  const recall = shared / left.length;
  return (2 * precision * recall) / (precision + recall);
}
