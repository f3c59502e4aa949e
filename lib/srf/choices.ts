/**
 * Letter-choice questions (LLaVA's A-OKVQA form: a question line, option lines `A. text`, `B. text`,
 * ..., the multiple-choice suffix) read as a stem and an option set, so that an answer is judged by
 * the option text its letter points to, not by the letter (docs/METHOD.md, "The filter").
 * The letter alone cannot be compared across questions: Q' is written from (I, A) and invents its
 * own option order, and a model that always answers "A" is consistent with itself.
 */
import { invalidArgument } from '../errors.js';
import { FORMAT_SUFFIXES, formatSuffixOf } from './data-types.js';
import { normalizeForExactMatch, normalizeText } from './normalize.js';
import { stripImageToken } from '../engine/llava-prompt.js';

export interface ChoiceOption {
  /** `A`, `B`, ... */
  letter: string;
  text: string;
}

export interface ChoiceQuestion {
  /** The question line(s) before the options. */
  stem: string;
  /** In letter order, from A, at least two. */
  options: ChoiceOption[];
}

const OPTION_LINE = /^([A-Z])[.)]\s+(\S.*)$/;

/**
 * The stem and options of a letter-choice question; null when it has no run of at least two option
 * lines `A. ...`, `B. ...` in letter order (a yes/no question, say).
 */
export function parseChoiceQuestion(question: string): ChoiceQuestion | null {
  if (typeof question !== 'string') throw invalidArgument('a string', 'question', question);
  const lines = stripImageToken(question).replace(/\r\n?/g, '\n').split('\n').map((line) => line.trim()).filter((line) => line !== '');
  if (formatSuffixOf(lines[lines.length - 1] ?? '') !== null) lines.pop();
  const first = lines.findIndex((line) => OPTION_LINE.exec(line)?.[1] === 'A');
  if (first < 1) return null;
  const options: ChoiceOption[] = [];
  for (const line of lines.slice(first)) {
    const match = OPTION_LINE.exec(line);
    if (!match || match[1] !== String.fromCharCode(65 + options.length)) return null;
    options.push({ letter: match[1] as string, text: (match[2] as string).trim() });
  }
  if (options.length < 2) return null;
  return { stem: lines.slice(0, first).join('\n'), options };
}

/** The question as LLaVA writes it: stem, one line per option, the multiple-choice suffix. */
export function formatChoiceQuestion(choice: ChoiceQuestion): string {
  return [choice.stem, ...choice.options.map((o) => `${o.letter}. ${o.text}`), FORMAT_SUFFIXES.multipleChoice].join('\n');
}

/**
 * The option text an answer points to: its letter (`C`, `C.`, `(C)`, `C. circle`), or an option's
 * text written out; null when it names no option of this question.
 */
export function optionTextOf(choice: ChoiceQuestion, answer: string): string | null {
  if (typeof answer !== 'string') throw invalidArgument('a string', 'answer', answer);
  const key = normalizeForExactMatch(answer);
  if (/^[a-z]$/.test(key)) return choice.options.find((o) => o.letter.toLowerCase() === key)?.text ?? null;
  const text = normalizeText(answer);
  return choice.options.find((o) => normalizeText(o.text) === text)?.text ?? null;
}

/** The same question with the option texts moved `shift` letters on (CircularEval's re-ask): D's text to A at shift 1. */
export function rotateOptions(choice: ChoiceQuestion, shift = 1): ChoiceQuestion {
  const n = choice.options.length;
  return {
    stem: choice.stem,
    options: choice.options.map((o, i) => ({ letter: o.letter, text: (choice.options[(((i - shift) % n) + n) % n] as ChoiceOption).text })),
  };
}

/** The letter that holds `text` in `choice` (first match), or null. */
export function letterOf(choice: ChoiceQuestion, text: string): string | null {
  const wanted = normalizeText(text);
  return choice.options.find((o) => normalizeText(o.text) === wanted)?.letter ?? null;
}

/**
 * The permuted re-ask of a letter-choice triplet: Q with its options rotated by one, and the letter
 * its answer's option text now has (the draft of the greedy re-ask). Null when Q is not a
 * letter-choice question, A names none of its options, or the rotation moves nothing (all texts equal).
 */
export function circularReask(question: string, answer: string): { question: string; expected: string } | null {
  const choice = parseChoiceQuestion(question);
  if (!choice) return null;
  const text = optionTextOf(choice, answer);
  if (text === null) return null;
  const rotated = rotateOptions(choice, 1);
  const expected = letterOf(rotated, text);
  const before = letterOf(choice, text);
  if (expected === null || expected === before) return null;
  return { question: formatChoiceQuestion(rotated), expected };
}

/**
 * The open re-ask of a letter-choice triplet: Q's stem without its options, with the short-answer
 * suffix, and the option text A points to (its draft). The model must name that text unprompted by
 * the list, which a guess among the letters cannot do. Null where circularReask is null.
 */
export function openReask(question: string, answer: string): { question: string; expected: string } | null {
  const choice = parseChoiceQuestion(question);
  if (!choice) return null;
  const text = optionTextOf(choice, answer);
  if (text === null) return null;
  return { question: `${choice.stem}\n${FORMAT_SUFFIXES.shortAnswer}`, expected: text };
}
