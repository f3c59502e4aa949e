/**
 * Triangular Consistency for one image (docs/METHOD.md), written once: I->QA sampled and seeded by
 * the image's stable key, the reply parsed (an answer a bound stopped cut back to its last full
 * sentence), then IA->Q and IQ->A issued together on the image's cached prefix, each with the text
 * it should reconstruct as its draft. VisionModel's three calls are these legs one at a time; the
 * pipeline runs the whole triangle.
 */
import { draftIfGreedy } from '../engine/draft.js';
import { DEFAULT_TOP_K } from '../engine/option-checks.js';
import { circularReask, openReask } from './choices.js';
import type { FinishReason, GenerateRequest, GenerateResult, ImageInput, SamplingOptions } from '../engine/types.js';
import { cleanReply, parseQaReply, type QaParseFailure } from './parse.js';
import type { PromptTemplates, TaskName } from './prompts.js';
import { cutTruncatedAnswer, truncationCause, type Truncation } from './truncation.js';

/** What the triangle needs of an engine. */
export interface TriangleEngine {
  generate(request: GenerateRequest): Promise<GenerateResult>;
}

export interface QAPair {
  question: string;
  answer: string;
  /** The model's reply as generated. */
  raw: string;
}

export interface TextReply {
  text: string;
  raw: string;
}

export interface TriangleSettings {
  templates: PromptTemplates;
  /** Each call's decoding, defaults filled in; I->QA's carries the reply grammar when there is one. */
  sampling: Record<TaskName, SamplingOptions>;
  /** Q and A as drafts of the greedy re-predictions (they are what those should reconstruct). */
  drafts: boolean;
  /** An answer a bound stopped: 'cut' back to its last full sentence (rejected when none), or 'keep'. */
  truncatedAnswers: 'cut' | 'keep';
  /** The grammar's longest answer line: a reply that reaches it was stopped by the grammar. */
  answerLineBound: number | undefined;
  /**
   * A letter-choice Q is also asked with its options rotated by one (CircularEval), beside IQ->A;
   * the reply is `answerRotated` (not the paper's; docs/METHOD.md, "Multiple choice"). Default off.
   */
  circular?: boolean;
  /** A letter-choice Q is also asked as its stem alone, open (short answer); the reply is `answerOpen`. Default off. */
  open?: boolean;
  /**
   * Also score A and Q under the model (GenerateRequest.scoreDraft): the mean token log-probability
   * of A given (I, Q) and of Q given (I, A), `logProbA` and `logProbQ`. Two more calls. Default off.
   */
  confidence?: boolean;
  /**
   * Q is also answered this many times more, sampled (SAMPLED_REANSWER, seeded from the triplet's
   * I->QA seed): `answerSamples`, whose agreement with A shows probability spread over several
   * answers (an ambiguous reference), which the greedy A' cannot. Default 0.
   */
  samples?: number;
}

/** Decoding of the sampled re-answers: the model's own distribution, cut to llama.cpp's default top-k. */
export const SAMPLED_REANSWER: Readonly<SamplingOptions> = Object.freeze({ temperature: 1, topK: DEFAULT_TOP_K, topP: 1 });

export type TriangleResult =
  | { status: 'rejected'; rejected: QaParseFailure | 'truncated'; raw: string }
  | { status: 'complete'; question: string; answer: string; questionPrime: string; answerPrime: string; answerRotated?: string; answerOpen?: string; logProbA?: number; logProbQ?: number; answerSamples?: string[]; truncation?: Truncation };

/** The I->QA seed of an image: base seed plus its stable key, mod 2^32 (never 0xFFFFFFFF, llama.cpp's "random"). */
export function imageSeed(baseSeed: number, key: number): number {
  const seed = (baseSeed + key) % 0x100000000;
  return seed === 0xffffffff ? 0xfffffffe : seed;
}

/** I->QA: the sampled reply to the instruction, with `seed`. */
export function askImage(engine: TriangleEngine, image: ImageInput, settings: Pick<TriangleSettings, 'templates' | 'sampling'>, seed: number, signal?: AbortSignal): Promise<GenerateResult> {
  return engine.generate({ image, prompt: settings.templates.iToQaInstruction, sampling: { ...settings.sampling.iToQa, seed }, signal });
}

/** IA->Q: the question the answer responds to (greedy by default); `expected`, when known, is its draft. */
export async function reconstructQuestion(engine: TriangleEngine, image: ImageInput, answer: string, settings: Pick<TriangleSettings, 'templates' | 'sampling' | 'drafts'>, expected = '', signal?: AbortSignal): Promise<TextReply> {
  const sampling = settings.sampling.iaToQ;
  const { text } = await engine.generate({ image, prompt: settings.templates.iaToQInstruction(answer), sampling, signal, ...draftIfGreedy(expected, sampling, settings.drafts) });
  return { text: cleanReply(text), raw: text };
}

/** IQ->A: the answer to the question (greedy by default); `expected`, when known, is its draft. */
export async function reconstructAnswer(engine: TriangleEngine, image: ImageInput, question: string, settings: Pick<TriangleSettings, 'templates' | 'sampling' | 'drafts'>, expected = '', signal?: AbortSignal): Promise<TextReply> {
  const sampling = settings.sampling.iqToA;
  const { text } = await engine.generate({ image, prompt: settings.templates.iqToAInstruction(question), sampling, signal, ...draftIfGreedy(expected, sampling, settings.drafts) });
  return { text: cleanReply(text), raw: text };
}

