/**
 * Did round k+1 help? Two answers files scored on the same truth, compared on the questions both
 * answered: the mean paired difference (B - A) with a 95 % bootstrap interval (questions resampled
 * with replacement, seeded), overall and per category.
 */
import { createRandom } from '../../srf/random.js';
import { scoreAnswersFile, type ScoreResult } from './evaluate.js';
import type { ScoredAnswer } from './score.js';

export interface PairedDifference {
  n: number;
  a: number;
  b: number;
  /** b - a, in accuracy points (0..1). */
  difference: number;
  low: number;
  high: number;
}

export interface Comparison {
  overall: PairedDifference;
  byCategory: Record<string, PairedDifference>;
  /** Questions only one of the two answered (left out of the comparison). */
  unpaired: number;
}

export function pairedBootstrap(pairs: ReadonlyArray<readonly [number, number]>, resamples = 2000, seed = 0): PairedDifference {
  const n = pairs.length;
  const mean = (k: 0 | 1) => (n === 0 ? 0 : pairs.reduce((s, p) => s + p[k], 0) / n);
  const diffs = pairs.map(([x, y]) => y - x);
  const difference = mean(1) - mean(0);
  if (n === 0) return { n, a: 0, b: 0, difference: 0, low: 0, high: 0 };
  const random = createRandom(seed);
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += diffs[Math.floor(random() * n)]!;
    means.push(sum / n);
  }
  means.sort((x, y) => x - y);
  const at = (q: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))]!;
  return { n, a: mean(0), b: mean(1), difference, low: at(0.025), high: at(0.975) };
}

export function compareScored(a: readonly ScoredAnswer[], b: readonly ScoredAnswer[]): Comparison {
  const inB = new Map(b.map((s) => [s.questionId, s]));
  const pairs: Array<{ category: string; pair: [number, number] }> = [];
  for (const s of a) {
    const other = inB.get(s.questionId);
    if (other) pairs.push({ category: s.category, pair: [s.score, other.score] });
  }
  const categories = [...new Set(pairs.map((p) => p.category))].sort();
  return {
    overall: pairedBootstrap(pairs.map((p) => p.pair)),
    byCategory: Object.fromEntries(categories.map((c) => [c, pairedBootstrap(pairs.filter((p) => p.category === c).map((p) => p.pair))])),
    unpaired: a.length + b.length - 2 * pairs.length,
  };
}

export async function compareAnswersFiles(a: string, b: string, truth: string, questions?: string): Promise<{ a: ScoreResult; b: ScoreResult; comparison: Comparison }> {
  const [ra, rb] = await Promise.all([scoreAnswersFile(a, truth, questions), scoreAnswersFile(b, truth, questions)]);
  return { a: ra, b: rb, comparison: compareScored(ra.scored, rb.scored) };
}
