/**
 * The files of an evaluation, in LLaVA's formats so its scripts and the benchmarks' own scorers take
 * them unchanged:
 *
 *   question file   jsonl `{question_id, image, text, category?}` (llava.eval.model_vqa_loader's input)
 *   answers file    jsonl `{question_id, prompt, text, answer_id, model_id, metadata}` (its output)
 *   truth           jsonl `{question_id, answer}` / `{question_id, answers: [...]}` (VQAv2's
 *                   `[{answer}]` too), or a LLaVA JSON list with conversations (the gpt turns)
 *
 * A malformed line is an error naming the file and the line.
 */
import { open, readFile } from 'node:fs/promises';
import { SrfError } from '../../errors.js';
import { readLines } from '../../util/files.js';
import type { Truth } from './score.js';

export interface EvalQuestion {
  questionId: string;
  image: string;
  text: string;
  category?: string;
}

export interface AnswerLine {
  question_id: string | number;
  prompt: string;
  text: string;
  answer_id: string;
  model_id: string;
  metadata: Record<string, unknown>;
}

function badLine(file: string, line: number, what: string): SrfError {
  return new SrfError('DATA_INVALID', `line ${line}: ${what}`, { file });
}

function idOf(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : null;
}

/** The JSON objects of a jsonl file with their line numbers; blank lines are skipped. */
async function* jsonLines(file: string): AsyncGenerator<{ value: Record<string, unknown>; line: number }> {
  let line = 0;
  try {
    for await (const l of readLines(file)) {
      line++;
      if (l.text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(l.text);
      } catch {
        if (!l.complete) return; // a last line cut short (a kill mid-write): not there yet
        throw badLine(file, line, 'not JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badLine(file, line, 'not a JSON object');
      yield { value: value as Record<string, unknown>, line };
    }
  } catch (error) {
    if (error instanceof SrfError) throw error;
    const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'DATA_INVALID';
    throw new SrfError(code, `cannot read: ${(error as Error).message}`, { file, cause: error });
  }
}

export async function readQuestions(file: string): Promise<EvalQuestion[]> {
  const questions: EvalQuestion[] = [];
  const seen = new Set<string>();
  for await (const { value, line } of jsonLines(file)) {
    const questionId = idOf(value.question_id);
    if (questionId === null) throw badLine(file, line, 'no question_id (a string or a number)');
    if (seen.has(questionId)) throw badLine(file, line, `question_id ${questionId} comes twice`);
    if (typeof value.image !== 'string' || value.image === '') throw badLine(file, line, 'no image (a path relative to --image-folder)');
    if (typeof value.text !== 'string') throw badLine(file, line, 'no text (the question)');
    seen.add(questionId);
    const q: EvalQuestion = { questionId, image: value.image, text: value.text };
    if (typeof value.category === 'string') q.category = value.category;
    questions.push(q);
  }
  return questions;
}

function referenceAnswers(value: unknown): string[] | null {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.length > 0) {
    const answers = value.map((a) => (typeof a === 'string' ? a : typeof a === 'object' && a !== null && typeof (a as { answer?: unknown }).answer === 'string' ? (a as { answer: string }).answer : null));
    return answers.every((a) => a !== null) ? (answers as string[]) : null;
  }
  return null;
}

/** Ground truth by question id, from jsonl or from a LLaVA JSON list with conversations. */
export async function readTruth(file: string): Promise<Map<string, Truth>> {
  return (await firstCharacter(file)) === '[' ? truthFromLlava(file) : truthFromJsonl(file);
}

/** The first non-blank character of a file (a JSON list starts with `[`), read from its head only. */
async function firstCharacter(file: string): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const head = Buffer.alloc(4096);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      return head.subarray(0, bytesRead).toString('utf8').trimStart().charAt(0);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new SrfError(e.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'DATA_INVALID', `cannot read: ${e.message}`, { file, cause: error });
  }
}

async function truthFromJsonl(file: string): Promise<Map<string, Truth>> {
  const truth = new Map<string, Truth>();
  for await (const { value, line } of jsonLines(file)) {
    const questionId = idOf(value.question_id);
    if (questionId === null) throw badLine(file, line, 'no question_id');
    const answers = referenceAnswers(value.answers ?? value.answer);
    if (!answers) throw badLine(file, line, 'no answer (a string) or answers (a list of strings or of {answer})');
    const t: Truth = { questionId, answers };
    if (typeof value.category === 'string') t.category = value.category;
    truth.set(questionId, t);
  }
  return truth;
}

/**
 * A LLaVA JSON list: each record's gpt turns are the truth of its questions; the question id is the
 * record's id for its first turn and `${id}_${k}` for turn k >= 1.
 */
async function truthFromLlava(file: string): Promise<Map<string, Truth>> {
  let records: unknown;
  try {
    records = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new SrfError('DATA_INVALID', `not a JSON list: ${(error as Error).message}`, { file, cause: error });
  }
  if (!Array.isArray(records)) throw new SrfError('DATA_INVALID', 'not a JSON list of LLaVA records', { file });
  const truth = new Map<string, Truth>();
  records.forEach((record: unknown, i) => {
    const r = record as { id?: unknown; conversations?: Array<{ from?: unknown; value?: unknown }> };
    const id = idOf(r?.id);
    if (id === null || !Array.isArray(r.conversations)) throw new SrfError('DATA_INVALID', `record ${i}: no id or no conversations`, { file });
    const answers = r.conversations.filter((c) => c?.from === 'gpt').map((c) => c.value);
    answers.forEach((answer, k) => {
      if (typeof answer !== 'string') throw new SrfError('DATA_INVALID', `record ${i} (${id}): a gpt turn without a string value`, { file });
      const questionId = k === 0 ? id : `${id}_${k}`;
      truth.set(questionId, { questionId, answers: [answer] });
    });
  });
  return truth;
}

/** The answers already in an answers file by question id (a cut-short last line is left out). */
export async function readAnswers(file: string): Promise<Map<string, AnswerLine>> {
  const answers = new Map<string, AnswerLine>();
  for await (const { value, line } of jsonLines(file)) {
    const questionId = idOf(value.question_id);
    if (questionId === null || typeof value.text !== 'string') throw badLine(file, line, 'not an answer line (question_id, text)');
    answers.set(questionId, value as unknown as AnswerLine);
  }
  return answers;
}
