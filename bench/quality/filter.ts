/**
 * The filter's quality: which triplets each selection keeps, and how often those are right. The
 * selections are the project's own code: the run's `kept` flags (srf-native run), reselectRun for the
 * keep-fraction sweep (srf-native select), selectTopPerType and scoreTriplet for the ablations; only
 * the score each one sorts by changes.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DATA_TYPES, type DataType } from '../../lib/srf/data-types.js';
import { createRandom, shuffled } from '../../lib/srf/random.js';
import { lexicalSimilarityProvider, scoreTriplet } from '../../lib/srf/score.js';
import { selectTopPerType } from '../../lib/srf/select.js';
import { optionTextOf, parseChoiceQuestion, rotateOptions } from '../../lib/srf/choices.js';
import { readJournal, isScoredLine, JOURNAL_FILE, type TripletLine } from '../../lib/outputs/journal.js';
import { MANIFEST_FILE } from '../../lib/outputs/manifest.js';
import { reselectRun } from '../../lib/jobs/reselect.js';
import { FAMILY_NAMES, type FamilyName } from '../../lib/world/families.js';
import type { UnanswerableReason } from '../../lib/world/oracle.js';
import { gradeTriplet, type Grade } from './grade.js';
import { sceneOfImage } from './images.js';
import { accuracyWithInterval, pairedDifference, type Accuracy } from './stats.js';

export interface GradedTriplet {
  id: string;
  image: string;
  question: string;
  answer: string;
  questionPrime: string;
  answerPrime: string;
  /** The rotated re-ask's answer (refined filter, letter choices only). */
  answerRotated?: string;
  answerOpen?: string;
  logProbA?: number;
  logProbQ?: number;
  /** --samples K: the sampled re-answers' agreement with A (score.ts answerAgreement). */
  agreement?: number;
  type: DataType;
  simQ: number;
  simA: number;
  /** S = sqrt(simQ * simA) (with the filter's letter-choice rule), whatever the run ranked by. */
  score: number;
  /** Kept by the run's own selection. */
  kept: boolean;
  grade: Grade;
}

export interface RunCensus {
  images: number;
  scored: number;
  rejected: number;
  errors: number;
}

/** Every scored line of a run's journal, graded against the oracle; and what the other lines were. */
export async function gradeRun(out: string): Promise<{ triplets: GradedTriplet[]; census: RunCensus }> {
  const lines: TripletLine[] = [];
  for await (const line of readJournal(path.join(out, JOURNAL_FILE))) lines.push(line);
  const census: RunCensus = { images: lines.length, scored: 0, rejected: 0, errors: 0 };
  const triplets: GradedTriplet[] = [];
  for (const line of lines) {
    if (!isScoredLine(line)) {
      if (line.status === 'rejected') census.rejected++;
      else census.errors++;
      continue;
    }
    census.scored++;
    triplets.push({
      id: line.id,
      image: line.image,
      question: line.question,
      answer: line.answer,
      questionPrime: line.questionPrime ?? '',
      answerPrime: line.answerPrime ?? '',
      ...(line.answerRotated !== undefined ? { answerRotated: line.answerRotated } : {}),
      ...(line.answerOpen !== undefined ? { answerOpen: line.answerOpen } : {}),
      ...(line.logProbA !== undefined ? { logProbA: line.logProbA, logProbQ: line.logProbQ as number } : {}),
      ...(line.agreement !== undefined ? { agreement: line.agreement } : {}),
      type: line.type,
      simQ: line.simQ ?? 0,
      simA: line.simA ?? 0,
      // S itself: a filter that ranks by S x something journals S as `consistency`
      score: line.consistency ?? line.score,
      kept: line.kept === true,
      grade: gradeTriplet(sceneOfImage(line.image), line.question, line.answer),
    });
  }
  return { triplets, census };
}

/** A selection: which triplets it keeps, by id. */
export type Selection = ReadonlySet<string>;

/** The per-type top fraction by another score (the run's selection code, only the sort key changes); `minScore`: the floor under it, or under `floorScore` where a triplet carries one. */
export function selectByScore<T extends GradedTriplet>(triplets: readonly (T & { floorScore?: number })[], scoreOf: (t: T) => number, keepTop = 0.2, minScore?: number): Selection {
  return selectTopPerType(triplets.map((t) => ({ id: t.id, type: t.type, score: scoreOf(t), floorScore: t.floorScore })), { keepTop, ...(minScore !== undefined ? { minScore } : {}) }).keptIds;
}

