/**
 * Reading model replies: the I->QA reply (`Question: ...` newline `Answer: ...`) and the plain
 * re-predictions A' and Q'. A reply that cannot be read is reported with a reason, never dropped.
 */
import { invalidArgument } from '../errors.js';

export const QA_PARSE_FAILURES = ['empty-reply', 'unparsable', 'empty-question', 'empty-answer', 'truncated'] as const;
/**
 * - `empty-reply`: nothing but whitespace (or an end-of-sequence marker)
 * - `unparsable`: no `Question:` label, or no `Answer:` label after it
 * - `empty-question` / `empty-answer`: the label is there, the text after it is empty
 * - `truncated`: a bound (tokens, grammar) stopped the reply before the answer had one full sentence
 *   (set by the pipeline, lib/srf/truncation.ts; parseQaReply never returns it)
 */
export type QaParseFailure = (typeof QA_PARSE_FAILURES)[number];

export type QaParseResult =
  | { ok: true; question: string; answer: string }
  | { ok: false; reason: QaParseFailure };

/** Everything after these starts something that is not the reply: end of sequence, or a new chat turn. */
const END_OF_SEQUENCE = '</s>';
const NEXT_TURN = /\b(?:USER|ASSISTANT):/;

/**
 * A label at the start of a line, with the markdown a chat model likes to add:
 * `Question:`, `Q:`, `**Question:**`, `**Question**:`, `### Question:`, `- Q:`.
 */
function lineLabel(names: string): RegExp {
  return new RegExp(
    String.raw`^[ \t]*(?:[-*>#]+[ \t]+)?(?:\*\*|__)?[ \t]*(?:${names})[ \t]*(?:\*\*|__)?[ \t]*[:：][ \t]*(?:\*\*|__)?[ \t]*`,
    'gim',
  );
}
const QUESTION_LABEL = lineLabel('question|q');
const ANSWER_LABEL = lineLabel('answer|a');
/** `Question: What is it? Answer: a cat` on one line; only the full word, since `A:` inline is too common in text. */
const INLINE_ANSWER_LABEL = /[ \t](?:\*\*|__)?answer[ \t]*(?:\*\*|__)?[ \t]*[:：][ \t]*(?:\*\*|__)?[ \t]*/gi;

/** CRLF to LF, and cut at the end-of-sequence marker or an accidental next turn. */
function normaliseReply(text: string): string {
  let out = text.replace(/\r\n?/g, '\n');
  const eos = out.indexOf(END_OF_SEQUENCE);
  if (eos >= 0) out = out.slice(0, eos);
  return out;
}

function cutAtNextTurn(text: string): string {
  const turn = NEXT_TURN.exec(text);
  return turn ? text.slice(0, turn.index) : text;
}

const QUOTE_PAIRS: Record<string, string> = { '"': '"', '“': '”', "'": "'", '`': '`' };

/** Trims, and removes markdown emphasis and one pair of quotes wrapped around the whole field. */
function cleanField(text: string): string {
  let out = text
    .split('\n')
    .map((line) => line.trim())
    .join('\n')
    .trim();
  out = out.replace(/^(?:\*\*|__)+/, '').replace(/(?:\*\*|__)+$/, '').trim();
  const close = QUOTE_PAIRS[out[0] ?? ''];
  if (close !== undefined && out.length >= 2 && out.endsWith(close)) out = out.slice(1, -1).trim();
  return out;
}

function findFrom(pattern: RegExp, text: string, from: number): RegExpExecArray | null {
  pattern.lastIndex = from;
  return pattern.exec(text);
}

/** Reads the I->QA reply. Tolerates surrounding text, markdown labels, `Q:`/`A:`, any case, CRLF, `</s>`. */
export function parseQaReply(text: string): QaParseResult {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  const reply = cutAtNextTurn(normaliseReply(text));
  if (reply.trim() === '') return { ok: false, reason: 'empty-reply' };

  const question = findFrom(QUESTION_LABEL, reply, 0);
  if (!question) return { ok: false, reason: 'unparsable' };
  const questionStart = question.index + question[0].length;
  const answer = findFrom(ANSWER_LABEL, reply, questionStart) ?? findFrom(INLINE_ANSWER_LABEL, reply, questionStart);
  if (!answer) return { ok: false, reason: 'unparsable' };
  const answerStart = answer.index + answer[0].length;
  // A model that writes a second pair: keep the first.
  const nextQuestion = findFrom(QUESTION_LABEL, reply, answerStart);
  const answerEnd = nextQuestion ? nextQuestion.index : reply.length;

  const questionText = cleanField(reply.slice(questionStart, answer.index));
  const answerText = cleanField(reply.slice(answerStart, answerEnd));
  if (questionText === '') return { ok: false, reason: 'empty-question' };
  if (answerText === '') return { ok: false, reason: 'empty-answer' };
  return { ok: true, question: questionText, answer: answerText };
}

const LEADING_LABEL = /^(?:[-*>#]+[ \t]+)?(?:\*\*|__)?[ \t]*(?:question|answer|q|a)[ \t]*(?:\*\*|__)?[ \t]*[:：][ \t]*(?:\*\*|__)?[ \t]*/i;
const LEADING_ASSISTANT = /^\s*ASSISTANT:\s*/;

/**
 * Cleans a re-prediction (A' from IQ->A, Q' from IA->Q): CRLF to LF, cut at `</s>` and at an accidental
 * `USER:`/`ASSISTANT:` turn, trim, drop one leading `Question:`/`Answer:`/`Q:`/`A:` label (with markdown)
 * and one pair of quotes around the whole reply. May return ''.
 */
export function cleanReply(text: string): string {
  if (typeof text !== 'string') throw invalidArgument('a string', 'text', text);
  const reply = cutAtNextTurn(normaliseReply(text).replace(LEADING_ASSISTANT, ''));
  return cleanField(reply.trim().replace(LEADING_LABEL, ''));
}
