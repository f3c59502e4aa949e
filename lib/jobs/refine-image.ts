/**
 * One image of a refine run into its journal line: prepared once, through the triangle
 * (srf/triangle.ts), scored; a bad image or a failed request is an error line, a reply that does not
 * parse a rejected one, and an image abandoned by cancel() no line at all (it runs again on resume).
 */
import { isSrfError } from '../errors.js';
import type { PreparedImage } from '../engine/types.js';
import type { TripletLine } from '../outputs/journal.js';
import { answerAgreement, scoreTriplet, type TripletScore } from '../srf/score.js';
import { checkTriplet, imageSeed, runTriangle, type TriangleResult, type TriangleSettings } from '../srf/triangle.js';
import type { VisionModel } from '../vision-model.js';
import type { InputImage } from './inputs.js';
import type { Scorer } from './scoring.js';
import type { ChoiceComparison } from '../srf/score.js';

export interface ImageRun {
  model: VisionModel;
  scorer: Scorer;
  triangle: TriangleSettings;
  /** The run's base seed: an image's I->QA seed is this plus its stable key. */
  seed: number;
  round: number;
  signal: AbortSignal;
  /** How letter choices are scored (the run's filter). */
  choices: ChoiceComparison;
  /**
   * What the selection ranks by (the run's filter): S itself, or S x the model's confidence, or S x
   * the sampled re-answers' agreement. For a product the line's `score` is it and `consistency` S.
   */
  rank?: 'consistency' | 'confidence' | 'agreement';
}

/** The factor a filter multiplies S by to rank, or undefined when it ranks by S. */
function rankFactor(rank: ImageRun['rank'], triangle: { logProbA?: number; logProbQ?: number }, agreement: number | undefined): number | undefined {
  if (rank === 'confidence' && triangle.logProbA !== undefined && triangle.logProbQ !== undefined) return Math.exp((triangle.logProbA + triangle.logProbQ) / 2);
  if (rank === 'agreement') return agreement;
  return undefined;
}

/**
 * A decode or an image encode that failed may have been the device's, not the image's: the image
 * is tried once more before its error is journaled. A device that is going fails the second try
 * with DEVICE_FAILED (native/engine.h), and the image is then not journaled at all.
 */
async function twice(attempt: () => Promise<TriangleResult>): Promise<TriangleResult> {
  try {
    return await attempt();
  } catch (error) {
    if (!isSrfError(error, 'DECODE_FAILED') && !isSrfError(error, 'IMAGE_ENCODE_FAILED')) throw error;
    return attempt();
  }
}

/** The image's journal line; null when cancel() abandoned it. CLOSED and DEVICE_FAILED (the engine or its device went away) reject. */
export async function refineImage(item: InputImage, run: ImageRun): Promise<TripletLine | null> {
  const { model, scorer, signal } = run;
  const started = Date.now();
  const base = { id: item.id, image: item.image, round: run.round, ...(item.metadata && Object.keys(item.metadata).length > 0 ? { metadata: item.metadata } : {}) };
  const errorLine = (error: unknown): TripletLine | null => {
    if (signal.aborted && isSrfError(error, 'ABORTED')) return null;
    // The engine went away, or its device (every replica's): the image is not done, not failed; it
    // gets no journal line and runs again on resume.
    if (isSrfError(error, 'CLOSED') || isSrfError(error, 'DEVICE_FAILED')) throw error;
    const code = isSrfError(error) ? error.code : 'UNEXPECTED';
    const message = (error as Error)?.message ?? String(error);
    return { ...base, status: 'error', error: { code, message }, ms: Date.now() - started };
  };
  if (item.problem) return errorLine(item.problem);
  let image: PreparedImage;
  try {
    image = await model.prepareImage(item.bytes ?? item.path);
  } catch (error) {
    return errorLine(error);
  }
  if (signal.aborted) return null;
  // An earlier run's triplet judged again keeps the seed that generated it.
  const { given } = item;
  const seed = given ? given.seed : imageSeed(run.seed, item.key);
  const attempt = given ? () => checkTriplet(model, image, given, run.triangle, signal) : () => runTriangle(model, image, run.triangle, imageSeed(run.seed, item.key), signal);
  let triangle: TriangleResult;
  let score: TripletScore;
  let agreement: number | undefined;
  try {
    triangle = await twice(attempt);
    if (triangle.status === 'rejected') return { ...base, status: 'rejected', rejected: triangle.rejected, raw: triangle.raw.slice(0, 1000), seed, ms: Date.now() - started };
    score = await scoreTriplet(triangle, scorer.provider, { choices: run.choices });
    if (triangle.answerSamples) agreement = await answerAgreement(triangle, triangle.answerSamples, scorer.provider, { choices: run.choices, type: score.type });
  } catch (error) {
    return errorLine(error);
  }
  const { question, answer, questionPrime, answerPrime, answerRotated, answerOpen, logProbA, logProbQ, answerSamples, truncation } = triangle;
  const factor = rankFactor(run.rank, triangle, agreement);
  return {
    ...base,
    status: 'scored',
    question,
    answer,
    questionPrime,
    answerPrime,
    ...(answerRotated !== undefined ? { answerRotated } : {}),
    ...(answerOpen !== undefined ? { answerOpen } : {}),
    ...(logProbA !== undefined && logProbQ !== undefined ? { logProbA, logProbQ } : {}),
    ...(answerSamples && agreement !== undefined ? { answerSamples, agreement } : {}),
    type: score.type,
    simQ: score.simQ,
    simA: score.simA,
    score: factor !== undefined ? score.score * factor : score.score,
    ...(factor !== undefined ? { consistency: score.score } : {}),
    paperFaithful: score.paperFaithful,
    ...(truncation ? { truncated: truncation } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ms: Date.now() - started,
  };
}