/**
 * The model's confidence in a triplet (--confidence): exp of the mean of the length-normalised
 * log P(A | I, Q) and log P(Q | I, A), in (0, 1]; NaN without them.
 */
export function modelConfidence(t: GradedTriplet): number {
  return t.logProbA === undefined || t.logProbQ === undefined ? NaN : Math.exp((t.logProbA + t.logProbQ) / 2);
}

/** How far K sampled re-answers agree with A (--samples K), in [0, 1]; NaN without them. */
export function sampleAgreement(t: GradedTriplet): number {
  return t.agreement ?? NaN;
}

/**
 * A refined-filter triplet's score with only some of the re-asks: for a letter choice scored by
 * option text, S = sqrt(simQ) when A' and each re-ask used point to A's option text, else 0 (simQ is
 * the same either way); every other triplet keeps its score.
 */
export function scoreWithReasks(t: GradedTriplet, use: { rotated: boolean; open: boolean }): number {
  if (t.answerRotated === undefined && t.answerOpen === undefined) return t.score;
  const choice = parseChoiceQuestion(t.question);
  if (!choice) return t.score;
  const text = optionTextOf(choice, t.answer);
  let agrees = text !== null && optionTextOf(choice, t.answerPrime) === text;
  if (agrees && use.rotated && t.answerRotated !== undefined) agrees = optionTextOf(rotateOptions(choice, 1), t.answerRotated) === text;
  if (agrees && use.open && t.answerOpen !== undefined) agrees = optionTextOf(choice, t.answerOpen) === text;
  return agrees ? Math.sqrt(t.simQ) : 0;
}

/**
 * One threshold for all types: the same selector with every triplet put in one pool, so the top
 * fraction is taken over all scores together (what the balancing strategy is meant to avoid).
 */
export function selectGlobal(triplets: readonly GradedTriplet[], keepTop = 0.2): Selection {
  const pool: DataType = 'short_text';
  return selectTopPerType(triplets.map((t) => ({ id: t.id, type: pool, score: t.score })), { keepTop }).keptIds;
}

/**
 * A seeded random subset with as many triplets of each group as `like` keeps of it: groups are data
 * types by default; byTypeAndFamily matches the question family too.
 */
export function selectRandomLike(triplets: readonly GradedTriplet[], like: Selection, seed = 7, groupOf: (t: GradedTriplet) => string = (t) => t.type): Selection {
  const random = createRandom(seed);
  const kept = new Set<string>();
  const groups = new Map<string, GradedTriplet[]>();
  for (const t of triplets) groups.set(groupOf(t), [...(groups.get(groupOf(t)) ?? []), t]);
  // types in DATA_TYPES order (as the draws were made before groups), then the group's name
  const order = (key: string) => DATA_TYPES.indexOf(key.split('/')[0] as DataType);
  for (const key of [...groups.keys()].sort((a, b) => order(a) - order(b) || (a < b ? -1 : a > b ? 1 : 0))) {
    // by id: the journal's order depends on which image finished first
    const ofGroup = groups.get(key)!.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const count = ofGroup.filter((t) => like.has(t.id)).length;
    for (const t of shuffled(ofGroup, random).slice(0, count)) kept.add(t.id);
  }
  return kept;
}

/** Scores again with the lexical fallback (token F1) in place of the embedder, same type and measures. */
export async function lexicalScores(triplets: readonly GradedTriplet[]): Promise<Map<string, number>> {
  const scores = new Map<string, number>();
  for (const t of triplets) {
    const s = await scoreTriplet(t, lexicalSimilarityProvider, { type: t.type });
    scores.set(t.id, s.score);
  }
  return scores;
}