/** The length-normalised log P(reply | image, prompt): the mean over its tokens (end token included). */
export async function meanLogProb(engine: TriangleEngine, image: ImageInput, prompt: string, reply: string, maxTokens: number, signal?: AbortSignal): Promise<number> {
  const { draftLogProbs } = await engine.generate({ image, prompt, sampling: { temperature: 0, maxTokens }, draft: reply, scoreDraft: true, signal });
  const values = draftLogProbs ?? [];
  return values.length === 0 ? -Infinity : values.reduce((sum, x) => sum + x, 0) / values.length;
}

/** The question and answer of an I->QA reply, its answer cut back when a bound stopped it; or why there are none. */
export function readQaReply(reply: string, finishReason: FinishReason, settings: Pick<TriangleSettings, 'truncatedAnswers' | 'answerLineBound'>):
  | { ok: true; question: string; answer: string; truncation?: Truncation }
  | { ok: false; rejected: QaParseFailure | 'truncated' } {
  const parsed = parseQaReply(reply);
  if (!parsed.ok) return { ok: false, rejected: parsed.reason };
  const cause = truncationCause(reply, finishReason, settings.answerLineBound);
  if (!cause) return { ok: true, question: parsed.question, answer: parsed.answer };
  if (settings.truncatedAnswers === 'keep') return { ok: true, question: parsed.question, answer: parsed.answer, truncation: { by: cause, removedChars: 0 } };
  const cut = cutTruncatedAnswer(parsed.answer, cause);
  if (!cut) return { ok: false, rejected: 'truncated' };
  return { ok: true, question: parsed.question, answer: cut.answer, truncation: cut.truncation };
}

/** The whole triangle for one (prepared) image; engine errors reject. */
export async function runTriangle(engine: TriangleEngine, image: ImageInput, settings: TriangleSettings, seed: number, signal?: AbortSignal): Promise<TriangleResult> {
  const { text: reply, finishReason } = await askImage(engine, image, settings, seed, signal);
  const qa = readQaReply(reply, finishReason, settings);
  if (!qa.ok) return { status: 'rejected', rejected: qa.rejected, raw: reply };
  return checkTriplet(engine, image, { ...qa, seed }, settings, signal);
}

/**
 * The triangle's two checks (and the filter's re-asks) on a given (Q, A): what runTriangle does after
 * I->QA, and all a run that judges an earlier run's triplets again (`rescore`) does.
 */
export async function checkTriplet(engine: TriangleEngine, image: ImageInput, qa: { question: string; answer: string; seed?: number; truncation?: Truncation }, settings: TriangleSettings, signal?: AbortSignal): Promise<TriangleResult & { status: 'complete' }> {
  const { question, answer } = qa;
  const rotated = settings.circular ? circularReask(question, answer) : null;
  const open = settings.open ? openReask(question, answer) : null;
  // Issued together: the engine decodes them in the same batches on the cached image prefix.
  const [samples, questionPrime, answerPrime, answerRotated, answerOpen, logProbA, logProbQ] = await Promise.all([
    sampleAnswers(engine, image, question, settings, qa.seed ?? 0, signal),
    reconstructQuestion(engine, image, answer, settings, question, signal),
    reconstructAnswer(engine, image, question, settings, answer, signal),
    rotated ? reconstructAnswer(engine, image, rotated.question, settings, rotated.expected, signal) : undefined,
    open ? reconstructAnswer(engine, image, open.question, settings, open.expected, signal) : undefined,
    // Q and A came out of one I->QA reply: its budget (and the end token) bounds either.
    settings.confidence ? meanLogProb(engine, image, settings.templates.iqToAInstruction(question), answer, (settings.sampling.iToQa.maxTokens ?? 256) + 1, signal) : undefined,
    settings.confidence ? meanLogProb(engine, image, settings.templates.iaToQInstruction(answer), question, (settings.sampling.iToQa.maxTokens ?? 256) + 1, signal) : undefined,
  ]);
  return {
    status: 'complete',
    question,
    answer,
    questionPrime: questionPrime.text,
    answerPrime: answerPrime.text,
    ...(answerRotated ? { answerRotated: answerRotated.text } : {}),
    ...(answerOpen ? { answerOpen: answerOpen.text } : {}),
    ...(logProbA !== undefined && logProbQ !== undefined ? { logProbA, logProbQ } : {}),
    ...(samples.length > 0 ? { answerSamples: samples } : {}),
    ...(qa.truncation ? { truncation: qa.truncation } : {}),
  };
}

/** IQ->A sampled `settings.samples` times, the i-th with the triplet's seed + i + 1 (its own I->QA used the seed itself). */
async function sampleAnswers(engine: TriangleEngine, image: ImageInput, question: string, settings: TriangleSettings, seed: number, signal?: AbortSignal): Promise<string[]> {
  const prompt = settings.templates.iqToAInstruction(question);
  const sampling = { ...settings.sampling.iqToA, ...SAMPLED_REANSWER };
  const replies = await Promise.all(
    Array.from({ length: settings.samples ?? 0 }, (_, i) => engine.generate({ image, prompt, sampling: { ...sampling, seed: imageSeed(seed, i + 1) }, signal })),
  );
  return replies.map((reply) => cleanReply(reply.text));
}
