/**
 * `evaluate()` (`srf-native eval`): answers a LLaVA question file with the engine, greedy, with
 * LLaVA-1.5's prompt (the question text as given, suffixes included, after the image), many questions
 * in flight so the engine batches them, and writes LLaVA's answers file. Resumable: answers already in
 * the file are kept and not asked again (a line cut short by a kill is dropped). A question whose image
 * is missing or unreadable gets an answer line with empty text and the error in `metadata.error`, and
 * the run goes on. With ground truth, scores them (score.ts).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { SrfError, isSrfError } from '../../errors.js';
import { VisionModel } from '../../vision-model.js';
import { assertGpuWork } from '../../engine/devices.js';
import { writeFileAtomic } from '../../util/files.js';
import { resolveShard } from '../shard-env.js';
import type { Shard } from '../inputs.js';
import type { LoraAdapterOptions } from '../../engine/types.js';
import { readAnswers, readQuestions, readTruth, type AnswerLine, type EvalQuestion } from './files.js';
import { scoreAnswer, scoreReport, type ScoreReport, type ScoredAnswer, type Truth } from './score.js';

export interface EvaluateOptions {
  /** LLaVA question file (jsonl). */
  questions: string;
  /** Folder the questions' images are relative to. */
  imageFolder: string;
  model: string;
  mmproj: string;
  loras?: LoraAdapterOptions[];
  /** LLaVA answers file to write (jsonl); answers already there are kept. */
  answersFile: string;
  /** Default 128 (LLaVA's model_vqa_loader uses 128). */
  maxTokens?: number;
  /**
   * A GBNF grammar every answer is held to (default none: LLaVA's loop has none). For comparisons
   * with llama.cpp's tools on random-weight models, whose byte tokens llama-server cannot return.
   */
  grammar?: string;
  parallel?: number;
  threads?: number;
  gpuLayers?: number;
  /** Fail with GPU_REQUIRED before answering when the work would run on the CPU (VisionModel.open's requireGpu). Default: SRF_REQUIRE_GPU=1. */
  requireGpu?: boolean;
  /** `I/N`, `auto` or `auto/N`: answer every N-th question from the I-th. */
  shard?: string | Shard;
  /** The answers' `model_id` (default: the model file's name, with the adapters'). */
  modelId?: string;
  /** Ground truth to score against when done. */
  truth?: string;
  onProgress?: (progress: { done: number; total: number; errors: number }) => void;
  signal?: AbortSignal;
}

export interface EvaluateResult {
  answersFile: string;
  /** Questions of this shard. */
  questions: number;
  /** Answered in this call. */
  answered: number;
  /** Already in the answers file. */
  resumed: number;
  /** Questions whose image or request failed (answer lines with metadata.error). */
  errors: number;
  seconds: number;
  questionsPerSecond: number;
  score?: ScoreResult;
}

export interface ScoreResult {
  report: ScoreReport;
  scored: ScoredAnswer[];
  /** Answers with no truth, and truth with no answer (ids not asked), counted. */
  answersWithoutTruth: number;
  truthWithoutAnswer: number;
}

function defaultModelId(model: string, loras: readonly LoraAdapterOptions[]): string {
  return [path.basename(model, '.gguf'), ...loras.map((l) => path.basename(l.path, '.gguf'))].join('+');
}

function answerId(questionId: string, modelId: string): string {
  return createHash('sha256').update(`${modelId}\0${questionId}`).digest('base64url').slice(0, 22);
}

/** Keeps the good lines of an existing answers file; drops error lines (asked again) and a cut-short tail. */
async function resumeAnswers(file: string): Promise<Map<string, AnswerLine>> {
  let existing: Map<string, AnswerLine>;
  try {
    existing = await readAnswers(file);
  } catch (error) {
    if (isSrfError(error) && error.code === 'FILE_NOT_FOUND') return new Map();
    throw error;
  }
  const kept = new Map([...existing].filter(([, a]) => a.metadata?.error === undefined));
  await writeFileAtomic(file, [...kept.values()].map((a) => `${JSON.stringify(a)}\n`).join(''));
  return kept;
}

