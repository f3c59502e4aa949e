/**
 * The data type of a (question, answer) pair, by the table of docs/METHOD.md. The type picks the
 * similarity used for Triangular Consistency (score.ts) and the group a triplet competes in (select.ts).
 */
import { invalidArgument } from '../errors.js';
import { checkPositiveInteger } from '../util/validate.js';
import { parseBox, parseBoxAnswer } from './box.js';
import { normalizeText } from './normalize.js';
import { stripImageToken } from '../engine/llava-prompt.js';

export { parseBox, parseBoxAnswer, formatBox, type Box, type BoxOptions } from './box.js';
export { normalizeForExactMatch, normalizeText, normalizedWords } from './normalize.js';

export const DATA_TYPES = ['short_answer', 'multiple_choice', 'box', 'region_text', 'long_text', 'short_text'] as const;
export type DataType = (typeof DATA_TYPES)[number];

export function isDataType(value: unknown): value is DataType {
  return typeof value === 'string' && (DATA_TYPES as readonly string[]).includes(value);
}

/** LLaVA-1.5's format suffixes (mix665k: VQAv2/GQA/OCR-VQA and A-OKVQA). */
export const FORMAT_SUFFIXES = Object.freeze({
  shortAnswer: 'Answer the question using a single word or phrase.',
  multipleChoice: "Answer with the option's letter from the given choices directly.",
});

function suffixPattern(suffix: string): RegExp {
  const body = suffix
    .replace(/\.$/, '')
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/'/g, "['’]")
    .replace(/ /g, '\\s+');
  return new RegExp(`\\s*${body}\\.?\\s*$`, 'i');
}
const SHORT_ANSWER_SUFFIX = suffixPattern(FORMAT_SUFFIXES.shortAnswer);
const MULTIPLE_CHOICE_SUFFIX = suffixPattern(FORMAT_SUFFIXES.multipleChoice);

/** Which format suffix the question ends with (case, a curly apostrophe and a missing final period tolerated). */
export function formatSuffixOf(question: string): 'short_answer' | 'multiple_choice' | null {
  if (typeof question !== 'string') throw invalidArgument('a string', 'question', question);
  const text = stripImageToken(question);
  if (MULTIPLE_CHOICE_SUFFIX.test(text)) return 'multiple_choice';
  if (SHORT_ANSWER_SUFFIX.test(text)) return 'short_answer';
  return null;
}

/** The question without `<image>` markers and without a trailing format suffix: what Q and Q' are compared on. */
export function stripFormatSuffix(question: string): string {
  if (typeof question !== 'string') throw invalidArgument('a string', 'question', question);
  return stripImageToken(question).replace(MULTIPLE_CHOICE_SUFFIX, '').replace(SHORT_ANSWER_SUFFIX, '').trim();
}

/** Words with a letter or digit in them. */
export function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => /[\p{L}\p{N}]/u.test(word)).length;
}

/**
 * Sentences: pieces ended by `.`, `!`, `?` before whitespace or the end, or by a line break, that hold
 * a letter or digit. "3.5" is one piece; an abbreviation such as "Dr. Smith" counts as two (rare in
 * answers, and it errs towards "long", where BERTScore still works).
 */
export function countSentences(text: string): number {
  return text.split(/[.!?]+(?=\s|$)|\n+/).filter((piece) => /[\p{L}\p{N}]/u.test(piece)).length;
}

export interface DataTypeOptions {
  /** An answer with more words than this is long text. Default 20 (docs/METHOD.md). */
  maxShortWords?: number;
  /** An answer with more sentences than this is long text. Default 1 (docs/METHOD.md). */
  maxShortSentences?: number;
  /** Normalised answers that make a yes/no pair. Default ['yes', 'no']. */
  yesNoAnswers?: readonly string[];
  /**
   * Whether a yes/no answer makes the pair multiple choice even when the question carries the
   * short-answer suffix (VQAv2 yes/no questions do). Default true: sentence embeddings put "yes"
   * and "no" close together, so only exact match tells them apart.
   */
  yesNoBeforeShortAnswer?: boolean;
  /** Box coordinate scale, see BoxOptions. Default 1. */
  boxScale?: number;
}

export interface ResolvedDataTypeOptions {
  maxShortWords: number;
  maxShortSentences: number;
  yesNoAnswers: ReadonlySet<string>;
  yesNoBeforeShortAnswer: boolean;
  boxScale: number;
}

export function resolveDataTypeOptions(options: DataTypeOptions = {}): ResolvedDataTypeOptions {
  const yesNo = options.yesNoAnswers ?? ['yes', 'no'];
  if (!Array.isArray(yesNo) || yesNo.some((word) => typeof word !== 'string')) {
    throw invalidArgument('an array of strings', 'yesNoAnswers', yesNo);
  }
  const boxScale = options.boxScale ?? 1;
  if (typeof boxScale !== 'number' || !Number.isFinite(boxScale) || boxScale <= 0) {
    throw invalidArgument('a positive number', 'boxScale', boxScale);
  }
  return {
    maxShortWords: checkPositiveInteger(options.maxShortWords ?? 20, 'maxShortWords'),
    maxShortSentences: checkPositiveInteger(options.maxShortSentences ?? 1, 'maxShortSentences'),
    yesNoAnswers: new Set(yesNo.map(normalizeText)),
    yesNoBeforeShortAnswer: options.yesNoBeforeShortAnswer ?? true,
    boxScale,
  };
}

/**
 * The data type of a pair. The table of docs/METHOD.md leaves the order open where rows overlap;
 * ours, first match wins:
 *  1. question ends with the multiple-choice suffix            -> multiple_choice
 *  2. answer is exactly yes/no (after normalising)              -> multiple_choice (see yesNoBeforeShortAnswer)
 *  3. question ends with the short-answer suffix               -> short_answer
 *  4. the whole answer is one box `[x1, y1, x2, y2]` in 0..1    -> box
 *  5. the question carries a box                               -> region_text
 *  6. answer has more than 1 sentence or more than 20 words    -> long_text
 *  7. otherwise                                                -> short_text
 * "Yes, there is a dog." is not a yes/no answer here: it is chat, compared as text.
 */
export function detectDataType(question: string, answer: string, options: DataTypeOptions | ResolvedDataTypeOptions = {}): DataType {
  if (typeof question !== 'string') throw invalidArgument('a string', 'question', question);
  if (typeof answer !== 'string') throw invalidArgument('a string', 'answer', answer);
  const resolved = isResolved(options) ? options : resolveDataTypeOptions(options);
  const suffix = formatSuffixOf(question);
  if (suffix === 'multiple_choice') return 'multiple_choice';
  const yesNo = resolved.yesNoAnswers.has(normalizeText(answer));
  if (yesNo && (resolved.yesNoBeforeShortAnswer || suffix !== 'short_answer')) return 'multiple_choice';
  if (suffix === 'short_answer') return 'short_answer';
  const boxOptions = { scale: resolved.boxScale };
  if (parseBoxAnswer(answer, boxOptions)) return 'box';
  if (parseBox(question, boxOptions)) return 'region_text';
  const long = countSentences(answer) > resolved.maxShortSentences || countWords(answer) > resolved.maxShortWords;
  return long ? 'long_text' : 'short_text';
}

function isResolved(options: DataTypeOptions | ResolvedDataTypeOptions): options is ResolvedDataTypeOptions {
  return options.yesNoAnswers instanceof Set;
}