/** `srf-native select --keep-top F` (reselectRun) on a copy of the run folder; the ids it keeps. */
export async function reselectFraction(out: string, keepTop: number): Promise<Selection> {
  const copy = await mkdtemp(path.join(tmpdir(), 'srf-quality-select-'));
  try {
    await copyFile(path.join(out, JOURNAL_FILE), path.join(copy, JOURNAL_FILE));
    await copyFile(path.join(out, MANIFEST_FILE), path.join(copy, MANIFEST_FILE));
    await reselectRun({ out: copy, keepTop, report: false });
    const kept = new Set<string>();
    for await (const line of readJournal(path.join(copy, JOURNAL_FILE))) if (line.kept) kept.add(line.id);
    return kept;
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

export interface SelectionAccuracy {
  name: string;
  overall: Accuracy;
  byType: Partial<Record<DataType, Accuracy>>;
  /** Accuracy of the selection minus accuracy of all triplets, paired bootstrap. */
  gain: { difference: number; low: number; high: number };
}

export function accuracyOf(name: string, triplets: readonly GradedTriplet[], selection: Selection | null, seed = 1): SelectionAccuracy {
  const inSel = triplets.map((t) => selection === null || selection.has(t.id));
  const right = triplets.map((t) => t.grade.right);
  const overall = accuracyWithInterval(right.filter((_, i) => inSel[i]), seed);
  const byType: Partial<Record<DataType, Accuracy>> = {};
  for (const type of DATA_TYPES) {
    const outcomes = triplets.filter((t, i) => t.type === type && inSel[i]).map((t) => t.grade.right);
    if (triplets.some((t) => t.type === type)) byType[type] = accuracyWithInterval(outcomes, seed);
  }
  const gain = pairedDifference(right, inSel, triplets.map(() => true), seed);
  return { name, overall, byType, gain };
}

/**
 * The control as an expected value, not one draw: a random draw of the kept count of each group
 * (data type by default) is right, on average, as often as that group's triplets are; weighted by
 * the kept counts. `groupOf` = byTypeAndFamily matches the draw per question family as well, so a
 * filter that only moves the mix towards easy families gains nothing over it.
 */
export function expectedRandomAccuracy(triplets: readonly GradedTriplet[], kept: Selection, groupOf: (t: GradedTriplet) => string = (t) => t.type): number {
  const groups = new Map<string, { all: number; right: number; kept: number }>();
  for (const t of triplets) {
    const key = groupOf(t);
    const g = groups.get(key) ?? { all: 0, right: 0, kept: 0 };
    g.all++;
    if (t.grade.right) g.right++;
    if (kept.has(t.id)) g.kept++;
    groups.set(key, g);
  }
  let right = 0;
  let count = 0;
  for (const g of groups.values()) {
    right += (g.kept * g.right) / g.all;
    count += g.kept;
  }
  return count === 0 ? NaN : right / count;
}

/** The group of a triplet by data type and question family (the world's; garbled questions have none). */
export const byTypeAndFamily = (t: GradedTriplet): string => `${t.type}/${t.grade.family ?? '-'}`;

/** Odds of a kept triplet being right over the odds of a dropped one (1: the filter tells nothing). */
export function keptOddsRatio(triplets: readonly GradedTriplet[], kept: Selection): number {
  const count = (inKept: boolean, right: boolean) => triplets.filter((t) => kept.has(t.id) === inKept && t.grade.right === right).length;
  return (count(true, true) * count(false, false)) / (count(true, false) * count(false, true));
}

/** Why the unanswerable triplets are (lib/world/oracle.ts), in the order the tables show them. */
export const UNANSWERABLE_REASONS = ['absent', 'ambiguous', 'malformed', 'garbled'] as const satisfies readonly UnanswerableReason[];

/** Unanswerable triplets by reason, among all and among the kept. */
export interface UnanswerableCounts {
  all: Record<UnanswerableReason, number>;
  kept: Record<UnanswerableReason, number>;
}

/** Unanswerable triplets of every reason together. */
export function unanswerableTotal(counts: Record<UnanswerableReason, number>): number {
  return UNANSWERABLE_REASONS.reduce((sum, reason) => sum + counts[reason], 0);
}

/** How many of a selection's triplets are unanswerable for each reason (all triplets when null). */
export function unanswerableCounts(triplets: readonly GradedTriplet[], selection: Selection | null): Record<UnanswerableReason, number> {
  const counts = Object.fromEntries(UNANSWERABLE_REASONS.map((r) => [r, 0])) as Record<UnanswerableReason, number>;
  for (const t of triplets) if (t.grade.cause && (selection === null || selection.has(t.id))) counts[t.grade.cause]++;
  return counts;
}

/** The question families by the question's form (garbled questions have none), with all and kept accuracy. */
export function familyAccuracies(triplets: readonly GradedTriplet[], kept: Selection): Array<{ family: FamilyName | null; all: Accuracy; kept: Accuracy; expectedRandom: number }> {
  const families = [...FAMILY_NAMES, null];
  return families.flatMap((family) => {
    const of = triplets.filter((t) => t.grade.family === family);
    if (of.length === 0) return [];
    return [{ family, all: accuracyWithInterval(of.map((t) => t.grade.right)), kept: accuracyWithInterval(of.filter((t) => kept.has(t.id)).map((t) => t.grade.right)), expectedRandom: expectedRandomAccuracy(of, kept) }];
  });
}