export async function evaluate(options: EvaluateOptions): Promise<EvaluateResult> {
  const started = Date.now();
  assertGpuWork({ requireGpu: options.requireGpu, gpuLayers: options.gpuLayers });
  const all = await readQuestions(options.questions);
  const shard = options.shard === undefined ? null : resolveShard(options.shard).shard;
  const questions = shard ? all.filter((_, i) => i % shard.count === shard.index) : all;
  const done = await resumeAnswers(options.answersFile);
  const todo = questions.filter((q) => !done.has(q.questionId));
  const loras = options.loras ?? [];
  const modelId = options.modelId ?? defaultModelId(options.model, loras);
  const maxTokens = options.maxTokens ?? 128;
  let answered = 0;
  let errors = 0;
  if (todo.length > 0) {
    const out = await open(options.answersFile, 'a').catch((error: Error) => {
      throw new SrfError('WRITE_FAILED', `cannot write: ${error.message}`, { file: options.answersFile, cause: error });
    });
    const model = await VisionModel.open({
      model: options.model,
      mmproj: options.mmproj,
      loras,
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.gpuLayers !== undefined ? { gpuLayers: options.gpuLayers } : {}),
      ...(options.requireGpu !== undefined ? { requireGpu: options.requireGpu } : {}),
    });
    try {
      const ask = async (q: EvalQuestion): Promise<void> => {
        const line: AnswerLine = { question_id: q.questionId, prompt: q.text, text: '', answer_id: answerId(q.questionId, modelId), model_id: modelId, metadata: {} };
        try {
          const reply = await model.generate({
            image: path.resolve(options.imageFolder, q.image),
            prompt: q.text,
            sampling: { temperature: 0, maxTokens, ...(options.grammar !== undefined ? { grammar: options.grammar } : {}) },
            ...(options.signal ? { signal: options.signal } : {}),
          });
          line.text = reply.text.trim();
          answered++;
        } catch (error) {
          // The device gone (every replica's): stop, not an error line per question left.
          // A grammar that does not parse fails every question alike: stop on it too.
          if (!isSrfError(error) || error.code === 'CLOSED' || error.code === 'ABORTED' || error.code === 'DEVICE_FAILED' || error.code === 'GRAMMAR_INVALID') throw error;
          line.metadata = { error: { code: error.code, message: error.message } };
          errors++;
        }
        await out.write(`${JSON.stringify(line)}\n`);
        options.onProgress?.({ done: done.size + answered + errors, total: questions.length, errors });
      };
      // Enough in flight to keep every sequence of the engine busy, few enough that a million questions
      // do not become a million pending promises.
      const window = Math.max(8, 4 * model.info.parallel);
      let next = 0;
      const worker = async () => {
        while (next < todo.length) await ask(todo[next++]!);
      };
      await Promise.all(Array.from({ length: Math.min(window, todo.length) }, worker));
    } finally {
      await model.close();
      await out.close();
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const result: EvaluateResult = {
    answersFile: options.answersFile,
    questions: questions.length,
    answered,
    resumed: done.size,
    errors,
    seconds,
    questionsPerSecond: seconds > 0 ? answered / seconds : 0,
  };
  if (options.truth) result.score = await scoreAnswersFile(options.answersFile, options.truth, options.questions);
  return result;
}

/** Scores an answers file against ground truth (the questions' text tells how each is scored). */
export async function scoreAnswersFile(answersFile: string, truthFile: string, questionsFile?: string): Promise<ScoreResult> {
  const [answers, truth] = await Promise.all([readAnswers(answersFile), readTruth(truthFile)]);
  const questions = questionsFile ? new Map((await readQuestions(questionsFile)).map((q) => [q.questionId, q])) : new Map<string, EvalQuestion>();
  const scored: ScoredAnswer[] = [];
  let answersWithoutTruth = 0;
  for (const [id, answer] of answers) {
    const t = truth.get(id);
    if (!t) {
      answersWithoutTruth++;
      continue;
    }
    const q = questions.get(id);
    const withCategory: Truth = q?.category !== undefined && t.category === undefined ? { ...t, category: q.category } : t;
    scored.push(scoreAnswer(q?.text ?? answer.prompt, answer.text, withCategory));
  }
  const truthWithoutAnswer = [...truth.keys()].filter((id) => !answers.has(id)).length;
  return { report: scoreReport(scored), scored, answersWithoutTruth, truthWithoutAnswer };
}
