/**
 * An I->QA reply that a bound stopped, not the model: the token budget (--max-tokens-qa) ran out, or the
 * answer line reached the grammar's longest line. Its answer ends mid-sentence, and a triplet made of it
 * would teach the next round to stop mid-sentence too. The answer is cut back to its last full sentence
 * (or full line), and the cut is recorded in triplets.jsonl; an answer without one full sentence is
 * rejected as 'truncated'.
 */
import type { FinishReason } from '../engine/types.js';

export type TruncationCause = 'max-tokens' | 'grammar-bound';

export interface Truncation {
  by: TruncationCause;
  /** Characters of the answer dropped to end on a full sentence (0: it already did, or the run keeps truncated answers). */
  removedChars: number;
}

/**
 * Why the reply stopped early, or undefined when the model ended it. `maxAnswerChars`: the grammar's
 * longest answer line, when the default grammar held the reply.
 */
export function truncationCause(reply: string, finishReason: FinishReason, maxAnswerChars?: number): TruncationCause | undefined {
  if (finishReason === 'length') return 'max-tokens';
  if (maxAnswerChars !== undefined) {
    const lastLine = (reply.replace(/\r\n?/g, '\n').split('\n').at(-1) ?? '').replace(/^Answer: /, '');
    if (lastLine.length >= maxAnswerChars) return 'grammar-bound';
  }
  return undefined;
}

/** A sentence end: . ! ? (or their CJK forms), closing quotes or brackets, then a space or the end. */
const SENTENCE_END = /[.!?。！？]["'”’)\]]*(?=\s|$)/g;

/**
 * The answer up to its last full sentence or full line (the lines before the last are whole: the
 * model ended them itself). undefined when nothing whole is left.
 */
export function endOnSentence(answer: string): string | undefined {
  let end = -1;
  for (const match of answer.matchAll(SENTENCE_END)) end = match.index + match[0].length;
  const lastBreak = answer.lastIndexOf('\n');
  end = Math.max(end, lastBreak);
  const text = end > 0 ? answer.slice(0, end).trim() : '';
  return text === '' ? undefined : text;
}

/** The answer of a stopped reply, cut to end whole, and the record of the cut; or undefined when nothing whole is left. */
export function cutTruncatedAnswer(answer: string, by: TruncationCause): { answer: string; truncation: Truncation } | undefined {
  const whole = endOnSentence(answer);
  if (whole === undefined) return undefined;
  return { answer: whole, truncation: { by, removedChars: answer.length - whole.length } };
}
