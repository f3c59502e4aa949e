/**
 * Triangular Consistency: S = sqrt(sim(Q, Q') * sim(A, A')), with `sim` chosen by the data type
 * of (Q, A) (docs/METHOD.md, step 2).
 */
import { invalidArgument } from '../errors.js';
import { parseBox } from './box.js';
import { isPlainObject } from '../util/validate.js';
import {
  DATA_TYPES,
  detectDataType,
  isDataType,
  resolveDataTypeOptions,
  stripFormatSuffix,
  type DataType,
  type DataTypeOptions,
} from './data-types.js';
import { boxIoU, exactMatch, geometricMean } from './metrics.js';
import { stripImageToken } from '../engine/llava-prompt.js';
import type { SimilarityProvider } from './similarity.js';
import { formatChoiceQuestion, optionTextOf, parseChoiceQuestion, rotateOptions, type ChoiceQuestion } from './choices.js';

export { embeddingSimilarityProvider, lexicalSimilarityProvider } from './similarity.js';
export type { EmbedFunction, EmbeddingSimilarityOptions, SimilarityProvider } from './similarity.js';

/** One generated triplet and its two re-predictions. */
export interface Triplet {
  /** Q from I->QA. */
  question: string;
  /** A from I->QA. */
  answer: string;
  /** Q' re-predicted from (I, A). */
  questionPrime: string;
  /** A' re-predicted from (I, Q). */
  answerPrime: string;
  /** A'' re-predicted from (I, Q with its options rotated by one), for a letter-choice Q (triangle.ts `circular`). */
  answerRotated?: string;
  /** The answer to a letter-choice Q's stem asked open, without its options (triangle.ts `open`). */
  answerOpen?: string;
}

/**
 * - `sentence`: the provider's sentence-embedding cosine
 * - `bertscore`: the provider's BERTScore F1
 * - `exact`: exact match after normalising (normalizeForExactMatch), 0 or 1
 * - `box-iou`: IoU of the first box in each text; 0 when either has none
 */
export type SimilarityMeasure = 'sentence' | 'bertscore' | 'exact' | 'box-iou';

export interface TypeMeasures {
  /** Compares Q with Q' (both without `<image>` and format suffix). */
  question: SimilarityMeasure;
  /** Compares A with A'. */
  answer: SimilarityMeasure;
}

/**
 * The per-type rule of docs/METHOD.md. The table names one measure per type; where it does not say
 * what compares the questions, we use the sentence cosine (the question of a multiple-choice, box or
 * long-text pair is a short sentence like any other).
 */
export const MEASURES_BY_TYPE: Readonly<Record<DataType, Readonly<TypeMeasures>>> = Object.freeze({
  //                 Q vs Q'                 A vs A'
  short_answer:    { question: 'sentence', answer: 'sentence' },
  multiple_choice: { question: 'sentence', answer: 'exact' },
  box:             { question: 'sentence', answer: 'box-iou' },
  region_text:     { question: 'box-iou',  answer: 'sentence' },
  long_text:       { question: 'sentence', answer: 'bertscore' },
  short_text:      { question: 'sentence', answer: 'sentence' },
});

const MEASURES = ['sentence', 'bertscore', 'exact', 'box-iou'] as const;

export interface TripletScore {
  type: DataType;
  /** sim(Q, Q') in [0, 1]. */
  simQ: number;
  /** sim(A, A') in [0, 1]. */
  simA: number;
  /** geometric mean of simQ and simA. */
  score: number;
  /** False when a text measure came from a provider that is not the paper's (the lexical fallback). */
  paperFaithful: boolean;
}

export interface ScoreOptions {
  /** Use this type instead of detecting it from (Q, A). */
  type?: DataType;
  dataTypes?: DataTypeOptions;
  /** Replaces entries of MEASURES_BY_TYPE. */
  measures?: Partial<Record<DataType, Partial<TypeMeasures>>>;
  /**
   * How a letter-choice triplet (Q with option lines) is compared:
   * - 'letter' (the paper's): Q with Q' by the sentence cosine, A with A' by exact match of the letter;
   * - 'option-text' (ours, docs/METHOD.md): Q' carries Q's option set (its own stem with Q's options),
   *   A and A' are compared by the option text of Q they point to (0 when A points to none), and when
   *   the triplet has `answerRotated` (or `answerOpen`) that must point to the same text in the rotated
   *   Q (or name it).
   * Default 'letter'. Other types and yes/no questions are scored the same either way.
   */
  choices?: ChoiceComparison;
}

export type ChoiceComparison = 'letter' | 'option-text';
export const CHOICE_COMPARISONS: readonly ChoiceComparison[] = ['letter', 'option-text'];

function checkMeasures(overrides: ScoreOptions['measures']): Record<DataType, TypeMeasures> {
  const table = { ...MEASURES_BY_TYPE } as Record<DataType, TypeMeasures>;
  if (overrides === undefined) return table;
  if (!isPlainObject(overrides as unknown)) throw invalidArgument('an object', 'measures', overrides);
  for (const [type, measures] of Object.entries(overrides)) {
    if (!isDataType(type)) throw invalidArgument(`one of ${DATA_TYPES.join(', ')}`, 'measures key', type);
    const merged = { ...table[type], ...measures };
    for (const side of ['question', 'answer'] as const) {
      if (!(MEASURES as readonly string[]).includes(merged[side])) {
        throw invalidArgument(`one of ${MEASURES.join(', ')}`, `measures.${type}.${side}`, merged[side]);
      }
    }
    table[type] = merged;
  }
  return table;
}

function checkSimilarity(value: number, measure: SimilarityMeasure): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw invalidArgument('a number', `the ${measure} similarity`, value);
  }
  return Math.min(1, Math.max(0, value));
}

async function measure(
  kind: SimilarityMeasure,
  a: string,
  b: string,
  similarity: SimilarityProvider,
  boxScale: number,
): Promise<number> {
  if (a.trim() === '' || b.trim() === '') return 0;
  switch (kind) {
    case 'sentence':
      return checkSimilarity(await similarity.sentenceSimilarity(a, b), kind);
    case 'bertscore':
      return checkSimilarity(await similarity.bertScore(a, b), kind);
    case 'exact':
      return exactMatch(a, b);
    case 'box-iou': {
      const left = parseBox(a, { scale: boxScale });
      const right = parseBox(b, { scale: boxScale });
      return left && right ? boxIoU(left, right) : 0;
    }
  }
}

const TEXT_MEASURES: ReadonlySet<SimilarityMeasure> = new Set(['sentence', 'bertscore']);

/** Scores one triplet. An empty Q' or A' scores 0 on its side, so S = 0. */
export async function scoreTriplet(triplet: Triplet, similarity: SimilarityProvider, options: ScoreOptions = {}): Promise<TripletScore> {
  if (!isPlainObject(triplet as unknown)) throw invalidArgument('an object', 'triplet', triplet);
  for (const key of ['question', 'answer', 'questionPrime', 'answerPrime'] as const) {
    if (typeof triplet[key] !== 'string') throw invalidArgument('a string', `triplet.${key}`, triplet[key]);
  }
  if (
    !isPlainObject(similarity as unknown) ||
    typeof similarity.sentenceSimilarity !== 'function' ||
    typeof similarity.bertScore !== 'function'
  ) {
    throw invalidArgument('a SimilarityProvider', 'similarity', similarity);
  }
  const dataTypes = resolveDataTypeOptions(options.dataTypes);
  const type = options.type ?? detectDataType(triplet.question, triplet.answer, dataTypes);
  if (!isDataType(type)) throw invalidArgument(`one of ${DATA_TYPES.join(', ')}`, 'type', type);
  const measures = checkMeasures(options.measures)[type];
  const choices = options.choices ?? 'letter';
  if (!CHOICE_COMPARISONS.includes(choices)) throw invalidArgument(CHOICE_COMPARISONS.join(' or '), 'choices', choices);
  const choice = type === 'multiple_choice' && choices === 'option-text' ? parseChoiceQuestion(triplet.question) : null;
  if (choice) return { type, ...(await scoreChoiceTriplet(triplet, choice, measures.question, similarity, dataTypes.boxScale)) };

  const [simQ, simA] = await Promise.all([
    measure(measures.question, stripFormatSuffix(triplet.question), stripFormatSuffix(triplet.questionPrime), similarity, dataTypes.boxScale),
    measure(measures.answer, stripImageToken(triplet.answer), stripImageToken(triplet.answerPrime), similarity, dataTypes.boxScale),
  ]);
  const usesProvider = TEXT_MEASURES.has(measures.question) || TEXT_MEASURES.has(measures.answer);
  return {
    type,
    simQ,
    simA,
    score: geometricMean(simQ, simA),
    paperFaithful: !usesProvider || similarity.paperFaithful === true,
  };
}

/**
 * A letter-choice triplet by option text: Q' (written from I and A alone, with options of its own
 * invention) is given Q's options before it is compared with Q, so only the stems can differ; A' and
 * the rotated re-ask A'' must point to the option text A points to. An A that names no option of Q
 * scores 0 (the answer is not one of the choices it was written with).
 */
async function scoreChoiceTriplet(
  triplet: Triplet,
  choice: ChoiceQuestion,
  questionMeasure: SimilarityMeasure,
  similarity: SimilarityProvider,
  boxScale: number,
): Promise<Omit<TripletScore, 'type'>> {
  const primeStem = parseChoiceQuestion(triplet.questionPrime)?.stem ?? stripFormatSuffix(triplet.questionPrime);
  const primeWithOptions = primeStem.trim() === '' ? '' : formatChoiceQuestion({ stem: primeStem, options: choice.options });
  const simQ = await measure(questionMeasure, stripFormatSuffix(formatChoiceQuestion(choice)), stripFormatSuffix(primeWithOptions), similarity, boxScale);
  const text = optionTextOf(choice, stripImageToken(triplet.answer));
  let agrees = text !== null && optionTextOf(choice, stripImageToken(triplet.answerPrime)) === text;
  if (agrees && triplet.answerRotated !== undefined) agrees = optionTextOf(rotateOptions(choice, 1), stripImageToken(triplet.answerRotated)) === text;
  if (agrees && triplet.answerOpen !== undefined) agrees = optionTextOf(choice, stripImageToken(triplet.answerOpen)) === text;
  const simA = agrees ? 1 : 0;
  return { simQ, simA, score: geometricMean(simQ, simA), paperFaithful: !TEXT_MEASURES.has(questionMeasure) || similarity.paperFaithful === true };
}

/**
 * How far sampled re-answers of Q agree with A: the mean of the answer-side similarity (the same
 * measure, and for letter choices the same comparison, as A with A') over `samples`; NaN when there
 * are none. A model whose probability is spread over several answers scores low here even when its
 * greedy A' agrees.
 */
export async function answerAgreement(triplet: Pick<Triplet, 'question' | 'answer'>, samples: readonly string[], similarity: SimilarityProvider, options: ScoreOptions = {}): Promise<number> {
  if (samples.length === 0) return NaN;
  const scores = await Promise.all(samples.map((sample) => scoreTriplet({ ...triplet, questionPrime: triplet.question, answerPrime: sample }, similarity, options)));
  return scores.reduce((sum, s) => sum + s.simA, 0) / scores.length;
}
